"""The chat page's everyday surface: what a question will cost before it runs, a shortened
answer said as such, and the conversation exported with its citations as footnotes."""

from __future__ import annotations

import io
import zipfile

import docx
import pypdfium2 as pdfium
import pytest
from django.urls import reverse

from apps.chat import services
from apps.chat.models import Message, MessageStatus
from tests.api.conftest import ready_document

pytestmark = pytest.mark.django_db
TEXT = ("The harbour's northern quay was rebuilt between March and August by Kessler Marine "
        "Works. The work cost 4.2 million euros. ") * 20


@pytest.fixture
def conversation(team, member):
    document = ready_document(team, text=TEXT, title="Harbour report")
    document.tokens = 900
    document.save(update_fields=["tokens"])
    return services.start_conversation(team, member, [document], "Harbour")


def _answered(conversation, member, **answer) -> Message:
    reply = services.ask(conversation, member, "Who rebuilt the quay?")
    start = TEXT.index("The harbour's")
    end = TEXT.index("Works.") + len("Works.")
    services.on_answer_success(reply.job, {
        "strategy": "rag", "grounded": True, "abstained": False,
        "citations": [{"n": 1, "document_id": conversation.documents.get().pk,
                       "title": "Harbour report", "page": 1, "start": start, "end": end,
                       "quote": TEXT[start:end]}],
        "answer": {"content": "Kessler Marine Works rebuilt the *northern quay*.",
                   "reason": "", "trace": [], "grounding": {}, "tokens_in": 10,
                   "tokens_out": 5, "shortened": False, **answer}})
    reply.refresh_from_db()
    return reply


def _url(name, conversation, **kwargs):
    return reverse(f"chat:{name}", kwargs={"team_slug": conversation.team.slug,
                                           "pk": conversation.pk, **kwargs})


def test_the_preview_shows_the_tokens_autos_pick_and_each_strategy(client, member,
                                                                  conversation):
    client.force_login(member)
    response = client.post(_url("preview", conversation),
                           {"question": "Who rebuilt the quay?", "strategy": "auto"})
    assert response.status_code == 200
    page = response.content.decode()
    assert "900 tokens" in page and 'data-testid="preview"' in page
    for strategy in ("rag", "xl3m", "coa"):
        assert f'data-strategy="{strategy}"' in page
    assert client.post(_url("preview", conversation), {"question": " "}).content.strip() == b""


def test_another_teams_conversation_has_no_preview_or_export(client, outsider, conversation):
    client.force_login(outsider)
    assert client.post(_url("preview", conversation), {"question": "Who?"}).status_code == 404
    assert client.get(_url("export", conversation, fmt="md")).status_code == 404


def test_a_shortened_answer_says_so(client, member, conversation):
    reply = _answered(conversation, member, shortened=True)
    assert reply.status == MessageStatus.DONE and reply.shortened
    client.force_login(member)
    page = client.get(_url("detail", conversation)).content.decode()
    assert 'data-testid="answer-shortened"' in page


def test_export_has_the_questions_answers_and_citations_as_footnotes(client, viewer, member,
                                                                     conversation):
    _answered(conversation, member)
    client.force_login(viewer)  # reading is enough to export
    md = client.get(_url("export", conversation, fmt="md"))
    assert md["Content-Disposition"] == 'attachment; filename="harbour.md"'
    text = md.content.decode()
    assert "## Who rebuilt the quay?" in text
    assert "Kessler Marine Works rebuilt the *northern quay*.[^1]" in text
    assert "[^1]: Harbour report, p. 1: “The harbour's northern quay" in text

    data = client.get(_url("export", conversation, fmt="docx")).content
    paragraphs = docx.Document(io.BytesIO(data)).paragraphs
    assert ("Heading 2", "Who rebuilt the quay?") in [(p.style.name, p.text) for p in paragraphs]
    footnotes = zipfile.ZipFile(io.BytesIO(data)).read("word/footnotes.xml").decode()
    assert "northern quay was rebuilt between March and August" in footnotes

    pdf = pdfium.PdfDocument(client.get(_url("export", conversation, fmt="pdf")).content)
    pdf_text = " ".join(" ".join(pdf[i].get_textpage().get_text_range().split())
                        for i in range(len(pdf)))
    assert "Who rebuilt the quay?" in pdf_text and "Kessler Marine Works rebuilt" in pdf_text
    assert "[^1]" not in pdf_text

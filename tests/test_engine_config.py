"""The app fills the engine's configuration from its settings: with another embedder, the
index (ingest), the search's query vector and the QA pre-filter embed with the same model and
LongEmbed strategy."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from apps.documents import search
from apps.documents.models import DocStatus, Document
from apps.jobs import services as jobs
from workers.config import current
from workers.documents import longembed
from workers.documents.embeddings import Embedder, default_model_path
from workers.qa.scoring import prefilter

pytestmark = pytest.mark.django_db

SENTENCE = "The harbour master of Rotterdam logged {n} ships arriving before noon. "
TEXT = "".join(SENTENCE.format(n=n) for n in range(60))  # ~900 tokens: past MiniLM's window


@pytest.fixture
def another_embedder(tmp_path):
    """A second embedder spec without a download: the packaged model under another path
    (another ``Embedder``, as another model folder would be)."""
    link = tmp_path / "other-embedder"
    link.symlink_to(default_model_path())
    return str(link)


@pytest.fixture
def embedded_with(monkeypatch):
    """Every (model path) that embedded something, and every LongEmbed strategy used."""
    seen: dict[str, list[str]] = {"models": [], "strategies": []}
    for name in ("embed", "embed_ids", "embed_with_spans"):
        original = getattr(Embedder, name)

        def spy(self, *args, _original=original, **kwargs):
            seen["models"].append(self.model_path)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(Embedder, name, spy)
    get_strategy = longembed.get_strategy

    def strategy_spy(name):
        seen["strategies"].append(name)
        return get_strategy(name)

    monkeypatch.setattr(longembed, "get_strategy", strategy_spy)
    return seen


def test_with_another_embedder_the_index_and_the_qa_prefilter_use_the_same_model(
        client, team, member, settings, another_embedder, embedded_with):
    settings.EMBEDDING_MODEL = another_embedder
    settings.EMBEDDING_STRATEGY = "pi"  # not the default (pcw)
    settings.EMBEDDING_CHUNK_TOKENS = 400  # chunks past the window: LongEmbed at ingest
    assert current().embedder.model == another_embedder  # the engine sees the settings

    client.force_login(member)
    response = client.post(reverse("documents:upload", kwargs={"team_slug": team.slug}),
                           {"files": [SimpleUploadedFile("port.txt", TEXT.encode())]},
                           headers={"Accept": "application/json"})
    document = Document.objects.get(pk=response.json()["results"][0]["id"])
    assert jobs.run(document.job.pk, document.job.celery_task_id) == "succeeded"
    document.refresh_from_db()
    assert document.status == DocStatus.READY and document.chunk_count >= 2
    index = {k: set(v) for k, v in embedded_with.items()}
    for found in embedded_with.values():
        found.clear()

    # The pre-filter over long texts (XL3M's segments): the embedder and LongEmbed.
    segments = [TEXT[i : i + 2500] for i in range(0, len(TEXT), 2500)]
    _, info = prefilter("How many ships arrived in Rotterdam?", segments, top_n=1)
    assert info["method"].startswith("bm25+dense")
    assert search.dense(team, "ships arriving in Rotterdam", limit=2)  # the query's vector
    query_time = {k: set(v) for k, v in embedded_with.items()}

    assert index["models"] == query_time["models"] == {another_embedder}
    assert index["strategies"] == query_time["strategies"] == {"pi"}

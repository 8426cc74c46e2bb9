"""A conversation to keep: Markdown with each answer's citations as footnotes (the quoted
span, its document and page), and the same as DOCX or PDF (``workers.exports``)."""

from __future__ import annotations

from apps.chat.models import Conversation, MessageStatus
from workers import exports


def conversation_markdown(conversation: Conversation) -> str:
    """Questions as headings, answers as written, citations as numbered footnotes; an
    answer the documents don't appear to give, or one not verified, says so."""
    lines: list[str] = []
    notes: list[str] = []
    for m in conversation.messages.all():
        if m.role == "user":
            lines += [f"## {exports.escape(' '.join(m.content.split()))}", ""]
            continue
        if m.status != MessageStatus.DONE:
            lines += [f"*{m.get_status_display()}: no answer.*", ""]
            continue
        marks = []
        for c in m.citations:
            notes.append(f"{exports.escape(c.get('title', ''))}"
                         f"{', p. ' + str(c['page']) if c.get('page') else ''}: "
                         f"“{exports.escape(c.get('quote', ''))}”")
            marks.append(f"[^{len(notes)}]")
        if m.abstained:
            lines += ["*The documents don't appear to answer this.*"
                      + (" Closest passages:" + "".join(marks) if marks else ""), ""]
            continue
        lines += [m.content.strip() + "".join(marks), ""]
        if not m.grounded:
            lines += ["*Not verified against the documents.*", ""]
        if m.shortened:
            lines += ["*Shortened: the answer reached its length limit.*", ""]
    documents = ", ".join(exports.escape(d.title) for d in conversation.documents.all())
    head = [f"# {exports.escape(conversation.title)}", "", f"Documents: {documents}", ""]
    return exports.footnote_markdown("\n".join(head + lines), notes)


def export(conversation: Conversation, fmt: str) -> bytes:
    markdown = conversation_markdown(conversation)
    if fmt == "md":
        return markdown.encode()
    body = markdown.split("\n", 2)[2]  # the title goes in the document's title instead
    return exports.to_docx(body, conversation.title) if fmt == "docx" else \
        exports.to_pdf(body, conversation.title)

"""The written document: its text with citation markers numbered across it, the reference
list, what the project page shows of it (progress, the instruction's checks, sections that
followed an older text) and its exports (Markdown, DOCX, PDF)."""

from __future__ import annotations

from django.db.models import Q
from django.urls import reverse

from apps.documents.citations import QUOTE_CHARS
from apps.documents.models import Document
from apps.writing.models import Section, WritingProject
from apps.writing.services import requirements
from workers import exports
from workers.writing import PlanSection
from workers.writing.citing import Reference, link_markers, number_citations
from workers.writing.coverage import annotate, coverage, section_constraints
from workers.writing.writer import join_sections


def document_text(project: WritingProject) -> str:
    """The whole text, its citation markers numbered across it ([1], [2] …)."""
    sections = list(project.sections.all())
    texts, _ = number_citations((s.text, s.citations) for s in sections)
    return join_sections({s.position: t for s, t in zip(sections, texts, strict=True)},
                         requirements(project).separator)


def references(project: WritingProject, sections: list[Section]) -> list[dict]:
    """Number the citations of ``sections`` across the text: sets ``display`` on each (its
    Markdown, each marker a link to the span in the document viewer, as chat's citations)
    and returns the reference list (n, title, page, quote, the span; ``live`` False when
    the document is no longer among the project's, picked or drawn from its collection)."""
    texts, refs = number_citations((s.text, s.citations) for s in sections)
    cited = {r.document_id for r in refs}
    found = {d.pk: d for d in project.team.documents.filter(
        Q(pk__in=project.documents.filter(pk__in=cited).values("pk"))
        | Q(pk__in=project.drawn.filter(pk__in=cited).values("pk")))}
    out = [_reference(project, r, found.get(r.document_id)) for r in refs]
    urls = {r["n"]: r["url"] for r in out if r["live"]}
    for section, text in zip(sections, texts, strict=True):
        section.display = link_markers(
            text, lambda n: f"[\\[{n}\\]]({urls[n]})" if n in urls else None)
    return out


def _reference(project: WritingProject, ref: Reference, document: Document | None) -> dict:
    entry = {"n": ref.number, "document_id": ref.document_id, "start": ref.start,
             "end": ref.end, "quote": ref.quote[:QUOTE_CHARS], "live": document is not None,
             "title": document.title if document else "(document removed)",
             "page": document.page_of(ref.start) if document else None, "url": ""}
    if document is not None:
        entry["url"] = reverse("documents:detail", kwargs={
            "team_slug": project.team.slug, "pk": document.pk}) + \
            f"?start={ref.start}&end={ref.end}#highlight"
    return entry


def mark_older_context(sections: list[Section]) -> list[Section]:
    """Set ``older_than`` on each written section saved before an earlier section was
    (re)written: the position of that earlier section (the latest such), else None. Such
    a section followed a text that has changed since; "Rewrite from here" refreshes it."""
    latest = None  # (written_at, position) of the most recently saved earlier section
    for section in sections:
        section.older_than = None
        if section.written_at is None or not section.is_written:
            continue
        if latest is not None and section.written_at < latest[0]:
            section.older_than = latest[1]
        if latest is None or section.written_at > latest[0]:
            latest = (section.written_at, section.position)
    return sections


def instruction_checks(project: WritingProject, sections: list[Section]) -> dict:
    """What the page shows of the instruction's requirements: each part, unit item and
    constraint with the sections that serve or carry it (set as ``serves_labels`` and
    ``must`` on each section), and what the instruction did not allow."""
    spec = requirements(project)
    plan = [PlanSection(s.position, s.point, s.target_words, list(s.serves)) for s in sections]
    annotate(spec, plan)
    labels = {p.id: p.label for p in [*spec.parts, *spec.items]}
    carried = section_constraints(spec, plan)
    for section, engine in zip(sections, plan, strict=True):
        section.serves_labels = [labels[x] for x in engine.serves if x in labels]
        section.must = [c.label for c in carried.get(section.position, [])
                        if c.kind != "item"]
    document_wide = [c.label for c in spec.constraints if c.scope == "document"]
    return {"coverage": coverage(spec, plan), "document_constraints": document_wide,
            "requirements": spec}


def progress_summary(project: WritingProject) -> dict:
    sections = mark_older_context(list(project.sections.all()))
    cited = references(project, sections)
    written = sum(s.words for s in sections)
    planned = sum(s.target_words for s in sections)
    return {"sections": sections, "written": written, "planned": planned,
            **instruction_checks(project, sections),
            "done": sum(1 for s in sections if s.is_written), "count": len(sections),
            "references": cited,
            "percent": min(100, round(100 * written / planned)) if planned else 0}


def export_body(project: WritingProject) -> str:
    """The text as Markdown for the exports: each citation marker a footnote (“[n] title,
    p. N”) and, when anything is cited, a reference list at the end (n. title, page, the
    quoted span). Titles and quotes are document text: escaped, never Markdown."""
    sections = list(project.sections.all())
    refs = references(project, sections)
    text = join_sections({s.position: s.text for s in sections},
                         requirements(project).separator)
    if not refs:
        return text
    texts, _ = number_citations((s.text, s.citations) for s in sections)
    text = join_sections({s.position: link_markers(t, lambda n: f"[^{n}]")
                          for s, t in zip(sections, texts, strict=True)},
                         requirements(project).separator)
    cite = [f"\\[{r['n']}\\] {exports.escape(r['title'])}"
            f"{', p. ' + str(r['page']) if r['page'] else ''}" for r in refs]
    listing = [f"{r['n']}. {exports.escape(r['title'])}"
               f"{', p. ' + str(r['page']) if r['page'] else ''}: "
               f"“{exports.escape(' '.join(r['quote'].split()))}”" for r in refs]
    return exports.footnote_markdown(text + "\n\n## References\n\n" + "\n".join(listing),
                                     cite)


def export_markdown(project: WritingProject) -> str:
    return f"# {project.title}\n\n{export_body(project)}\n"


def export(project: WritingProject, fmt: str) -> bytes:
    """The text as Markdown, DOCX or PDF (``workers.exports``: real headings, lists,
    emphasis and footnotes; the title from the project), citations as footnotes and a
    reference list."""
    if fmt == "md":
        return export_markdown(project).encode()
    body = export_body(project)
    return exports.to_docx(body, project.title) if fmt == "docx" else \
        exports.to_pdf(body, project.title)

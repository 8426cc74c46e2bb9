"""Writing verbs: create a project, plan it, edit the outline, write (resumable), regenerate
a section. Views and job runners call these; the engine is workers.writing. The written
document itself (its numbered text, references and exports) is apps/writing/document.py."""

from __future__ import annotations

import threading
import time

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from apps.collections import access
from apps.documents.models import DocStatus, Document
from apps.documents.search import passage_retriever
from apps.jobs import services as jobs
from apps.writing.models import ProjectStatus, Section, SectionStatus, WritingProject
from workers import events
from workers.llm import get_backend
from workers.qa.types import SourceDocument
from workers.writing import Plan, PlanError, PlanSection, check_request, target_words_for
from workers.writing.citing import (
    TOPIC_PASSAGES,
    Library,
    source_topics,
)
from workers.writing.coverage import annotate, serves
from workers.writing.instruction import Spec
from workers.writing.plan import MAX_SECTION, MIN_SECTION, check_instruction, make_plan
from workers.writing.summary import running_summary
from workers.writing.writer import SectionResult, join_sections, write_document, write_section

LOCKED = "The outline is locked while the text is being planned or written. Wait for the job " \
         "to finish (or cancel it on the Jobs page)."


class WritingError(Exception):
    """Shown to the user as it is."""


def max_words() -> int:
    return int(getattr(settings, "WRITING_MAX_WORDS", 50_000))


def parse_target(raw) -> int | None:
    """The target length from a form field (None when left empty: the instruction's stated
    length or the default is taken); WritingError with a message when it is bad."""
    if not str(raw or "").strip():
        return None
    try:
        value = int(str(raw).strip().replace(",", "").replace("_", ""))
    except (TypeError, ValueError):
        raise WritingError("The target length must be a whole number of words.") from None
    _check(lambda: check_request("x", value, max_words()))
    return value


def _check(call):
    try:
        return call()
    except PlanError as err:
        raise WritingError(str(err)) from None


# -- Creating and planning -----------------------------------------------------------------

NOT_IN_LIBRARY = "A chosen reference document is not in this team's library (or not ready yet)."
NO_COLLECTION = "No such collection, or you cannot read it."
LOST_COLLECTION = "The collection chosen as this project's source is no longer readable by " \
                  "whoever started this job: choose another source on the project's page."


def reference_documents(team, chosen) -> list:
    """The team's ready documents for ``chosen`` (documents or ids, e.g. a form's values),
    looked up from the team. Anything else, another team's document included, is refused
    exactly like an id that does not exist."""
    ids = set()
    for item in chosen:
        value = getattr(item, "pk", item)
        try:
            ids.add(int(value))
        except (TypeError, ValueError):
            raise WritingError(NOT_IN_LIBRARY) from None
    found = list(team.documents.filter(status=DocStatus.READY, pk__in=ids).order_by("title"))
    if len(found) != len(ids):
        raise WritingError(NOT_IN_LIBRARY)
    return found


def source_collection(team, who, value):
    """The collection a form or request names (its id) as a project's source, among those
    ``who`` may read (apps.collections.access); None for no value. A hidden collection is
    refused exactly like one that does not exist."""
    if value in (None, ""):
        return None
    try:
        pk = int(value)
    except (TypeError, ValueError):
        raise WritingError(NO_COLLECTION) from None
    found = access.readable_collections(team, who).filter(pk=pk).first()
    if found is None:
        raise WritingError(NO_COLLECTION)
    return found


def create_project(team, user, *, instruction: str, target_words: int | None,
                   title: str = "", style: str = "", documents=(),
                   collection=None) -> WritingProject:
    """``documents``: reference documents (or their ids) of ``team``; see
    ``reference_documents``. ``collection``: one from ``source_collection`` (its documents
    are read when the project is planned and written). No ``target_words``: the length the
    instruction states ("a 400-word essay"), else the default."""
    if collection is not None and collection.team_id != team.pk:
        raise WritingError(NO_COLLECTION)
    target_words = target_words_for(instruction or "", target_words)
    # A contradictory instruction (30 chapters of 500 words in 1,000 words, week 60 of a
    # year) is refused here with what to change: nothing is planned or written.
    instruction, spec = _check(lambda: check_instruction(instruction, target_words,
                                                         max_words()))
    references = reference_documents(team, documents)
    project = WritingProject.objects.create(
        team=team, created_by=user, instruction=instruction, target_words=target_words,
        style=style.strip(), title=(title.strip() or instruction.splitlines()[0])[:200],
        requirements=spec.to_dict(), collection=collection)
    project.documents.set(references)
    return project


def set_collection(project: WritingProject, collection) -> WritingProject:
    """Change the project's collection source (None: none); not while a job runs (it read
    its sources when it started). Sections already written keep their citations."""
    with transaction.atomic():
        locked = _editable(project)
        locked.collection = collection
        locked.save(update_fields=["collection", "updated_at"])
    return locked


def _lock(project: WritingProject) -> WritingProject:
    """The project row, locked for this transaction, refreshed; a status left behind by a
    job that ended without its runner (cancelled while queued) is put right."""
    locked = WritingProject.objects.select_for_update().get(pk=project.pk)
    if locked.status in (ProjectStatus.PLANNING, ProjectStatus.WRITING) and not locked.is_busy:
        reset_after_stop(locked)
        locked.status = ProjectStatus.PLANNED if locked.sections.exists() else \
            ProjectStatus.DRAFT
        locked.save(update_fields=["status", "updated_at"])
    return locked


def _start_job(project: WritingProject, user, kind: str, status: str, params: dict,
               title: str) -> WritingProject:
    with transaction.atomic():
        locked = _lock(project)
        if locked.is_busy:
            raise WritingError(LOCKED)
        locked.status, locked.error = status, ""
        locked.job = jobs.create_job(locked.team, kind, {"project_id": locked.pk, **params},
                                     user=user, title=f"{title}: {locked.title[:80]}")
        locked.save(update_fields=["status", "error", "job", "updated_at"])
    return locked


def start_plan(project: WritingProject, user) -> WritingProject:
    return _start_job(project, user, "writing_plan", ProjectStatus.PLANNING, {}, "Plan")


def start_write(project: WritingProject, user) -> WritingProject:
    """Write every section not yet written (plans first when there is no outline)."""
    return _start_job(project, user, "writing_write", ProjectStatus.WRITING, {}, "Write")


def start_regenerate(project: WritingProject, section: Section, user) -> WritingProject:
    """Rewrite one section; the later ones stay as they are (the page marks them as
    written before it, with "Rewrite from here")."""
    return _start_job(project, user, "writing_section", ProjectStatus.WRITING,
                      {"section_id": section.pk}, f"Rewrite section {section.position}")


def start_rewrite_from(project: WritingProject, section: Section, user) -> WritingProject:
    """Rewrite this section and every one after it, in order, each following the new text
    before it (and write any not written yet). The write job, resumable as ever: it redoes
    only sections saved before the job was created."""
    return _start_job(project, user, "writing_write", ProjectStatus.WRITING,
                      {"rewrite_from": section.position},
                      f"Rewrite from section {section.position}")


def _replace_sections(project: WritingProject, plan: Plan) -> None:
    project.sections.all().delete()
    Section.objects.bulk_create([
        Section(project=project, position=s.index, point=s.point, target_words=s.words,
                serves=s.serves)
        for s in plan.sections])


# ``who`` in the job verbs: whose access the sources are read with (the job's starter, from
# the runners); left out, the project's creator.
CREATOR = object()


def plan_project(project: WritingProject, progress, who=CREATOR) -> Plan:
    """The writing_plan job (and the first step of a write without an outline)."""
    progress(0, 1, "Planning the sections")
    library = _library(project, who, topics=True)
    plan = make_plan(get_backend(), project.instruction, project.target_words,
                     max_words=max_words(), topics=library.topics if library else None)
    with transaction.atomic():
        _lock(project)
        _replace_sections(project, plan)
        WritingProject.objects.filter(pk=project.pk).update(
            plan_source=plan.source, plan_note=plan.note[:2000], plan_trace=plan.trace,
            requirements=plan.requirements.to_dict(),
            tokens_in=F("tokens_in") + plan.usage.prompt_tokens,
            tokens_out=F("tokens_out") + plan.usage.completion_tokens)
    progress.add_tokens(plan.usage.prompt_tokens, plan.usage.completion_tokens)
    return plan


def finish(project: WritingProject, status: str, error: str = "") -> None:
    WritingProject.objects.filter(pk=project.pk).update(status=status, error=error[:2000])
    # After the commit: the page reloads on "done" and must find the project ended.
    transaction.on_commit(lambda: _publish(project, {"type": "done", "status": status,
                                                     "error": error}))


def reset_after_stop(project: WritingProject) -> None:
    """A cancelled or failed job unlocks the outline; what was written stays."""
    Section.objects.filter(project=project, status=SectionStatus.WRITING).update(
        status=SectionStatus.PENDING, text="", words=0)


# -- Outline editing -----------------------------------------------------------------------

def _check_words(words) -> int:
    try:
        value = int(str(words).strip().replace(",", ""))
    except (TypeError, ValueError):
        raise WritingError("A word count must be a whole number.") from None
    if not MIN_SECTION // 4 <= value <= MAX_SECTION * 2:
        raise WritingError(f"A section's word count must be between {MIN_SECTION // 4} and "
                           f"{MAX_SECTION * 2:,} (planned sections have {MIN_SECTION}–"
                           f"{MAX_SECTION:,}).")
    return value


def _renumber(project: WritingProject, ordered: list[int]) -> None:
    """Positions 1..n in the order of the ids ``ordered``. Two passes, so that the unique
    (project, position) constraint never sees two rows on one position mid-way."""
    offset = 100_000
    for n, pk in enumerate(ordered, start=1):
        Section.objects.filter(pk=pk).update(position=offset + n)
    for n, pk in enumerate(ordered, start=1):
        Section.objects.filter(pk=pk).update(position=n)


def _editable(project: WritingProject) -> WritingProject:
    locked = _lock(project)
    if locked.is_busy:
        raise WritingError(LOCKED)
    return locked


def _mark_edited(project: WritingProject) -> None:
    updates = {"plan_source": "user"} if project.plan_source else {}
    if project.status == ProjectStatus.DRAFT:
        updates["status"] = ProjectStatus.PLANNED
    WritingProject.objects.filter(pk=project.pk).update(**updates)


def add_section(project: WritingProject, point: str, words, after: int | None = None) -> Section:
    point = point.strip()
    if not point:
        raise WritingError("Write the main point of the new section.")
    words = _check_words(words)
    with transaction.atomic():
        project = _editable(project)
        ids = list(project.sections.values_list("pk", flat=True))
        section = Section.objects.create(project=project, position=len(ids) + 1 + 100_000,
                                         point=point, target_words=words,
                                         serves=_serves(project, point))
        where = len(ids) if after is None else max(0, min(len(ids), after))
        ids.insert(where, section.pk)
        _renumber(project, ids)
        _mark_edited(project)
    section.refresh_from_db()
    return section


def update_section(project: WritingProject, section_pk: int, point: str, words) -> Section:
    point = point.strip()
    if not point:
        raise WritingError("A section needs a main point (delete it instead).")
    words = _check_words(words)
    with transaction.atomic():
        project = _editable(project)
        section = project.sections.get(pk=section_pk)
        if section.point != point:  # what it serves is read again from the new point
            section.serves = _serves(project, point)
        section.point, section.target_words = point, words
        section.save(update_fields=["point", "target_words", "serves", "updated_at"])
        _mark_edited(project)
    return section


def delete_section(project: WritingProject, section_pk: int) -> None:
    with transaction.atomic():
        project = _editable(project)
        project.sections.filter(pk=section_pk).delete()
        _renumber(project, list(project.sections.values_list("pk", flat=True)))
        _mark_edited(project)


def move_section(project: WritingProject, section_pk: int, direction: str) -> None:
    with transaction.atomic():
        project = _editable(project)
        ids = list(project.sections.values_list("pk", flat=True))
        i = ids.index(section_pk)  # ValueError: not this project's section
        j = i - 1 if direction == "up" else i + 1
        if 0 <= j < len(ids):
            ids[i], ids[j] = ids[j], ids[i]
            _renumber(project, ids)
            _mark_edited(project)


def requirements(project: WritingProject) -> Spec:
    return Spec.from_dict(project.requirements)


def _serves(project: WritingProject, point: str) -> list[str]:
    return serves(requirements(project), PlanSection(0, point, 0))


def engine_plan(project: WritingProject) -> Plan:
    spec = requirements(project)
    sections = [PlanSection(s.position, s.point, s.target_words, list(s.serves))
                for s in project.sections.all()]
    return Plan(annotate(spec, sections), project.plan_source or "user", project.plan_note,
                requirements=spec)


# -- Writing -------------------------------------------------------------------------------

def _publish(project: WritingProject, event: dict) -> None:
    events.publish(events.channel("writing", project.pk), event, settings.REDIS_URL)


class _Live:
    """Publishes each token of the section being written and saves its partial text now
    and then, so that a page reloaded mid-section shows what is written so far."""

    def __init__(self, project: WritingProject, save_every: float = 1.5):
        self.project, self.save_every = project, save_every
        self.position, self.text, self.saved_at = 0, "", time.monotonic()
        self.lock = threading.Lock()

    def start(self, position: int) -> None:
        with self.lock:
            self.position, self.text = position, ""
        Section.objects.filter(project=self.project, position=position).update(
            status=SectionStatus.WRITING, text="", words=0)
        _publish(self.project, {"type": "section", "section": position})

    def __call__(self, delta: str) -> None:
        with self.lock:
            self.text += delta
            _publish(self.project, {"type": "token", "section": self.position, "text": delta})
            if time.monotonic() - self.saved_at > self.save_every:
                Section.objects.filter(project=self.project, position=self.position,
                                       status=SectionStatus.WRITING).update(text=self.text)
                self.saved_at = time.monotonic()


def sources(project: WritingProject, who=CREATOR) -> list[Document]:
    """The project's sources now, as ``who`` may read them (apps.collections.access): the
    reference documents picked by hand and, with a collection, its ready documents at this
    moment (documents added to it since are included: the collection is resolved each time
    a job plans or writes, not when the project was made). A collection ``who`` may no
    longer read is refused (WritingError): none of its text reaches a new section."""
    team = project.team
    who = project.created_by if who is CREATOR else who
    readable = access.readable_documents(team, who)
    chosen = Q(pk__in=project.documents.values("pk"))
    if project.collection_id is not None:
        if not access.readable_collections(team, who).filter(
                pk=project.collection_id).exists():
            raise WritingError(LOST_COLLECTION)
        chosen |= Q(filing__collection_id=project.collection_id, status=DocStatus.READY)
    return list(readable.filter(chosen).only("pk", "title", "headings").order_by("title"))


def library_of(team, documents: list[Document], instruction: str,
               topics: bool = False) -> Library | None:
    """``documents`` (readable ones: the caller resolved them) as the engine's library (None
    without any): exact passages by hybrid search scoped from the team, the documents'
    texts (read on first use) for the citation check, and with ``topics`` their headings
    and the passages retrieved for the instruction, for the plan."""
    if not documents:
        return None
    retrieve = passage_retriever(team, [d.pk for d in documents])
    library = Library([SourceDocument(d.pk, d.title, load=_text_loader(d.pk))
                       for d in documents], retrieve)
    if topics:
        headings = {d.pk: [h.get("text", "") for h in d.headings or []] for d in documents}
        without = {d.pk for d in documents if not d.headings}
        key = [p.text for p in retrieve(instruction, TOPIC_PASSAGES)
               if p.document_id in without] if without else []
        library.topics = source_topics(headings, key)
    return library


def _library(project: WritingProject, who=CREATOR, topics: bool = False) -> Library | None:
    """The library a job writes from; the collection's documents in it are recorded as
    drawn on (``WritingProject.drawn``) before any of their text is used."""
    documents = sources(project, who)
    if project.collection_id is not None:
        picked = set(project.documents.values_list("pk", flat=True))
        project.drawn.add(*[d for d in documents if d.pk not in picked])
    return library_of(project.team, documents, project.instruction, topics)


def _text_loader(pk: int):
    return lambda: Document.objects.values_list("text", flat=True).get(pk=pk)


def save_section(project: WritingProject, position: int, result: SectionResult) -> bool:
    """Store a written section. First writer wins: a section already written (by an earlier
    delivery of the same job) is kept, never written twice. Returns whether it was saved."""
    with transaction.atomic():
        section = (Section.objects.select_for_update()
                   .filter(project=project, position=position).first())
        if section is None or section.status == SectionStatus.DONE:
            return False
        section.text, section.words, section.written_at = result.text, result.words, \
            timezone.now()
        section.status = SectionStatus.DONE if result.status == "done" else SectionStatus.EMPTY
        section.attempts = F("attempts") + result.attempts
        section.rounds, section.seconds = result.rounds, round(result.seconds, 2)
        section.trace = result.to_dict()["trace"]
        section.checks = result.checks
        section.citations, section.citing = result.citations, result.citing
        section.save()
        WritingProject.objects.filter(pk=project.pk).update(
            tokens_in=F("tokens_in") + result.usage.prompt_tokens,
            tokens_out=F("tokens_out") + result.usage.completion_tokens)
    _publish(project, {"type": "section_done", "section": position, "words": result.words,
                       "status": result.status})
    return True


def write_project(project: WritingProject, progress, *, rewrite_from: int | None = None,
                  since=None, who=CREATOR) -> dict:
    """The writing_write job: plan if there is no outline, then write every section not
    yet written; with ``rewrite_from``, also rewrite the written sections from that
    position on that were saved before ``since`` (the job's creation). Resumable: a re-run
    reads the sections already saved (rewritten) and goes on."""
    if not project.sections.exists():
        plan_project(project, progress, who)
    reset_after_stop(project)  # a section cut off by a kill is written again from scratch
    plan = engine_plan(project)
    if not plan.sections:
        raise WritingError("The outline is empty: add at least one section.")
    done = {s.position: s.text for s in project.sections.all()
            if s.is_written and not _to_rewrite(s, rewrite_from, since)}
    live = _Live(project)

    def save(position: int, result: SectionResult) -> None:
        save_section(project, position, result)
        if result.usage.total_tokens:
            progress.add_tokens(result.usage.prompt_tokens, result.usage.completion_tokens)

    result = write_document(project.instruction, plan, backend=get_backend(),
                            done_sections=done, save_section=save, progress=progress,
                            on_token=live, on_section_start=live.start,
                            library=_library(project, who), style=project.style)
    empty = list(project.sections.filter(status=SectionStatus.EMPTY)
                 .values_list("position", flat=True))
    return {"project_id": project.pk, "words": result.words, "target": project.target_words,
            "written": [s.index for s in result.sections], "resumed_after": result.skipped,
            "empty_sections": empty, "seconds": round(result.seconds, 1)}


def _to_rewrite(section: Section, rewrite_from: int | None, since) -> bool:
    if rewrite_from is None or section.position < rewrite_from:
        return False
    return section.written_at is None or since is None or section.written_at < since


def regenerate_section(project: WritingProject, section_pk: int, progress,
                       who=CREATOR) -> dict:
    """The writing_section job: write one section again, in place."""
    section = project.sections.filter(pk=section_pk).first()
    if section is None:
        return {"skipped": "The section was deleted."}
    plan = engine_plan(project)
    library = _library(project, who)
    before = {s.position: Library.plain(s.text)
              for s in project.sections.filter(position__lt=section.position) if s.text}
    live = _Live(project)
    progress(0, 1, f"Rewriting section {section.position}")
    live.start(section.position)
    previous = join_sections(before)
    points = {s.index: s.point for s in plan.sections}
    result = write_section(
        get_backend(), project.instruction, plan, section.position, previous=previous,
        summary=running_summary([(i, points[i], before[i]) for i in sorted(before)]),
        style=project.style, on_token=live, earlier=[before[i] for i in sorted(before)],
        library=library)
    save_section(project, section.position, result)
    progress.add_tokens(result.usage.prompt_tokens, result.usage.completion_tokens)
    return {"project_id": project.pk, "section": section.position, "words": result.words,
            "target": section.target_words, "status": result.status}

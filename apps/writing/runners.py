"""Job kinds of long writing: plan, write (resumable), rewrite one section.

The runners only write; the project follows its job through the hooks below, which
apps/jobs calls once per move of the job (apps/jobs/kinds.py)."""

from __future__ import annotations

from functools import partial

from apps.jobs.kinds import Hooks, register
from apps.writing import services
from apps.writing.models import ProjectStatus, WritingProject


def _project(job) -> WritingProject | None:
    """The job's project, while this job is the project's job (an older job of the project,
    retried from the jobs page, must not run over or unlock the newer one)."""
    return WritingProject.objects.filter(pk=job.params["project_id"], team_id=job.team_id,
                                         job_id=job.pk).first()


def _after_rewrite(project: WritingProject) -> str:
    complete = not project.sections.exclude(status__in=["done", "empty"]).exists()
    return ProjectStatus.DONE if complete else ProjectStatus.PLANNED


def _stopped(project: WritingProject) -> str:
    return ProjectStatus.PLANNED if project.sections.exists() else ProjectStatus.DRAFT


# What the project says once each kind's job succeeded, and while it runs.
DONE = {"writing_plan": lambda project: ProjectStatus.PLANNED,
        "writing_write": lambda project: ProjectStatus.DONE,
        "writing_section": _after_rewrite}
BUSY = {"writing_plan": ProjectStatus.PLANNING, "writing_write": ProjectStatus.WRITING,
        "writing_section": ProjectStatus.WRITING}


def on_success(job, result: dict) -> None:
    project = _project(job)
    if project is not None:
        services.finish(project, DONE[job.kind](project))


def on_failure(job, error: str) -> None:
    project = _project(job)
    if project is not None:
        services.reset_after_stop(project)
        services.finish(project, ProjectStatus.FAILED, error)


def on_cancel(job) -> None:
    project = _project(job)
    if project is not None:
        services.reset_after_stop(project)
        services.finish(project, _stopped(project), "Stopped by a user; what was written is kept.")


def on_requeue(job, reason: str) -> None:
    """Waiting again: a section half-written by the lost attempt is written anew; the
    project stays locked for its job."""
    project = _project(job)
    if project is not None:
        services.reset_after_stop(project)
        WritingProject.objects.filter(pk=project.pk).update(status=BUSY[job.kind], error="")


HOOKS = Hooks(on_success=on_success, on_failure=on_failure, on_cancel=on_cancel,
              on_requeue=on_requeue)
SKIPPED = {"skipped": "The writing project was deleted or has another job now."}
# Every writing kind: the project follows it; a WritingError's message is shown as it is.
writing_kind = partial(register, hooks=HOOKS, plain_errors=(services.WritingError, ValueError))


# The sources are read with the access of whoever started the job (job.created_by):
# someone who lost access to the project's collection gets none of its text.
def _on_project(job, work) -> dict:
    project = _project(job)
    return SKIPPED if project is None else work(project)


@writing_kind("writing_plan", "Plan a long text", queue="interactive")
def run_plan(job, progress) -> dict:
    def work(project):
        plan = services.plan_project(project, progress, job.created_by)
        return {"project_id": project.pk, "source": plan.source, "note": plan.note,
                "sections": len(plan.sections), "total": plan.total}

    return _on_project(job, work)


@writing_kind("writing_write", "Write a long text", queue="batch")
def run_write(job, progress) -> dict:
    return _on_project(job, lambda project: services.write_project(
        project, progress, rewrite_from=job.params.get("rewrite_from"), since=job.created_at,
        who=job.created_by))


@writing_kind("writing_section", "Rewrite one section", queue="interactive")
def run_section(job, progress) -> dict:
    return _on_project(job, lambda project: services.regenerate_section(
        project, job.params["section_id"], progress, job.created_by))

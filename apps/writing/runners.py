"""Job kinds of long writing: plan, write (resumable), rewrite one section."""

from __future__ import annotations

from apps.jobs.kinds import register
from apps.jobs.services import Superseded
from apps.writing import services
from apps.writing.models import ProjectStatus, WritingProject
from workers.progress import Cancelled


def _project(job) -> WritingProject | None:
    return WritingProject.objects.filter(pk=job.params["project_id"], team=job.team).first()


def _failed(job, error: str) -> None:
    project = _project(job)
    if project is not None:
        services.reset_after_stop(project)
        services.finish(project, ProjectStatus.FAILED, f"The job failed: {error}")


def _run(job, progress, work, done_status) -> dict:
    project = _project(job)
    if project is None:
        return {"skipped": "The writing project was deleted."}
    try:
        result = work(project, progress)
    except Superseded:  # another delivery owns the job now: leave the project to it
        raise
    except Cancelled:
        services.reset_after_stop(project)
        after = ProjectStatus.PLANNED if project.sections.exists() else ProjectStatus.DRAFT
        services.finish(project, after, "Stopped by a user; what was written is kept.")
        raise
    except Exception as exc:
        if getattr(exc, "transient", False):  # the job retries with backoff; stay locked
            raise
        services.reset_after_stop(project)
        message = str(exc) if isinstance(exc, services.WritingError | ValueError) else \
            f"{type(exc).__name__}: {exc}"
        services.finish(project, ProjectStatus.FAILED, message)
        raise
    services.finish(project, done_status(project) if callable(done_status) else done_status)
    return result


@register("writing_plan", "Plan a long text", queue="interactive", on_failure=_failed)
def run_plan(job, progress) -> dict:
    def work(project, progress):
        plan = services.plan_project(project, progress)
        return {"project_id": project.pk, "source": plan.source, "note": plan.note,
                "sections": len(plan.sections), "total": plan.total}

    return _run(job, progress, work, ProjectStatus.PLANNED)


@register("writing_write", "Write a long text", queue="batch", on_failure=_failed)
def run_write(job, progress) -> dict:
    def work(project, progress):
        return services.write_project(project, progress,
                                      rewrite_from=job.params.get("rewrite_from"),
                                      since=job.created_at)

    return _run(job, progress, work, ProjectStatus.DONE)


@register("writing_section", "Rewrite one section", queue="interactive", on_failure=_failed)
def run_section(job, progress) -> dict:
    def work(project, progress):
        return services.regenerate_section(project, job.params["section_id"], progress)

    return _run(job, progress, work, _after_rewrite)


def _after_rewrite(project: WritingProject) -> str:
    complete = not project.sections.exclude(status__in=["done", "empty"]).exists()
    return ProjectStatus.DONE if complete else ProjectStatus.PLANNED

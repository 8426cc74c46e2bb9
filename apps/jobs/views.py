from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseStopPolling

from apps.collections import access
from apps.jobs import services
from apps.teams.access import team_view
from apps.teams.models import Role


def _jobs(request):
    """The team's jobs, less those carrying a document the person may not read."""
    return access.visible_jobs(request.team, request.membership)


@team_view()
@require_GET
def job_list(request):
    # The word-count demo that started here lives on the model status page (#21.3).
    page = Paginator(_jobs(request), 25).get_page(request.GET.get("page"))
    return render(request, "jobs/list.html", {"page": page})


@team_view()
def job_detail(request, pk: int):
    job = get_object_or_404(_jobs(request), pk=pk)
    return render(request, "jobs/detail.html", {"job": job})


@team_view()
def job_progress(request, pk: int):
    """The polled partial: one job's row. HTTP 286 tells htmx to stop polling."""
    job = get_object_or_404(_jobs(request), pk=pk)
    template = "jobs/detail.html#job-status" if request.GET.get("view") == "detail" else \
        "jobs/list.html#job-row"
    response = render(request, template, {"job": job})
    if job.is_finished:
        stop = HttpResponseStopPolling(response.content)
        return stop
    return response


@team_view(Role.MEMBER)
@require_POST
def job_cancel(request, pk: int):
    job = services.cancel(get_object_or_404(_jobs(request), pk=pk))
    if request.htmx:
        return job_progress(request, team_slug=request.team.slug, pk=job.pk)
    messages.info(request, f"Job #{job.pk}: {job.message or job.status}.")
    return redirect("jobs:detail", team_slug=request.team.slug, pk=job.pk)


@team_view(Role.MEMBER)
@require_POST
def job_retry(request, pk: int):
    job = services.retry(get_object_or_404(_jobs(request), pk=pk))
    messages.info(request, f"Job #{job.pk} queued again.")
    return redirect("jobs:detail", team_slug=request.team.slug, pk=job.pk)

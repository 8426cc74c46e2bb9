from __future__ import annotations

from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django_htmx.http import HttpResponseStopPolling

from apps.collections import access
from apps.compress import services
from apps.compress.forms import CompressForm
from apps.teams.access import team_view
from apps.teams.models import Role


def _jobs(request):
    return access.visible_jobs(request.team, request.membership).filter(kind=services.KIND)


def _form(request, *args) -> CompressForm:
    return CompressForm(*args, team=request.team,
                        documents=access.readable_documents(request.team, request.membership))


@team_view(write_minimum=Role.MEMBER)
def index(request):
    if request.method == "POST":
        form = _form(request, request.POST)
        if form.is_valid():
            job = services.start(request.team, request.user, form.cleaned_data)
            return redirect("compress:result", team_slug=request.team.slug, pk=job.pk)
        status = 400
    else:
        form, status = _form(request), 200
    return render(request, "compress/index.html",
                  {"form": form, "recent": _jobs(request)[:20]}, status=status)


def _context(request, pk: int) -> dict:
    job = get_object_or_404(_jobs(request), pk=pk)
    original = ""
    if job.result:
        try:
            original = services.source_text(job)[1]
        except ValueError:
            original = ""
    return {"job": job, "result": job.result, "original": original}


@team_view()
def result(request, pk: int):
    return render(request, "compress/result.html", _context(request, pk))


@team_view()
def progress(request, pk: int):
    """The polled partial; HTTP 286 stops htmx polling once the job has finished."""
    context = _context(request, pk)
    response = render(request, "compress/result.html#outcome", context)
    if context["job"].is_finished:
        return HttpResponseStopPolling(response.content)
    return response


@team_view()
def download(request, pk: int):
    job = get_object_or_404(_jobs(request), pk=pk)
    if not job.result:
        return HttpResponse("The compression has not finished.", status=409,
                            content_type="text/plain; charset=utf-8")
    response = HttpResponse(job.result["text"], content_type="text/plain; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="compressed-{job.pk}.txt"'
    return response

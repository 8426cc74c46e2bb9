from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.text import slugify
from django.views.decorators.http import require_POST

from apps.collections import access
from apps.core.downloads import CONTENT_TYPES as EXPORT_FORMATS
from apps.core.downloads import download
from apps.documents.models import DocStatus
from apps.teams.access import team_view
from apps.teams.models import Role
from apps.writing import document, services
from apps.writing.models import WritingProject
from workers.exports import ExportFailed
from workers.writing import DEFAULT_TARGET_WORDS


def _project(request, pk: int) -> WritingProject:
    """Hidden (404) if a reference document is one the person may not read."""
    return get_object_or_404(access.visible_projects(request.team, request.membership), pk=pk)


def _check_readable(ready, chosen) -> None:
    """References only among the documents the person may read (a hidden one is refused as
    one that does not exist)."""
    allowed = {str(pk) for pk in ready.values_list("pk", flat=True)}
    if not {str(c).strip() for c in chosen} <= allowed:
        raise services.WritingError(services.NOT_IN_LIBRARY)


@team_view(write_minimum=Role.MEMBER)
def project_list(request):
    readable = access.readable_documents(request.team, request.membership)
    ready = readable.filter(status=DocStatus.READY).order_by("title")
    form, error = {}, ""
    if request.method == "POST":
        form = request.POST
        try:
            _check_readable(ready, request.POST.getlist("documents"))
            collection = services.source_collection(request.team, request.membership,
                                                    request.POST.get("collection"))
            target = services.parse_target(request.POST.get("target_words", ""))
            project = services.create_project(
                request.team, request.user, instruction=request.POST.get("instruction", ""),
                target_words=target, title=request.POST.get("title", ""),
                style=request.POST.get("style", ""), documents=request.POST.getlist("documents"),
                collection=collection)
        except services.WritingError as err:
            error = str(err)
        else:
            if request.POST.get("then") == "write":  # skip the outline: plan and write
                services.start_write(project, request.user)
            return redirect("writing:detail", team_slug=request.team.slug, pk=project.pk)
    projects = access.visible_projects(request.team, request.membership)[:100]
    return render(request, "writing/list.html", {
        "projects": projects, "ready": ready, "form": form, "error": error,
        "chosen": form.getlist("documents") if form else [], "max_words": services.max_words(),
        "collections": access.readable_collections(request.team, request.membership),
        "chosen_collection": form.get("collection", "") if form else "",
        "default_words": DEFAULT_TARGET_WORDS,
    }, status=400 if error else 200)


def _context(project: WritingProject) -> dict:
    return {"project": project, **document.progress_summary(project),
            "document": document.document_text(project) if project.sections.exists() else ""}


@team_view()
def detail(request, pk: int):
    project = _project(request, pk)
    return render(request, "writing/detail.html", {
        **_context(project),
        "collections": access.readable_collections(request.team, request.membership)})


@team_view(Role.MEMBER)
@require_POST
def source(request, pk: int):
    """Choose (or drop) the project's collection source, among those the person may read."""
    project = _project(request, pk)
    try:
        services.set_collection(project, services.source_collection(
            request.team, request.membership, request.POST.get("collection")))
    except services.WritingError as err:
        messages.error(request, str(err))
    return redirect("writing:detail", team_slug=request.team.slug, pk=project.pk)


@team_view()
def progress(request, pk: int):
    """The live progress partial; HTTP 286 stops the polling once nothing runs."""
    project = _project(request, pk)
    response = render(request, "writing/detail.html#progress", _context(project))
    if not project.is_busy:
        response.status_code = 286
    return response


def _outline_response(request, project: WritingProject, error: str = ""):
    """After an outline edit: the outline partial for HTMX, else back to the page."""
    project.refresh_from_db()
    if request.htmx:
        return render(request, "writing/detail.html#outline",
                      {**_context(project), "outline_error": error})
    if error:
        messages.error(request, error)
    return redirect("writing:detail", team_slug=request.team.slug, pk=project.pk)


def _edit(request, pk: int, action) -> HttpResponse:
    project = _project(request, pk)
    try:
        action(project)
    except services.WritingError as err:
        return _outline_response(request, project, str(err))
    return _outline_response(request, project)


def _section_pk(project: WritingProject, section_pk: int) -> int:
    get_object_or_404(project.sections, pk=section_pk)
    return section_pk


@team_view(Role.MEMBER)
@require_POST
def section_add(request, pk: int):
    after = request.POST.get("after")
    return _edit(request, pk, lambda p: services.add_section(
        p, request.POST.get("point", ""), request.POST.get("words", ""),
        int(after) if after and after.isdigit() else None))


@team_view(Role.MEMBER)
@require_POST
def section_edit(request, pk: int, section_pk: int):
    return _edit(request, pk, lambda p: services.update_section(
        p, _section_pk(p, section_pk), request.POST.get("point", ""),
        request.POST.get("words", "")))


@team_view(Role.MEMBER)
@require_POST
def section_delete(request, pk: int, section_pk: int):
    return _edit(request, pk, lambda p: services.delete_section(p, _section_pk(p, section_pk)))


@team_view(Role.MEMBER)
@require_POST
def section_move(request, pk: int, section_pk: int):
    direction = "up" if request.POST.get("direction") == "up" else "down"
    return _edit(request, pk, lambda p: services.move_section(
        p, _section_pk(p, section_pk), direction))


def _start(request, pk: int, start) -> HttpResponse:
    project = _project(request, pk)
    try:
        start(project)
    except services.WritingError as err:
        messages.error(request, str(err))
    return redirect("writing:detail", team_slug=request.team.slug, pk=project.pk)


@team_view(Role.MEMBER)
@require_POST
def plan(request, pk: int):
    return _start(request, pk, lambda p: services.start_plan(p, request.user))


@team_view(Role.MEMBER)
@require_POST
def write(request, pk: int):
    return _start(request, pk, lambda p: services.start_write(p, request.user))


@team_view(Role.MEMBER)
@require_POST
def regenerate(request, pk: int, section_pk: int):
    return _start(request, pk, lambda p: services.start_regenerate(
        p, get_object_or_404(p.sections, pk=section_pk), request.user))


@team_view(Role.MEMBER)
@require_POST
def rewrite_from(request, pk: int, section_pk: int):
    return _start(request, pk, lambda p: services.start_rewrite_from(
        p, get_object_or_404(p.sections, pk=section_pk), request.user))


@team_view(Role.MEMBER)
@require_POST
def delete(request, pk: int):
    project = _project(request, pk)
    if project.is_busy:
        messages.error(request, "Stop the running job first (Jobs page), then delete.")
        return redirect("writing:detail", team_slug=request.team.slug, pk=project.pk)
    project.delete()
    messages.info(request, "Writing project deleted.")
    return redirect("writing:list", team_slug=request.team.slug)


def _filename(project: WritingProject, ext: str) -> str:
    return f"{slugify(project.title)[:80] or 'document'}.{ext}"


@team_view()
def export(request, pk: int, fmt: str):
    if fmt not in EXPORT_FORMATS:
        raise Http404("No such export format")
    project = _project(request, pk)
    try:
        return download(document.export(project, fmt), _filename(project, fmt))
    except ExportFailed as err:
        messages.error(request, f"The export failed: {err}.")
        return redirect("writing:detail", team_slug=request.team.slug, pk=project.pk)

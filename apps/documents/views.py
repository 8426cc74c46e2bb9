from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseStopPolling

from apps.collections import access
from apps.collections import services as collections
from apps.core.bodylimit import declared_length, upload_limit
from apps.documents import search as doc_search
from apps.documents import services, titles
from apps.documents.models import DocStatus
from apps.teams.access import team_view
from apps.teams.models import Role


def _readable(request):
    return access.readable_documents(request.team, request.membership)


def _writable(request):
    return access.writable_documents(request.team, request.membership)


def _changeable(request, pk: int):
    """A document to change: 404 if the person may not read it, 403 if only read."""
    document = get_object_or_404(_readable(request), pk=pk)
    if not _writable(request).filter(pk=pk).exists():
        raise PermissionDenied("You have read access only to this document's collection.")
    return document


@team_view()
def library(request):
    shown = request.GET.get("collection", "")
    readable = access.readable_collections(request.team, request.membership)
    documents = collections.in_collection(_readable(request), readable, shown)
    page = Paginator(documents.select_related("job", "filing__collection"), 30).get_page(
        request.GET.get("page"))
    return render(request, "documents/library.html", {
        "page": page, "max_mb": settings.DOCUMENT_MAX_BYTES // (1024 * 1024),
        "max_files": settings.DOCUMENT_MAX_FILES_PER_UPLOAD, "collections": readable,
        "shown_collection": shown,
        "upload_collections": access.writable_collections(request.team, request.membership),
    })


def _result(request, name, outcome=None, error=None, status=200):
    if error:
        return {"name": name, "ok": False, "error": error.message, "code": error.code,
                "status": error.status}
    doc = outcome.document
    slug = request.team.slug
    return {
        "name": name, "ok": True, "id": doc.pk, "duplicate": not outcome.created,
        "title": doc.title, "state": doc.status,
        "url": reverse("documents:detail", kwargs={"team_slug": slug, "pk": doc.pk}),
        "status_url": reverse("documents:status", kwargs={"team_slug": slug, "pk": doc.pk}),
    }


@team_view(Role.MEMBER)
@require_POST
def upload(request):
    wants_json = "application/json" in request.headers.get("Accept", "")
    # Refuse an oversized body before it is parsed (apps.core.bodylimit's edge check, for a
    # body without Content-Length too, uses the same limits); the page sends one file a time.
    length = declared_length(request.META)
    if length > upload_limit(settings.DOCUMENT_MAX_FILES_PER_UPLOAD) or (
        length > upload_limit(1) and wants_json
    ):
        err = services.UploadRefused(
            f"The upload is {length / 1024 / 1024:.0f} MB; the limit is "
            f"{settings.DOCUMENT_MAX_BYTES // (1024 * 1024)} MB per file.", "too_large", 413)
        if wants_json:
            return JsonResponse({"results": [_result(request, "", error=err)]}, status=413)
        messages.error(request, err.message)
        return redirect("documents:library", team_slug=request.team.slug)
    files = request.FILES.getlist("files")
    results = []
    if not files:
        results.append(_result(request, "", error=services.UploadRefused("Choose a file.")))
    try:  # a collection the person may add to (or none)
        target = collections.target(request.team, request.membership,
                                    request.POST.get("collection"))
    except collections.CollectionRefused as err:
        files, target = [], None
        results.append(_result(request, "", error=services.UploadRefused(str(err), "forbidden",
                                                                        403)))
    for uploaded in files[: settings.DOCUMENT_MAX_FILES_PER_UPLOAD]:
        try:
            outcome = collections.upload(request.team, request.membership, request.user,
                                         uploaded, target)
            results.append(_result(request, uploaded.name, outcome))
        except services.UploadRefused as err:
            results.append(_result(request, uploaded.name, error=err))
    if len(files) > settings.DOCUMENT_MAX_FILES_PER_UPLOAD:
        results.append(_result(request, "", error=services.UploadRefused(
            f"Only {settings.DOCUMENT_MAX_FILES_PER_UPLOAD} files per upload; "
            f"{len(files) - settings.DOCUMENT_MAX_FILES_PER_UPLOAD} were not uploaded.")))
    status = 200 if all(r["ok"] for r in results) else max(
        r.get("status", 400) for r in results if not r["ok"])
    if wants_json:
        return JsonResponse({"results": results}, status=status)
    for r in results:
        if r["ok"]:
            note = "is already in the library" if r["duplicate"] else "was uploaded"
            messages.success(request, f"{r['name']} {note}.")
        else:
            messages.error(request, f"{r['name'] or 'Upload'}: {r['error']}")
    return redirect("documents:library", team_slug=request.team.slug)


@team_view()
def status(request, pk: int):
    document = get_object_or_404(_readable(request).select_related("job"), pk=pk)
    if "application/json" in request.headers.get("Accept", ""):
        job = document.job
        return JsonResponse({
            "id": document.pk, "state": document.status, "error": document.error,
            "percent": 100 if document.status == DocStatus.READY else (job.percent if job else 0),
            "message": job.message if job else "",
        })
    response = render(request, "documents/library.html#doc-row", {"doc": document})
    if document.status in (DocStatus.READY, DocStatus.FAILED):
        return HttpResponseStopPolling(response.content)
    return response


@team_view()
def detail(request, pk: int):
    document = get_object_or_404(
        _readable(request).select_related("job", "filing__collection"), pk=pk)
    context = {"doc": document,
               "can_change": _writable(request).filter(pk=document.pk).exists(),
               "move_to": access.writable_collections(request.team, request.membership),
               "ocr_page_seconds": settings.DOCUMENT_OCR_PAGE_SECONDS}
    if document.status == DocStatus.READY and document.page_starts:
        start = _int(request.GET.get("start"))
        end = _int(request.GET.get("end"))
        if start is not None and end is not None and 0 <= start < end <= len(document.text):
            number = document.page_of(start)
        else:
            start = end = None
            number = _int(request.GET.get("page")) or 1
        if not 1 <= number <= document.pages:
            raise Http404("No such page")
        page_start, page_end = document.page_bounds(number)
        text = document.text[page_start:page_end]
        if start is not None:
            body = doc_search.highlight_span(text, start - page_start, end - page_start)
        else:
            body = doc_search.highlight_span(text, 0, 0)
        context.update(page_number=number, page_body=body,
                       highlight=(start, end) if start is not None else None,
                       headings=[h for h in document.headings
                                 if page_start <= h["start"] < page_end])
    return render(request, "documents/detail.html", context)


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


@team_view(Role.MEMBER)
@require_POST
def delete(request, pk: int):
    document = _changeable(request, pk)
    title = document.title
    services.delete(document)
    messages.success(request, f"“{title}” was deleted with its chunks and vectors.")
    return redirect("documents:library", team_slug=request.team.slug)


@team_view(Role.MEMBER)
@require_POST
def rename(request, pk: int):
    document = _changeable(request, pk)
    try:
        titles.rename(document, request.POST.get("title", ""))
    except titles.TitleRefused as err:
        messages.error(request, str(err))
    else:
        messages.success(request, f"Renamed to “{document.title}”.")
    return redirect("documents:detail", team_slug=request.team.slug, pk=document.pk)


@team_view(Role.MEMBER)
@require_POST
def reingest(request, pk: int):
    document = _changeable(request, pk)
    services.reingest(document, request.user)
    messages.info(request, f"“{document.title}” is queued for ingestion again.")
    return redirect("documents:detail", team_slug=request.team.slug, pk=document.pk)


@team_view()
def search(request):
    query = request.GET.get("q", "").strip()[:500]
    mode = request.GET.get("mode", "hybrid")
    if mode not in doc_search.MODES:
        mode = "hybrid"
    # The readable ids as a query: a subquery of the search's, or a list where one is read.
    readable = _readable(request).values_list("pk", flat=True)
    hits = doc_search.search(request.team, query, mode=mode, limit=20,
                             document_ids=readable) if query else []
    context = {"query": query, "mode": mode, "hits": hits, "modes": doc_search.MODES}
    template = "documents/search.html#results" if request.htmx else "documents/search.html"
    return render(request, template, context)

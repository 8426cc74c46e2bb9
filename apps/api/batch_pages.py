"""The batch pages: the team's batches (the same rows the API lists) with a form for a new
one, its estimate before it runs, and a batch's live progress, results and downloads.

Thin views: input → apps.api.batch_files, estimate → batch_estimate, create, cancel and
retry → apps.api.services (as the API), results → batch_results."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseStopPolling

from apps.api import batch_files, batch_results, services
from apps.api.batch_estimate import SAMPLE_PAIRS, batch_estimate
from apps.api.items import MAX_ANSWER_TOKENS
from apps.collections import access
from apps.documents.models import DocStatus
from apps.teams.access import team_view
from apps.teams.models import Role
from workers.qa.budget import DEFAULT_ANSWER_TOKENS
from workers.qa.options import STRATEGIES

ITEMS_PER_PAGE = 50
KINDS = [("qa", "Questions about documents"), ("compress", "Compress texts"),
         ("write", "Write texts")]
DOWNLOADS = {
    "csv": ("text/csv; charset=utf-8", batch_results.results_csv),
    "jsonl": ("application/x-ndjson", lambda batch: "".join(batch_results.results_jsonl(batch))),
    "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
             batch_results.results_xlsx),
}


class BatchForm(forms.Form):
    kind = forms.ChoiceField(choices=KINDS, initial="qa", widget=forms.RadioSelect)
    name = forms.CharField(max_length=200, required=False)
    text = forms.CharField(required=False, strip=False, widget=forms.Textarea(attrs={
        "rows": 6, "placeholder": "What is the notice period?\nWho are the parties?"}))
    file = forms.FileField(required=False)
    documents = forms.TypedMultipleChoiceField(
        coerce=int, required=False, widget=forms.CheckboxSelectMultiple,
        error_messages={"invalid_choice": "Unknown document id %(value)s: pick one of this "
                                          "team's ready documents."})
    each_document = forms.BooleanField(required=False)
    strategy = forms.ChoiceField(choices=[(s.name, s.label) for s in STRATEGIES.values()],
                                 initial="auto")
    answer_tokens = forms.IntegerField(
        required=False, min_value=1, max_value=MAX_ANSWER_TOKENS, label="Longest answer",
        help_text=f"In tokens; {DEFAULT_ANSWER_TOKENS} when empty.")

    def __init__(self, documents, *args, **kwargs):
        """``documents``: those the person may read (``readable``)."""
        super().__init__(*args, **kwargs)
        self.ready = list(documents.filter(status=DocStatus.READY)
                          .only("pk", "title", "tokens").order_by("title"))
        self.fields["documents"].choices = [(d.pk, d.title) for d in self.ready]

    def batch_request(self) -> batch_files.Request:
        data, upload = self.cleaned_data, self.cleaned_data.get("file")
        limit = settings.API_JSON_MAX_BYTES
        return batch_files.Request(
            kind=data["kind"], text=data["text"] or "",
            upload=batch_files.Upload(upload.name, upload.read(limit + 1)) if upload else None,
            document_ids=data["documents"], each_document=data["each_document"],
            strategy=data["strategy"], name=data["name"],
            options={"answer_tokens": data["answer_tokens"]} if data["answer_tokens"] else {})


def _spec(request, form: BatchForm) -> tuple[dict | None, list[str]]:
    """The API request for the form, or the messages that say what is wrong."""
    if not form.is_valid():
        return None, [f"{form.fields[name].label or name}: {' '.join(errs)}"
                      if name != "__all__" else " ".join(errs)
                      for name, errs in form.errors.items()]
    try:
        return batch_files.batch_spec(request.team, form.batch_request(),
                                      readable(request)), []
    except batch_files.BatchInputError as err:
        return None, err.messages


def refusal_messages(errors) -> list[str]:
    """services.BatchRefused's errors (a dict of lists, a list or a string) as lines."""
    if isinstance(errors, dict):
        return [m for key, value in errors.items() for m in refusal_messages(value)
                if key] or [str(errors)]
    if isinstance(errors, list):
        return [str(e) for e in errors]
    return [str(errors)]


def readable(request):
    return access.readable_documents(request.team, request.membership)


@team_view(Role.VIEWER, write_minimum=Role.MEMBER)
def batch_list(request):
    form, errors, status = BatchForm(readable(request)), [], 200
    if request.method == "POST":
        form = BatchForm(readable(request), request.POST, request.FILES)
        spec, errors = _spec(request, form)
        if spec is not None:
            try:
                batch = services.submit_batch(
                    request.team, spec, user=request.user, documents=readable(request),
                    collections=access.readable_collections(request.team,
                                                            request.membership)).batch
            except services.BatchRefused as err:
                errors = refusal_messages(err.errors)
            else:
                messages.success(request, f"Batch {batch.pk} was created with "
                                          f"{batch.total:,} items.")
                return redirect("batches:detail", team_slug=request.team.slug, pk=batch.pk)
        status = 400
    page = Paginator(access.visible_batches(request.team, request.membership)
                     .select_related("created_by", "api_key"), 30)
    return render(request, "batches/list.html", {
        "page": page.get_page(request.GET.get("page")), "form": form, "errors": errors,
        "limit": settings.API_BATCH_MAX_ITEMS}, status=status)


@team_view(Role.MEMBER)
@require_POST
def preview(request):
    """The form's estimate (HTMX): the item count, and for questions what they will cost."""
    form = BatchForm(readable(request), request.POST, request.FILES)
    spec, errors = _spec(request, form)
    context = {"errors": errors, "spec": spec, "sample_pairs": SAMPLE_PAIRS}
    if spec is not None and spec["kind"] == "qa":
        context["estimate"] = batch_estimate(request.team, spec["items"])
    return render(request, "batches/list.html#preview", context)


def _batch(request, pk: int):
    return get_object_or_404(access.visible_batches(request.team, request.membership)
                             .select_related("created_by", "api_key"), pk=pk)


def _progress_context(request, batch) -> dict:
    page = Paginator(batch.items.select_related("job"), ITEMS_PER_PAGE).get_page(
        request.GET.get("page"))
    ids = {i for item in page for i in batch_results.item_documents(item)}
    titles = dict(readable(request).filter(pk__in=ids).values_list("pk", "title"))
    rows = []
    for item in page:
        row = batch_results.item_row(item)
        row["item"] = item
        row["document_titles"] = [(i, titles.get(i, f"#{i} (deleted)"))
                                  for i in batch_results.item_documents(item)]
        row["citation_list"] = (item.result or {}).get("citations") or []
        # An abstained answer's citations are the closest passages, not support for it.
        row["abstained"] = bool((item.result or {}).get("abstained"))
        row["percent"] = item.job.percent if item.job else 0
        rows.append(row)
    return {"batch": batch, "page": page, "rows": rows,
            "failed": batch.failed, "can_write": request.membership.can_write}


@team_view()
def detail(request, pk: int):
    batch = _batch(request, pk)
    return render(request, "batches/detail.html", _progress_context(request, batch))


@team_view()
def progress(request, pk: int):
    """The live part of the page (HTMX polls it); polling stops when the batch has ended."""
    batch = _batch(request, pk)
    response = render(request, "batches/detail.html#progress",
                      _progress_context(request, batch))
    if batch.is_finished:
        return HttpResponseStopPolling(response.content)
    return response


@team_view(Role.MEMBER)
@require_POST
def cancel(request, pk: int):
    batch = _batch(request, pk)
    if not batch.is_finished:
        services.cancel_batch(batch)
        messages.success(request, f"Batch {batch.pk}: the items that had not finished are "
                                  "cancelled.")
    return redirect("batches:detail", team_slug=request.team.slug, pk=batch.pk)


@team_view(Role.MEMBER)
@require_POST
def retry(request, pk: int):
    batch = _batch(request, pk)
    sent = services.retry_failed(batch)
    messages.success(request, f"{sent:,} failed item(s) sent again." if sent
                     else "No failed items to retry.")
    return redirect("batches:detail", team_slug=request.team.slug, pk=batch.pk)


@team_view()
def download(request, pk: int, fmt: str):
    batch = _batch(request, pk)
    content_type, make = DOWNLOADS[fmt]
    response = HttpResponse(make(batch), content_type=content_type)  # at most a batch's items
    response["Content-Disposition"] = f'attachment; filename="batch-{batch.pk}.{fmt}"'
    return response

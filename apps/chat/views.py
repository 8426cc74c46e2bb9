from __future__ import annotations

from django.contrib import messages
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.text import slugify
from django.views.decorators.http import require_POST

from apps.chat import exports, services
from apps.chat.models import STRATEGIES
from apps.chat.runners import NEEDLE_LENGTHS
from apps.collections import access
from apps.core.downloads import CONTENT_TYPES as EXPORT_FORMATS
from apps.core.downloads import download
from apps.documents import estimates
from apps.documents.models import DocStatus
from apps.jobs.services import create_job
from apps.teams.access import team_view
from apps.teams.models import Role
from workers.exports import ExportFailed


@team_view(write_minimum=Role.MEMBER)
def conversation_list(request):
    ready = access.readable_documents(request.team, request.membership).filter(
        status=DocStatus.READY).order_by("title")
    if request.method == "POST":
        chosen = list(ready.filter(pk__in=request.POST.getlist("documents")))
        if not chosen:
            messages.error(request, "Choose at least one ready document to talk about.")
        else:
            conversation = services.start_conversation(request.team, request.user, chosen,
                                                       request.POST.get("title", ""))
            return redirect("chat:detail", team_slug=request.team.slug, pk=conversation.pk)
    conversations = access.visible_conversations(request.team, request.membership
                                                 ).prefetch_related("documents")[:100]
    return render(request, "chat/list.html", {"conversations": conversations, "ready": ready})


def _conversation(request, pk):
    """Hidden (404) if it involves a document the person may not read: its answers quote it."""
    return get_object_or_404(access.visible_conversations(request.team, request.membership)
                             .prefetch_related("documents"), pk=pk)


@team_view()
def detail(request, pk: int):
    conversation = _conversation(request, pk)
    return render(request, "chat/detail.html", {
        "conversation": conversation, "strategies": STRATEGIES,
        "chat_messages": conversation.messages.select_related("job"),
        "documents": conversation.documents.all(),
        # Citations of a document deleted since keep their quote but lose the link.
        "live_document_ids": {d.pk for d in conversation.documents.all()},
    })


@team_view()
def export(request, pk: int, fmt: str):
    if fmt not in EXPORT_FORMATS:
        raise Http404("No such export format")
    conversation = _conversation(request, pk)
    filename = f"{slugify(conversation.title)[:80] or 'conversation'}.{fmt}"
    try:
        return download(exports.export(conversation, fmt), filename)
    except ExportFailed as err:
        messages.error(request, f"The export failed: {err}.")
        return redirect("chat:detail", team_slug=request.team.slug, pk=conversation.pk)


@team_view()
@require_POST
def preview(request, pk: int):
    """What the question being typed would cost (HTMX: under the ask form)."""
    conversation = _conversation(request, pk)
    question = request.POST.get("question", "").strip()
    context = {"strategy": request.POST.get("strategy", "auto")}
    if question:
        try:
            context["preview"] = estimates.question_preview(
                request.team, [d.pk for d in conversation.documents.all()], question)
        except estimates.EstimateRefused as err:
            context["refused"] = str(err)
    return render(request, "chat/preview.html", context)


@team_view(Role.MEMBER)
@require_POST
def ask(request, pk: int):
    conversation = _conversation(request, pk)
    try:
        services.ask(conversation, request.user, request.POST.get("question", ""),
                     request.POST.get("strategy", "auto"), request.POST.get("compress") or None)
    except services.ChatError as err:
        messages.error(request, str(err))
    return redirect("chat:detail", team_slug=request.team.slug, pk=conversation.pk)


@team_view()
def message(request, pk: int, message_pk: int):
    """One rendered message (the page swaps it in when its stream ends)."""
    conversation = _conversation(request, pk)
    msg = get_object_or_404(conversation.messages, pk=message_pk)
    return render(request, "chat/detail.html#message", {
        "m": msg, "conversation": conversation,
        "live_document_ids": {d.pk for d in conversation.documents.all()}})


@team_view(Role.MEMBER)
@require_POST
def retry(request, pk: int, message_pk: int):
    conversation = _conversation(request, pk)
    reply = get_object_or_404(conversation.messages, pk=message_pk, role="assistant")
    if reply.can_retry:
        services.retry(reply)
    return redirect("chat:detail", team_slug=request.team.slug, pk=conversation.pk)


@team_view(Role.MEMBER)
@require_POST
def rename(request, pk: int):
    conversation = _conversation(request, pk)
    title = request.POST.get("title", "").strip()[:200]
    if title:
        conversation.title = title
        conversation.save(update_fields=["title", "updated_at"])
    return redirect("chat:detail", team_slug=request.team.slug, pk=conversation.pk)


@team_view(Role.MEMBER)
@require_POST
def delete(request, pk: int):
    _conversation(request, pk).delete()
    messages.info(request, "Conversation deleted.")
    return redirect("chat:list", team_slug=request.team.slug)


@team_view(write_minimum=Role.MEMBER)
def needle(request):
    """The needle self-test: a haystack of the chosen length with a hidden passkey."""

    error = ""
    if request.method == "POST":
        try:
            tokens = int(request.POST.get("tokens", ""))
        except ValueError:
            tokens = 0
        strategy = request.POST.get("strategy", "auto")
        kind = request.POST.get("kind", "passkey")
        if tokens not in NEEDLE_LENGTHS:
            error = "Choose one of the listed lengths."
        elif strategy not in dict(STRATEGIES):
            error = "Choose one of the listed strategies."
        elif kind not in ("passkey", "needle"):
            error = "Choose passkey or needle."
        else:
            job = create_job(request.team, "needle_test", {
                "tokens": tokens, "strategy": strategy, "kind": kind,
                "paraphrase": request.POST.get("paraphrase") == "on",
            }, user=request.user, title=f"Needle test: {tokens:,} tokens, {strategy}")
            return redirect("jobs:detail", team_slug=request.team.slug, pk=job.pk)
    recent = request.team.jobs.filter(kind="needle_test")[:20]
    return render(request, "chat/needle.html", {
        "lengths": NEEDLE_LENGTHS, "strategies": STRATEGIES, "recent": recent, "error": error,
    }, status=400 if error else 200)

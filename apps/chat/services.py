"""Chat verbs: start a conversation, ask (queue an answer job), run the answer job, retry."""

from __future__ import annotations

import threading
import time

from django.conf import settings
from django.db import transaction

from apps.chat.models import Conversation, Message, MessageStatus
from apps.documents.citations import citation_dicts
from apps.documents.models import DocStatus
from apps.documents.search import passage_retriever
from apps.documents.sources import source_documents, without_text
from apps.jobs import services as jobs
from workers import events
from workers.qa.budget import check_question
from workers.qa.engine import answer as qa_answer
from workers.qa.options import parse_options
from workers.qa.types import UnknownStrategy


class ChatError(Exception):
    """Shown to the user as it is."""


def start_conversation(team, user, documents, title: str = "") -> Conversation:
    conversation = Conversation.objects.create(
        team=team, created_by=user, title=(title.strip() or "New conversation")[:200])
    conversation.documents.set(documents)
    return conversation


def ask(conversation: Conversation, user, question: str, strategy: str = "auto",
        compress: str | float | None = None) -> Message:
    try:  # the engine's own checks: the same messages as the API's
        question = check_question(question)
    except ValueError as err:
        raise ChatError(f"{str(err)[:1].upper()}{str(err)[1:]}.") from None
    try:  # the engine's typed options: the same rules as the API's and answer()'s
        ratio = parse_options(strategy, {"compress": compress}).compress
    except UnknownStrategy:
        raise ChatError(f"Unknown strategy “{strategy}”.") from None
    except ValueError as err:
        raise ChatError(f"Context compression: {err}.") from None
    with transaction.atomic():
        asked = Message.objects.create(conversation=conversation, role="user", content=question)
        reply = Message.objects.create(conversation=conversation, role="assistant",
                                       status=MessageStatus.PENDING, strategy=strategy,
                                       compress=ratio, reply_to=asked)
        if conversation.title == "New conversation":
            conversation.title = question[:80]
        conversation.strategy = strategy  # remembered: the form offers it next time
        conversation.save()  # bumps updated_at
        reply.job = jobs.create_job(conversation.team, "qa_answer", {"message_id": reply.pk},
                                    user=user, title=f"Answer: {question[:80]}")
        reply.save(update_fields=["job"])
    return reply


def retry(reply: Message) -> Message:
    with transaction.atomic():
        Message.objects.filter(pk=reply.pk).update(status=MessageStatus.PENDING, error="",
                                                   content="", citations=[], trace=[],
                                                   grounded=False, abstained=False,
                                                   grounding={})
        jobs.retry(reply.job)
    reply.refresh_from_db()
    return reply


def _publish(reply: Message, event: dict) -> None:
    events.publish(events.channel("message", reply.pk), event, settings.REDIS_URL)


class _Streamer:
    """Publishes each token (live over Redis) and saves the partial answer at most every
    ``save_every`` seconds, so that a page reloaded mid-answer shows most of it."""

    def __init__(self, reply: Message, save_every: float):
        self.reply, self.save_every = reply, save_every
        self.text, self.saved_at = "", time.monotonic()
        self.lock = threading.Lock()

    def __call__(self, delta: str) -> None:
        with self.lock:
            self.text += delta
            _publish(self.reply, {"type": "token", "text": delta})
            if time.monotonic() - self.saved_at > self.save_every:
                Message.objects.filter(pk=self.reply.pk).update(
                    content=self.text, status=MessageStatus.STREAMING)
                self.saved_at = time.monotonic()


def give_up(reply: Message | None, error: str) -> None:
    """The answer job ended failed (retries exhausted): the message says why."""
    if reply is not None:
        Message.objects.filter(pk=reply.pk).update(status=MessageStatus.FAILED, error=error)
        _publish(reply, {"type": "error", "error": error})


def _history(reply: Message) -> list[dict]:
    earlier = reply.conversation.messages.filter(created_at__lt=reply.reply_to.created_at,
                                                 status=MessageStatus.DONE)
    return [{"role": m.role, "content": m.content} for m in earlier if m.content]


def run_answer_job(reply: Message, progress) -> dict:
    """The qa_answer job: answer the question of `reply` from the conversation's documents."""

    conversation = reply.conversation
    question = reply.reply_to.content
    documents = list(without_text(conversation.documents.all()))  # read only if a strategy does
    try:
        if not documents:
            raise ChatError("This conversation has no documents. Add documents to ask about.")
        waiting = [d.title for d in documents if d.status != DocStatus.READY]
        if waiting:
            raise ChatError("Still being ingested (or failed): " + ", ".join(waiting)
                            + ". Ask again when they are ready.")
        by_id = {d.pk: d for d in documents}
        retrieve = passage_retriever(conversation.team, list(by_id))

        Message.objects.filter(pk=reply.pk).update(status=MessageStatus.STREAMING)
        streamer = _Streamer(reply, settings.QA_PARTIAL_SAVE_SECONDS)
        result = qa_answer(
            question, source_documents(documents),
            reply.strategy or "auto", retrieve=retrieve, progress=progress, on_token=streamer,
            history=_history(reply),
            options={"compress": reply.compress} if reply.compress else None,
            grounding=settings.QA_GROUNDING,
        )
    except Exception as exc:
        if getattr(exc, "transient", False):  # the job retries with backoff: say so, start over
            Message.objects.filter(pk=reply.pk).update(status=MessageStatus.PENDING, content="")
            _publish(reply, {"type": "retry", "error": str(exc)})
            raise
        message = str(exc) if isinstance(exc, ChatError | ValueError) else \
            f"The answer failed: {type(exc).__name__}: {exc}"
        Message.objects.filter(pk=reply.pk).update(status=MessageStatus.FAILED, error=message)
        _publish(reply, {"type": "error", "error": message})
        raise
    citations = citation_dicts(result.citations, by_id)
    data = result.to_dict()
    Message.objects.filter(pk=reply.pk).update(
        content=result.text, status=MessageStatus.DONE, strategy=result.strategy,
        reason=result.reason[:500], citations=citations, trace=data["trace"],
        grounded=result.grounded, abstained=result.abstained, grounding=result.grounding,
        tokens_in=result.usage.prompt_tokens, tokens_out=result.usage.completion_tokens)
    progress.add_tokens(result.usage.prompt_tokens, result.usage.completion_tokens)
    _publish(reply, {"type": "done"})
    return {"message_id": reply.pk, "strategy": result.strategy, "citations": len(citations),
            "grounded": result.grounded, "abstained": result.abstained}

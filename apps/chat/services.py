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
from apps.jobs.models import Status as JobStatus
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
    """Answer again, as the same message (its job's on_requeue resets it: on_answer_requeue)."""
    jobs.retry(reply.job)
    reply.refresh_from_db()
    return reply


def _publish(reply_pk: int, event: dict) -> None:
    """Live events leave once the row says the same (after the commit): a page that reloads
    the message on "done" must find it ended."""
    transaction.on_commit(
        lambda: events.publish(events.channel("message", reply_pk), event, settings.REDIS_URL))


class _Streamer:
    """Publishes each token (live over Redis) and saves the partial answer at most every
    ``save_every`` seconds, so that a page reloaded mid-answer shows most of it — only while
    this delivery owns the job (a superseded worker writes nothing)."""

    def __init__(self, reply: Message, job, save_every: float):
        self.reply, self.save_every = reply, save_every
        self.rows = Message.objects.filter(pk=reply.pk, job__celery_task_id=job.celery_task_id,
                                           job__status=JobStatus.RUNNING)
        self.text, self.saved_at = "", time.monotonic()
        self.lock = threading.Lock()

    def __call__(self, delta: str) -> None:
        with self.lock:
            self.text += delta
            events.publish(events.channel("message", self.reply.pk),
                           {"type": "token", "text": delta}, settings.REDIS_URL)
            if time.monotonic() - self.saved_at > self.save_every:
                self.rows.update(content=self.text)
                self.saved_at = time.monotonic()


def _history(reply: Message) -> list[dict]:
    earlier = reply.conversation.messages.filter(created_at__lt=reply.reply_to.created_at,
                                                 status=MessageStatus.DONE)
    return [{"role": m.role, "content": m.content} for m in earlier if m.content]


def run_answer_job(reply: Message, job, progress) -> dict:
    """The qa_answer job's work: answer the question of `reply` from the conversation's
    documents. Returns the answer (the hook on_answer_success saves it on the message);
    raises ChatError when it cannot be asked."""
    conversation = reply.conversation
    question = reply.reply_to.content
    documents = list(without_text(conversation.documents.all()))  # read only if a strategy does
    if not documents:
        raise ChatError("This conversation has no documents. Add documents to ask about.")
    waiting = [d.title for d in documents if d.status != DocStatus.READY]
    if waiting:
        raise ChatError("Still being ingested (or failed): " + ", ".join(waiting)
                        + ". Ask again when they are ready.")
    by_id = {d.pk: d for d in documents}
    retrieve = passage_retriever(conversation.team, list(by_id))
    result = qa_answer(
        question, source_documents(documents),
        reply.strategy or "auto", retrieve=retrieve, progress=progress,
        on_token=_Streamer(reply, job, settings.QA_PARTIAL_SAVE_SECONDS),
        history=_history(reply),
        options={"compress": reply.compress} if reply.compress else None,
        grounding=settings.QA_GROUNDING,
    )
    progress.add_tokens(result.usage.prompt_tokens, result.usage.completion_tokens)
    data = result.to_dict()
    return {"message_id": reply.pk, "strategy": result.strategy,
            "citations": citation_dicts(result.citations, by_id),
            "grounded": result.grounded, "abstained": result.abstained,
            "answer": {"content": result.text, "reason": result.reason[:500],
                       "trace": data["trace"], "grounding": result.grounding,
                       "shortened": result.shortened,
                       "tokens_in": result.usage.prompt_tokens,
                       "tokens_out": result.usage.completion_tokens}}


# -- The qa_answer job's hooks: the message follows its job (apps/jobs/kinds.py) -------------


def _reply(job):
    return Message.objects.filter(pk=job.params["message_id"],
                                  conversation__team_id=job.team_id)


def on_answer_start(job) -> None:
    _reply(job).update(status=MessageStatus.STREAMING)


def on_answer_success(job, result: dict) -> None:
    if "answer" not in result:  # skipped: the conversation was deleted
        return
    _reply(job).update(status=MessageStatus.DONE, strategy=result["strategy"],
                       citations=result["citations"], grounded=result["grounded"],
                       abstained=result["abstained"], error="", **result["answer"])
    _publish(job.params["message_id"], {"type": "done"})


def on_answer_failure(job, error: str) -> None:
    if job.error_code == "attempts_exhausted":  # the model stayed down
        error = f"The model could not be reached. {error}"
    _reply(job).update(status=MessageStatus.FAILED, error=error, content="")
    _publish(job.params["message_id"], {"type": "error", "error": error})


def on_answer_cancel(job) -> None:
    """Cancelled: no half answer is passed off as one; the page offers a retry."""
    _reply(job).update(status=MessageStatus.CANCELLED, error="", content="")
    _publish(job.params["message_id"], {"type": "done", "status": MessageStatus.CANCELLED})


def on_answer_requeue(job, reason: str) -> None:
    """Waiting again (a retry, a lost worker, a user's retry): start over from nothing."""
    _reply(job).update(status=MessageStatus.PENDING, error="", content="", citations=[],
                       trace=[], grounded=False, abstained=False, grounding={}, reason="",
                       shortened=False)
    if reason:
        _publish(job.params["message_id"], {"type": "retry", "error": reason})

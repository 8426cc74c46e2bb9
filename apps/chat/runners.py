"""Job kinds of the chat: answering a question, and the needle self-test."""

from __future__ import annotations

import time

from apps.chat import services
from apps.chat.models import Message
from apps.jobs.kinds import Hooks, register
from workers.qa.engine import answer
from workers.qa.haystack import build_haystack
from workers.qa.types import SourceDocument

ANSWER_HOOKS = Hooks(on_start=services.on_answer_start, on_success=services.on_answer_success,
                     on_failure=services.on_answer_failure, on_cancel=services.on_answer_cancel,
                     on_requeue=services.on_answer_requeue)


@register("qa_answer", "Answer a question", queue="interactive", hooks=ANSWER_HOOKS,
          plain_errors=(services.ChatError, ValueError))
def run_answer(job, progress) -> dict:
    reply = (Message.objects.select_related("conversation__team", "reply_to")
             .filter(pk=job.params["message_id"], conversation__team=job.team).first())
    if reply is None:
        return {"skipped": "The conversation was deleted before the answer."}
    return services.run_answer_job(reply, job, progress)


NEEDLE_LENGTHS = [8_000, 32_000, 128_000, 1_000_000]


@register("needle_test", "Needle self-test", queue="batch")
def run_needle_test(job, progress) -> dict:
    """Hide a passkey (or a fact) in a haystack of the chosen length and ask for it: the
    user's proof that answers reach past the model's window."""

    params = job.params
    progress(0, 1, "Building the haystack")
    hay = build_haystack(int(params["tokens"]), kind=params.get("kind", "passkey"),
                         paraphrase=bool(params.get("paraphrase")),
                         seed=int(params.get("seed", job.pk)))  # a seed repeats a run
    started = time.perf_counter()
    result = answer(hay.question, [SourceDocument("haystack", "Haystack", hay.text)],
                    params.get("strategy", "auto"), progress=progress)
    seconds = time.perf_counter() - started
    progress.add_tokens(result.usage.prompt_tokens, result.usage.completion_tokens)
    return {
        "found": hay.is_correct(result.text), "expected": hay.answer, "answer": result.text,
        "question": hay.question, "needle": hay.needle, "depth": round(hay.depth, 3),
        "tokens": hay.tokens, "strategy": result.strategy, "reason": result.reason,
        "seconds": round(seconds, 2),
        "cited_needle": any(c.start < hay.needle_end and c.end > hay.needle_start
                            for c in result.citations),
        "trace": result.to_dict()["trace"],
    }

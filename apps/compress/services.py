"""Compress verbs: start a compression job, run it (the job's runner calls this)."""

from __future__ import annotations

from apps.jobs.services import create_job
from workers.progress import Progress
from workers.scope import compress

KIND = "compress"


def start(team, user, data: dict):
    """Queue a compression job from the form's cleaned data; returns the Job."""
    document = data.get("document")
    params = {
        "text": "" if document else data["text"],
        "document_id": document.pk if document else None,
        "ratio": data.get("ratio"),
        "target_tokens": data.get("target_tokens"),
        "question": (data.get("question") or "").strip(),
        "method": data.get("method") or "scope",
    }
    source = document.title if document else " ".join(data["text"].split())[:50]
    aim = f"{params['ratio']:g}×" if params["ratio"] else f"{params['target_tokens']} tokens"
    return create_job(team, KIND, params, user=user, title=f"Compress {source} to {aim}")


def source_text(job) -> tuple[str, str]:
    """(title, text) of what the job compresses: its pasted text or the team's document."""
    params = job.params
    if params.get("document_id"):
        document = job.team.documents.filter(pk=params["document_id"]).first()
        if document is None:
            raise ValueError("The document was deleted before it could be compressed.")
        return document.title, document.text
    return "Pasted text", params.get("text", "")


def run(job, progress: Progress) -> dict:
    title, text = source_text(job)
    params = job.params
    progress(0, 1, "Loading the models")
    result = compress(
        text, ratio=params.get("ratio"), target_tokens=params.get("target_tokens"),
        question=params.get("question") or None, method=params.get("method", "scope"),
        progress=progress,
    )
    add_tokens = getattr(progress, "add_tokens", None)
    if add_tokens:
        add_tokens(result.usage.prompt_tokens, result.usage.completion_tokens)
    out = result.to_dict()
    out["title"] = title
    return out

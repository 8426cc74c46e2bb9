"""vLLM through its OpenAI-compatible server, plus the extras vLLM adds to that API.

- token counts with the served tokenizer: ``POST /tokenize`` (text or chat messages);
- the window: ``max_model_len`` in ``/v1/models``;
- prompt log-probabilities (XL3M): ``/v1/completions`` with the prompt sent as token ids,
  ``echo``, ``logprobs``, ``prompt_logprobs`` and ``max_tokens: 1``;
- structured output: ``response_format`` of type ``json_schema`` (enforced by vLLM's
  guided decoding);
- ``repetition_penalty``: vLLM's extra sampling parameter of that name in the body.
"""

from __future__ import annotations

import asyncio
from typing import Any

from .base import (
    Capabilities,
    ContinuationLogprobs,
    PromptLike,
    Usage,
    as_messages,
    check_fits,
    continuation_start,
    entropy_from_top,
)
from .errors import BadResponse
from .openai_compat import OpenAICompatBackend


class VLLMBackend(OpenAICompatBackend):
    name = "vllm"

    def _default_capabilities(self) -> Capabilities:
        return Capabilities(
            streaming=True,
            prompt_logprobs=True,
            top_logprobs=True,
            guided_json=True,
            tokenize=True,
            concurrent_batch=True,
            repetition_penalty=True,  # an extra sampling parameter of vLLM's chat API
        )

    async def _tokenize(self, text_or_messages: PromptLike) -> list[int]:
        body: dict[str, Any] = {"model": await self._model_name()}
        if isinstance(text_or_messages, str):
            body["prompt"] = text_or_messages
        else:
            body["messages"] = as_messages(text_or_messages)
            body["add_generation_prompt"] = True
        data = await self._request("POST", f"{self.root_url}/tokenize", body)
        try:
            tokens = [int(t) for t in data["tokens"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise BadResponse(f"unexpected /tokenize answer: {data!r:.200}") from exc
        if data.get("max_model_len") and self._window is None:
            self._window = int(data["max_model_len"])
        return tokens

    async def _count_async(self, text_or_messages: PromptLike) -> int:
        if self._tokenizer_path is not None:  # a local copy saves a round trip
            return self._count_local(text_or_messages)
        return len(await self._tokenize(text_or_messages))

    async def _logprobs_async(
        self, prompt: str, continuation: str, *, top_k: int = 5
    ) -> ContinuationLogprobs:
        if not prompt:
            raise ValueError("prompt must not be empty: the first token has no logprob")
        prompt_ids, full_ids = await asyncio.gather(
            self._tokenize(prompt), self._tokenize(prompt + continuation)
        )
        start = continuation_start(prompt_ids, full_ids)
        # max_tokens=1: vLLM must generate something; the prompt is what we read.
        check_fits(len(full_ids), 1, await self._window_async())
        body = {
            "model": await self._model_name(),
            "prompt": full_ids,  # token ids: positions line up with what we tokenised
            "max_tokens": 1,
            "temperature": 0.0,
            "echo": True,
            "logprobs": 1,
            "prompt_logprobs": max(1, top_k),
        }
        data = await self._request("POST", f"{self.api_url}/completions", body)
        try:
            choice = data["choices"][0]
            per_token = choice.get("prompt_logprobs") or data.get("prompt_logprobs")
            if per_token is None:
                raise BadResponse("server returned no prompt_logprobs")
            if len(per_token) != len(full_ids):
                raise BadResponse(
                    f"prompt_logprobs has {len(per_token)} entries for {len(full_ids)} tokens"
                )
            tokens, logprobs, entropies = [], [], []
            for position in range(start, len(full_ids)):
                alternatives = per_token[position]
                chosen = alternatives[str(full_ids[position])]
                tokens.append(str(chosen.get("decoded_token") or ""))
                logprobs.append(float(chosen["logprob"]))
                entropies.append(
                    entropy_from_top([float(a["logprob"]) for a in alternatives.values()])
                )
            # As the server counts it (it generated the one token it had to).
            usage = Usage(
                int(data["usage"]["prompt_tokens"]),
                int(data["usage"].get("completion_tokens") or 0),
            )
        except BadResponse:
            raise
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise BadResponse(f"unexpected logprobs answer: {exc!r}") from exc
        return ContinuationLogprobs(
            tokens=tokens,
            token_ids=list(full_ids[start:]),
            logprobs=logprobs,
            entropies=entropies,
            entropy_exact=False,
            usage=usage,
            start=start,
        )

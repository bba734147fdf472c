"""Typed errors: mapped once in the CLI (message + exit code) and once in the API (JSON + status).

Messages name the bad value and the fix. Code never matches on message text.
"""

from __future__ import annotations


class RagError(Exception):
    """Base of every error the project raises on purpose."""

    exit_code = 1
    http_status = 500


class ConfigError(RagError):
    """A setting or argument has a value the program cannot use."""

    exit_code = 2
    http_status = 400


class ModelError(RagError):
    """A model file is missing, incomplete or not the expected one."""

    exit_code = 3
    http_status = 503


class FetchError(ModelError):
    """Building a model from its PyPI packages failed."""


class BackendError(ModelError):
    """The OpenAI-compatible generation server (RAG_LLM_URL) refused, failed or did not answer a request."""

    http_status = 502


class IndexStateError(RagError):
    """The index on disk is missing, corrupt or built for other settings."""

    exit_code = 4
    http_status = 503


class IndexLockedError(IndexStateError):
    """Another process is writing the index."""

    exit_code = 5
    http_status = 409


class StorageError(RagError):
    """Writing to disk failed (disk full, no permission, read-only file system); what was live stays live."""

    exit_code = 7
    http_status = 507


class DocumentError(RagError):
    """A document cannot be read or indexed (binary, empty, bad encoding, encrypted)."""

    exit_code = 6
    http_status = 422


class InputError(RagError):
    """A question, gold file or request is malformed."""

    exit_code = 2
    http_status = 400


class UnknownModel(InputError):
    """A request names a model this service does not serve."""

    http_status = 404


class DocumentNotFound(RagError):
    """No indexed document has this id."""

    exit_code = 6
    http_status = 404


class InternalError(RagError):
    """A bug: the client sees only the exception's type, the server log has the traceback."""

    http_status = 500


class ClientGone(RagError):
    """The HTTP client closed the connection before its answer was ready: the work stopped (nginx's 499)."""

    http_status = 499


class Busy(RagError):
    """The model is taken and the queue in front of it is full, or the models are still loading."""

    exit_code = 1
    http_status = 503

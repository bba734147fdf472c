"""A GGUF file's metadata, read without llama.cpp: is it GGUF, and does it carry a chat template.

A user's own model (RAG_MODEL_PATH) is checked with this before the slow load, so a wrong file
is named at once. Layout (https://github.com/ggml-org/ggml/blob/master/docs/gguf.md), little-endian:
``GGUF``, version (u32), tensor count, key/value count (u64; u32 in version 1), then per key a
string, a value type (u32) and the value. Strings are a length then UTF-8 bytes; arrays an element
type, a count, then the elements.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO

MAGIC = b"GGUF"
CHAT_TEMPLATE = "tokenizer.chat_template"
_STRING, _ARRAY = 8, 9
# Fixed-size value types: uint8, int8, uint16, int16, uint32, int32, float32, bool, -, -, uint64, int64, float64.
_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}


class NotGGUF(ValueError):
    """The file is not GGUF or its metadata is cut short."""


def metadata_string(path: Path, key: str) -> str | None:
    """The string value of ``key`` in the file's metadata, None when the key is absent."""
    with path.open("rb") as fh:
        magic = fh.read(4)
        if magic != MAGIC:
            raise NotGGUF(f"not a GGUF file (it starts with {magic!r}, not {MAGIC!r})")
        (version,) = _unpack(fh, "<I")
        count_format = "<I" if version == 1 else "<Q"
        _unpack(fh, count_format)  # tensor count
        (entries,) = _unpack(fh, count_format)
        for _ in range(entries):
            name = _string(fh, count_format)
            (kind,) = _unpack(fh, "<I")
            if name == key:
                return _string(fh, count_format) if kind == _STRING else None
            _skip(fh, kind, count_format)
    return None


def chat_template(path: Path) -> str | None:
    """The model's chat template (Jinja), None when it has none (a base model, not an instruct one)."""
    return metadata_string(path, CHAT_TEMPLATE)


def _unpack(fh: BinaryIO, fmt: str) -> tuple[int, ...]:
    size = struct.calcsize(fmt)
    data = fh.read(size)
    if len(data) != size:
        raise NotGGUF("the GGUF metadata is cut short (truncated file)")
    return struct.unpack(fmt, data)


def _string(fh: BinaryIO, count_format: str) -> str:
    (length,) = _unpack(fh, count_format)
    data = fh.read(length)
    if len(data) != length:
        raise NotGGUF("the GGUF metadata is cut short (truncated file)")
    return data.decode("utf-8", errors="replace")


def _skip(fh: BinaryIO, kind: int, count_format: str) -> None:
    if kind in _SIZES:
        fh.seek(_SIZES[kind], 1)
    elif kind == _STRING:
        (length,) = _unpack(fh, count_format)
        fh.seek(length, 1)
    elif kind == _ARRAY:
        (element,) = _unpack(fh, "<I")
        (count,) = _unpack(fh, count_format)
        if element in _SIZES:
            fh.seek(_SIZES[element] * count, 1)
        else:
            for _ in range(count):
                _skip(fh, element, count_format)
    else:
        raise NotGGUF(f"unknown GGUF value type {kind} (damaged file?)")

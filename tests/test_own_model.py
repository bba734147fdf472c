"""RAG_MODEL_PATH (your own GGUF), the GGUF metadata reader it is checked with, and RAG_EMBED_DEVICE."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from rag import wiring
from rag.errors import ModelError
from rag.models import gguf
from rag.models.embed import resolve_device

_TYPES = {int: 4, str: 8}  # uint32, string


def _string(text: str) -> bytes:
    data = text.encode()
    return struct.pack("<Q", len(data)) + data


def write_gguf(path: Path, metadata: dict[str, object], version: int = 3) -> Path:
    """A GGUF header with ``metadata`` (ints, strings, lists of strings) and no tensors."""
    out = [gguf.MAGIC, struct.pack("<IQQ", version, 0, len(metadata))]
    for key, value in metadata.items():
        out.append(_string(key))
        if isinstance(value, list):  # array of strings, like tokenizer.ggml.tokens
            out.append(struct.pack("<IIQ", 9, 8, len(value)) + b"".join(_string(v) for v in value))
        elif isinstance(value, str):
            out.append(struct.pack("<I", 8) + _string(value))
        else:
            out.append(struct.pack("<II", 4, int(value)))  # type: ignore[call-overload]
    path.write_bytes(b"".join(out))
    return path


def test_reads_the_chat_template_past_other_keys(tmp_path: Path) -> None:
    template = "{% for m in messages %}<|im_start|>{{ m.role }}{% endfor %}"
    metadata = {
        "general.architecture": "qwen2",
        "tokenizer.ggml.tokens": ["a", "bb", "<|im_start|>"] * 1000,
        "general.file_type": 15,
        gguf.CHAT_TEMPLATE: template,
    }
    path = write_gguf(tmp_path / "m.gguf", metadata)
    assert gguf.chat_template(path) == template
    assert gguf.metadata_string(path, "general.architecture") == "qwen2"
    assert gguf.metadata_string(path, "nope") is None


def test_a_base_model_has_no_template(tmp_path: Path) -> None:
    assert gguf.chat_template(write_gguf(tmp_path / "base.gguf", {"general.architecture": "llama"})) is None


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"PK\x03\x04zipfile", "not a GGUF file"), (b"GGUF\x03\x00\x00\x00\x00", "cut short"), (b"", "not a GGUF")],
)
def test_not_gguf_or_truncated_is_named(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.gguf"
    path.write_bytes(content)
    with pytest.raises(gguf.NotGGUF, match=message):
        gguf.chat_template(path)


def test_own_model_checks_name_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"RAG_MODEL_PATH=.*missing.gguf: no such file"):
        wiring.check_own_model(tmp_path / "missing.gguf")
    (tmp_path / "model.bin").write_bytes(b"\x00" * 64)
    with pytest.raises(ModelError, match=r"RAG_MODEL_PATH=.*model.bin: not a GGUF file"):
        wiring.check_own_model(tmp_path / "model.bin")
    base = write_gguf(tmp_path / "base.gguf", {"general.architecture": "llama"})
    with pytest.raises(ModelError, match=r"RAG_MODEL_PATH=.*no chat template.*instruct model"):
        wiring.check_own_model(base)
    chat = write_gguf(tmp_path / "chat.gguf", {gguf.CHAT_TEMPLATE: "{{ messages }}"})
    assert wiring.check_own_model(chat) == chat


def test_a_file_llama_cpp_cannot_load_names_the_setting(settings, tmp_path: Path) -> None:
    """Header fine, no tensors: llama.cpp refuses it; the error names RAG_MODEL_PATH, not `rag models fetch`."""
    path = write_gguf(tmp_path / "mine.gguf", {gguf.CHAT_TEMPLATE: "{{ messages }}"})
    with pytest.raises(ModelError, match=r"RAG_MODEL_PATH=.*mine.gguf: llama.cpp cannot load it") as caught:
        wiring.generator(settings.model_copy(update={"model_path": path, "n_ctx": 256}))
    assert "models fetch" not in str(caught.value)


def test_own_model_id_is_the_file_name(settings, tmp_path: Path) -> None:
    mine = settings.model_copy(update={"model_path": tmp_path / "Mistral-7B-Instruct.Q4_K_M.gguf"})
    assert mine.answer_model_id == "Mistral-7B-Instruct.Q4_K_M"
    remote = mine.model_copy(update={"llm_url": "http://x:8080", "llm_model": "alias"})
    assert remote.answer_model_id == "alias"  # the remote server answers, not the file


@pytest.mark.real_models
def test_the_catalogue_gguf_passes_the_own_model_checks(settings) -> None:
    from rag.models import fetch

    path = fetch.require(settings.models_path, "qwen2.5-coder-0.5b")
    assert "<|im_start|>" in (gguf.chat_template(wiring.check_own_model(path)) or "")


def test_embed_device() -> None:
    assert resolve_device("cpu", cuda_available=True) == "cpu"
    assert resolve_device("cuda", cuda_available=True) == "cuda"
    assert resolve_device("auto", cuda_available=False) == "cpu"
    with pytest.raises(ModelError, match=r"RAG_EMBED_DEVICE=cuda.*no usable GPU.*cpu or auto"):
        resolve_device("cuda", cuda_available=False)

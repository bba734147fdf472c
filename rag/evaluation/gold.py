"""The gold question-answer set: one JSON object per line (format: docs/gold-format.md).

    {"id": "q001", "lang": "de", "question": "...", "answerable": true, "answer": "...",
     "must_contain_any": ["2.048", "2048"], "sources": ["001_....txt"], "evidence": ["nur 2.048 GPUs"],
     "type": "number"}

Optional fields: ``follow_up_of`` (id of the earlier question a chat follow-up refers to),
``standalone`` (the follow-up rewritten to stand alone) and ``conflict`` (the articles disagree and a
good answer names both sides). Any other field is kept in ``GoldItem.extra``; ``variants`` (the
question reworded, for ``rag eval --variants``) is kept there too, checked to be a list of questions.

``load_gold`` checks every line and raises ``InputError`` naming the file, the line and the problem, so
a broken gold file fails before an evaluation run rather than halfway through it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag.answer.pipeline import MAX_QUESTION_CHARS
from rag.errors import InputError

GOLD_TYPES: frozenset[str] = frozenset({"fact", "number", "cross_lingual", "multi_doc", "paraphrase", "unanswerable"})

REQUIRED_FIELDS: tuple[str, ...] = (
    "id",
    "lang",
    "question",
    "answerable",
    "answer",
    "must_contain_any",
    "sources",
    "evidence",
    "type",
)
OPTIONAL_FIELDS: tuple[str, ...] = ("follow_up_of", "standalone", "conflict")

# "de", "en", "pt-BR", "zh-Hans": a short language code, optionally with a region or script.
_LANG_RE = re.compile(r"[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})?")


@dataclass(frozen=True)
class GoldItem:
    """One gold question with what a correct answer must contain and where the answer sits."""

    id: str
    lang: str
    question: str
    answerable: bool
    answer: str
    must_contain_any: tuple[str, ...]
    sources: tuple[str, ...]
    evidence: tuple[str, ...]
    type: str
    follow_up_of: str | None = None
    standalone: str | None = None
    conflict: bool = False
    extra: dict[str, Any] = field(default_factory=dict, hash=False)

    @property
    def standalone_question(self) -> str:
        """The question as it reads without chat history (the rewrite for follow-ups)."""
        return self.standalone or self.question

    def to_dict(self) -> dict[str, Any]:
        """The item in the file format: documented fields first, optional ones only when set."""
        out: dict[str, Any] = {
            "id": self.id,
            "lang": self.lang,
            "question": self.question,
            "answerable": self.answerable,
            "answer": self.answer,
            "must_contain_any": list(self.must_contain_any),
            "sources": list(self.sources),
            "evidence": list(self.evidence),
            "type": self.type,
        }
        if self.follow_up_of is not None:
            out["follow_up_of"] = self.follow_up_of
        if self.standalone is not None:
            out["standalone"] = self.standalone
        if self.conflict:
            out["conflict"] = True
        out.update(self.extra)
        return out


def load_gold(path: Path) -> list[GoldItem]:
    """Read and check a gold file; blank lines are skipped.

    Raises ``InputError`` ("<file>, line <n>: <problem>") for unreadable files, bad JSON, missing or
    mistyped fields, an unknown ``type``, an empty or malformed ``lang``, a question (or variant) longer
    than `rag ask` takes, a duplicate id, an unanswerable item with ``must_contain_any`` entries, and a
    ``follow_up_of`` that names no earlier item. A UTF-8 byte-order mark (Windows editors write one) is
    skipped.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError as exc:
        raise InputError(f"gold file not found: {path}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read gold file {path}: {exc}") from exc

    items: list[GoldItem] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = parse_gold_line(line)
        except ValueError as exc:
            raise InputError(f"{path}, line {number}: {exc}") from exc
        if item.id in seen:
            raise InputError(f"{path}, line {number}: duplicate id {item.id!r} (first used on line {seen[item.id]})")
        if item.follow_up_of is not None and item.follow_up_of not in seen:
            raise InputError(f"{path}, line {number}: follow_up_of {item.follow_up_of!r} names no earlier question")
        seen[item.id] = number
        items.append(item)
    if not items:
        raise InputError(f"gold file {path} holds no questions")
    return items


def parse_gold_line(line: str) -> GoldItem:
    """Parse one line of a gold file; raises ``ValueError`` describing the first problem found."""
    try:
        raw = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg} at column {exc.colno})") from exc
    if not isinstance(raw, dict):
        raise ValueError(f"expected a JSON object, got {type(raw).__name__}")
    missing = [name for name in REQUIRED_FIELDS if name not in raw]
    if missing:
        raise ValueError(f"missing field(s): {', '.join(missing)}")

    item_id = _text(raw, "id")
    lang = _text(raw, "lang")
    if not _LANG_RE.fullmatch(lang):
        raise ValueError(f"field 'lang' must be a short language code such as 'de' or 'en', got {lang!r}")
    item_type = _text(raw, "type")
    if item_type not in GOLD_TYPES:
        raise ValueError(f"unknown type {item_type!r}; expected one of {', '.join(sorted(GOLD_TYPES))}")
    answerable = _flag(raw, "answerable")
    must = _strings(raw, "must_contain_any")
    if not answerable and must:
        raise ValueError("answerable is false but must_contain_any is not empty")
    if answerable and item_type == "unanswerable":
        raise ValueError("type is 'unanswerable' but answerable is true")
    variants = _strings(raw, "variants") if "variants" in raw else ()
    if any(not v.strip() for v in variants):
        raise ValueError("field 'variants' must not hold an empty question")
    question = _text(raw, "question")
    for asked in (question, *variants):
        # Found here, not when the run reaches it: the pipeline refuses it after the earlier answers were given.
        if len(asked.strip()) > MAX_QUESTION_CHARS:
            raise ValueError(
                f"a question of {len(asked.strip())} characters ({asked[:40]!r}...); "
                f"`rag ask` takes at most {MAX_QUESTION_CHARS}"
            )

    return GoldItem(
        id=item_id,
        lang=lang,
        question=question,
        answerable=answerable,
        answer=_string(raw, "answer"),
        must_contain_any=must,
        sources=_strings(raw, "sources"),
        evidence=_strings(raw, "evidence"),
        type=item_type,
        follow_up_of=_text(raw, "follow_up_of") if "follow_up_of" in raw else None,
        standalone=_text(raw, "standalone") if "standalone" in raw else None,
        conflict=_flag(raw, "conflict") if "conflict" in raw else False,
        extra={k: v for k, v in raw.items() if k not in REQUIRED_FIELDS and k not in OPTIONAL_FIELDS},
    )


def _string(raw: dict[str, Any], name: str) -> str:
    value = raw[name]
    if not isinstance(value, str):
        raise ValueError(f"field {name!r} must be a string, got {type(value).__name__}")
    return value


def _text(raw: dict[str, Any], name: str) -> str:
    """A string that holds more than whitespace."""
    value = _string(raw, name)
    if not value.strip():
        raise ValueError(f"field {name!r} must not be empty")
    return value


def _flag(raw: dict[str, Any], name: str) -> bool:
    value = raw[name]
    if not isinstance(value, bool):
        raise ValueError(f"field {name!r} must be true or false, got {value!r}")
    return value


def _strings(raw: dict[str, Any], name: str) -> tuple[str, ...]:
    value = raw[name]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"field {name!r} must be a list of strings, got {value!r}")
    return tuple(value)

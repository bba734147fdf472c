"""Prompt templates are files in ``prompts/`` with declared variables, rendered to chat roles.

A template file looks like::

    <!-- variables: passages, question -->
    ## system
    fixed instructions (no variables: this prefix is identical for every question,
    so llama.cpp reuses its evaluated state)
    ## user
    ${passages}
    Frage: ${question}

An optional second line ``<!-- answer after: Antwort: -->`` says the model writes something first (the
supporting sentence) and its answer after that marker; the pipeline checks and shows only the answer.
An optional line ``<!-- decision: Ja / Nein -->`` says the instructions tell the model to begin its
reply with the first word when the passages state the answer and with the second when they do not:
the pipeline reads P(answerable) from the logits of that first word (no extra turn to evaluate) and,
when it answers, starts the reply with the yes-word for the model.

Values are inserted with `string.Template`, which never interprets braces or
dollar signs inside the values: article text stays plain text. Messages go to
llama.cpp as roles, but llama-cpp-python tokenizes the rendered chat template with
special tokens on, so the generators pass every message through
`rag.models.sanitize.neutralize_messages` first: template tokens inside an article stay text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from string import Template

from rag.errors import ConfigError
from rag.types import Passage

_DECLARATION = re.compile(r"^<!--\s*variables:\s*(.*?)\s*-->\s*$")
_ANSWER_AFTER = re.compile(r"^<!--\s*answer after:\s*(.*?)\s*-->\s*$")
_DECISION = re.compile(r"^<!--\s*decision:\s*(\S+)\s*/\s*(\S+)\s*-->\s*$")
_SECTION = re.compile(r"^## (system|user|assistant)\s*$", re.MULTILINE)

Message = dict[str, str]


@dataclass(frozen=True)
class PromptTemplate:
    name: str
    variables: frozenset[str]
    sections: tuple[tuple[str, str], ...]  # (role, template text)
    # When set, the model writes something else first (the supporting sentence) and the answer after this
    # marker ("Antwort:"); only the answer is checked and shown. Declared as `<!-- answer after: X -->`.
    answer_after: str | None = None
    # When set, the reply begins with the yes-word or the no-word ("Ja", "Nein"): the decision, read from the
    # first token's logits. Declared as `<!-- decision: Ja / Nein -->`.
    decision: tuple[str, str] | None = None

    def render(self, **values: str) -> list[Message]:
        missing = self.variables - values.keys()
        if missing:
            raise ConfigError(f"prompt {self.name}: no value for {', '.join(sorted(missing))}")
        extra = values.keys() - self.variables
        if extra:
            raise ConfigError(f"prompt {self.name}: {', '.join(sorted(extra))} not declared in its variables line")
        return [{"role": role, "content": Template(text).substitute(values)} for role, text in self.sections]


def parse_template(name: str, source: str) -> PromptTemplate:
    first, _, body = source.partition("\n")
    declared = _DECLARATION.match(first.strip())
    if declared is None:
        raise ConfigError(f"prompt {name}: first line must be `<!-- variables: a, b -->`")
    variables = frozenset(v.strip() for v in declared.group(1).split(",") if v.strip())
    answer_after: str | None = None
    decision: tuple[str, str] | None = None
    while True:  # optional directive lines, in any order
        line, _, rest = body.partition("\n")
        if (marker := _ANSWER_AFTER.match(line.strip())) is not None:
            answer_after = marker.group(1)
        elif (words := _DECISION.match(line.strip())) is not None:
            decision = (words.group(1), words.group(2))
        else:
            break
        body = rest
    parts = _SECTION.split(body)
    sections = tuple((role, text.strip()) for role, text in zip(parts[1::2], parts[2::2], strict=True))
    if not sections:
        raise ConfigError(f"prompt {name}: no `## system` / `## user` sections")
    used: set[str] = set()
    for _, text in sections:
        for match in Template.pattern.finditer(text):
            if match.group("invalid") is not None:
                raise ConfigError(f"prompt {name}: stray `$` at offset {match.start()}; write `$$` for a dollar sign")
            variable = match.group("named") or match.group("braced")
            if variable:  # None for the `$$` escape
                used.add(variable)
    undeclared = used - variables
    if undeclared:
        raise ConfigError(f"prompt {name}: uses undeclared {', '.join(sorted(undeclared))}")
    return PromptTemplate(name, variables, sections, answer_after, decision)


def load_template(prompts_dir: Path, name: str) -> PromptTemplate:
    path = prompts_dir / f"{name}.md"
    try:
        source = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"prompt file {path} cannot be read ({exc.strerror}); check RAG_PROMPTS_DIR") from exc
    return parse_template(name, source)


def format_passages(passages: Sequence[Passage], *, headers: bool = True) -> str:
    """``[1] (Artikel vom date, von author)`` and the text, one block per passage, in the order given
    (without ``headers``, or when the article states neither: ``[1] text``)."""
    return "\n\n".join(_block(p, headers) for p in passages)


def _block(passage: Passage, headers: bool) -> str:
    header = passage.hit.chunk.header() if headers else ""
    text = passage.text.strip()
    return f"[{passage.number}] {header}\n{text}" if header else f"[{passage.number}] {text}"


def format_history(turns: Sequence[Message]) -> str:
    return "\n".join(f"{t['role']}: {t['content'].strip()}" for t in turns)

"""Every prompt file parses, and the evidence-first prompts declare where their answer starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.answer.prompt import load_template, parse_template
from rag.config import Settings
from rag.errors import ConfigError
from rag.language import LANGUAGES

PROMPTS = Path(__file__).resolve().parent.parent / "prompts"


@pytest.mark.parametrize("path", sorted(PROMPTS.glob("*.md")), ids=lambda p: p.name)
def test_every_prompt_file_parses(path: Path) -> None:
    template = load_template(PROMPTS, path.stem)
    assert template.sections


def test_the_configured_answer_prompt_exists_for_every_language() -> None:
    for lang in LANGUAGES:
        assert (PROMPTS / f"{Settings().answer_prompt}.{lang}.md").is_file()


def test_answer_after_is_read_from_the_second_line() -> None:
    source = "<!-- variables: question -->\n<!-- answer after: Antwort: -->\n## user\n${question}"
    template = parse_template("t", source)
    assert template.answer_after == "Antwort:" and template.render(question="q") == [{"role": "user", "content": "q"}]
    assert parse_template("t", "<!-- variables: question -->\n## user\n${question}").answer_after is None


def test_the_decision_words_are_read_from_a_directive_line_in_any_order() -> None:
    body = "## user\n${question}"
    head = "<!-- variables: question -->\n<!-- decision: Ja / Nein -->\n<!-- answer after: A: -->"
    both = parse_template("t", f"{head}\n{body}")
    assert both.decision == ("Ja", "Nein") and both.answer_after == "A:" and both.sections == (("user", "${question}"),)
    assert parse_template("t", f"<!-- variables: question -->\n{body}").decision is None
    shipped = {lang: load_template(PROMPTS, f"answer-decide.{lang}").decision for lang in LANGUAGES}
    assert shipped == {"de": ("Ja", "Nein"), "en": ("Yes", "No")}
    assert all(load_template(PROMPTS, f"answer.{lang}").decision is None for lang in LANGUAGES)  # the default


def test_a_bad_answer_prompt_name_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from rag.config import load_settings

    monkeypatch.setenv("RAG_ANSWER_PROMPT", "../etc/passwd")
    with pytest.raises(ConfigError, match="RAG_ANSWER_PROMPT"):
        load_settings()


def test_an_answer_prompt_that_is_not_there_names_the_setting_and_the_ones_that_are(tmp_path: Path) -> None:
    from rag import wiring

    with pytest.raises(ConfigError, match=r"RAG_ANSWER_PROMPT='nope': no nope\.de\.md in .*: answer, answer-decide"):
        wiring.templates(Settings(answer_prompt="nope"))
    with pytest.raises(ConfigError, match=r"cannot be read .*check RAG_PROMPTS_DIR"):  # the folder itself is missing
        wiring.templates(Settings(prompts_dir=tmp_path / "none"))

"""`rag index` and `rag search` through the CLI runner (fake embedder), and the sources `rag ask` lists.

Exit codes and one-line errors: a run that indexes nothing fails (6) and leaves the index as it was,
a same-named article from another folder is refused, an index whose documents were all removed works.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from fakes import A, B, FakeEmbedder
from typer.testing import CliRunner

from rag.cli.main import app

runner = CliRunner()


@pytest.fixture
def rag(settings: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """`rag ARGS` against the tmp_path index and corpus (a and b indexed), with fake models."""
    from rag import wiring

    monkeypatch.setattr(wiring, "token_counter", lambda s: lambda t: len(t.split()))
    monkeypatch.setattr(wiring, "embedder", lambda s: FakeEmbedder(768))
    settings.corpus_dir.mkdir()
    for d in (A, B):
        (settings.corpus_dir / d.doc_id).write_text(d.text)
    env = {"RAG_INDEX_DIR": str(settings.index_dir), "RAG_CORPUS_DIR": str(settings.corpus_dir), "RAG_ENV_FILE": ""}

    def invoke(*args: str) -> Any:
        return runner.invoke(app, list(args), env=env)

    assert invoke("index").exit_code == 0
    invoke.settings = settings  # type: ignore[attr-defined]
    return invoke


def indexed(settings: Any) -> dict[str, str]:
    """Document id -> title of the live index."""
    from rag import wiring

    return {d: doc.text for d, doc in wiring.open_index(settings).documents.items()}


def error_line(result: Any, code: int) -> str:
    assert result.exit_code == code, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in result.output, result.output
    return errors[0]


@pytest.mark.parametrize(
    "args", [("--prune", "nonexistent"), ("--rebuild", "nonexistent"), ("--prune", "empty.txt"), ("--prune", "none")]
)
def test_a_run_that_indexes_nothing_fails_and_keeps_the_index(rag: Any, tmp_path: Path, args: tuple[str, str]) -> None:
    """A mistyped path with --prune or --rebuild once crashed in bm25s (an empty corpus) and left a
    staging folder; it must not empty the index either."""
    (tmp_path / "empty.txt").write_text("  \n")
    (tmp_path / "none").mkdir()
    before = indexed(rag.settings)
    line = error_line(rag("index", args[0], str(tmp_path / args[1])), 6)
    assert "nothing to index" in line and "the index is unchanged" in line
    assert indexed(rag.settings) == before
    assert not list(rag.settings.index_dir.glob(".building-*"))


def test_nothing_indexable_on_a_fresh_index_fails_and_creates_none(rag: Any, tmp_path: Path) -> None:
    fresh = ["--index-dir", str(tmp_path / "fresh")]
    (tmp_path / "emptydir").mkdir()
    (tmp_path / "notes.docx").write_bytes(b"PK")
    line = error_line(runner.invoke(app, [*fresh, "index", str(tmp_path / "emptydir")]), 6)
    assert "no .htm, .html, .markdown, .md, .pdf, .txt file there" in line
    result = runner.invoke(app, [*fresh, "index", str(tmp_path / "notes.docx")])
    assert "unsupported file type" in result.output and "every file was skipped" in error_line(result, 6)
    assert not (tmp_path / "fresh" / "CURRENT").exists()


def test_nothing_changed_is_still_success(rag: Any) -> None:
    result = rag("index")
    assert result.exit_code == 0 and result.output.startswith("nothing to do: 2 documents unchanged"), result.output


def test_a_same_named_article_from_another_folder_is_refused_not_swapped_in(rag: Any, tmp_path: Path) -> None:
    """Document ids are file names: within one run the second file is skipped as a duplicate, and so it is
    against the index; only --prune (the index is exactly PATHS) replaces it."""
    other = tmp_path / "other" / A.doc_id
    other.parent.mkdir()
    other.write_text("Der Ölpreis stieg um 3 Prozent.")
    result = rag("index", str(other))
    assert f"skipped {other}: duplicate document id 'a.txt' (also {rag.settings.corpus_dir / A.doc_id}" in result.output
    assert "every file was skipped" in error_line(result, 6)
    assert indexed(rag.settings)["a.txt"] == A.text

    result = rag("index", str(other), str(rag.settings.corpus_dir / B.doc_id))  # the rest is indexed
    assert (
        result.exit_code == 0 and "skipped" in result.output and "nothing to do: 1 documents unchanged" in result.output
    )

    assert rag("index", "--prune", str(other)).exit_code == 0
    assert indexed(rag.settings) == {"a.txt": "Der Ölpreis stieg um 3 Prozent."}


def test_search_with_both_sides_off_is_an_input_error(rag: Any) -> None:
    assert "--no-dense and --no-keyword" in error_line(rag("search", "GPUs", "--no-dense", "--no-keyword"), 2)
    assert "1 to 2000 characters, got 2001" in error_line(rag("search", "x" * 2001), 2)  # as rag ask


def test_search_in_an_index_whose_documents_were_all_removed_says_so(rag: Any) -> None:
    from rag import wiring

    report = wiring.index_documents(rag.settings, [], remove=["a.txt", "b.txt"])
    assert sorted(report.removed) == ["a.txt", "b.txt"] and report.chunks == 0
    assert "holds no documents" in error_line(rag("search", "GPUs"), 4)
    assert rag("index").exit_code == 0 and sorted(indexed(rag.settings)) == ["a.txt", "b.txt"]


def test_every_passage_a_conflict_note_names_is_listed(capsys: pytest.CaptureFixture[str]) -> None:
    """The answer cites [1]; the note also names [2], which was never shown before."""
    from rag.cli.main import _print_sources
    from rag.ground.citations import resolve_uses
    from rag.ground.conflicts import find_conflicts
    from rag.types import Answer, Chunk, Hit, Passage

    texts = {"r1.txt": "DeepSeek nutzte 2.048 GPUs für R1.", "chips.txt": "Einleitung. Es waren 2.000 Nvidia-Chips."}
    passages = [
        Passage(n, Hit(Chunk(f"{d}#0", d, d.upper(), 0, len(t), t, 5), 1.0, n), t, 0, len(t))
        for n, (d, t) in enumerate(texts.items(), 1)
    ]
    text = "DeepSeek nutzte 2.048 GPUs [1]."
    conflicts = find_conflicts(passages, "de")
    assert conflicts and "[2]" in conflicts[0]
    answer = Answer("Wie viele GPUs?", text, "de", False, citations=resolve_uses([(1, text)], passages, "de"),
                    passages=tuple(passages), conflicts=conflicts)  # fmt: skip
    from rag.serialize import answer_to_dict

    shown = answer_to_dict(answer)  # the HTTP API and the web page get the same passages
    assert [c["number"] for c in shown["citations"]] == [1]
    assert [(c["number"], c["quote"]) for c in shown["conflict_sources"]] == [(2, "Es waren 2.000 Nvidia-Chips.")]
    _print_sources(answer)
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("  [1] R1.TXT (r1.txt, chars 0-")
    assert out[2] == "  [2] CHIPS.TXT (chips.txt, chars 12-40, only in the note below)"
    assert out[3] == "      \u201eEs waren 2.000 Nvidia-Chips.\u201c"
    assert out[4].startswith("  ! the articles disagree: ")


def test_a_long_title_is_cut_at_a_word_and_says_so() -> None:
    from rag.cli.main import _byline

    title = "Chinas KI-Durchbruch: Deepseek stellt Tech-Giganten vor große Fragen und einen Weckruf für alle"
    short = _byline(title, None, "2025-01-28")
    assert short.startswith("Chinas KI-Durchbruch") and short.endswith("… — 2025-01-28")
    assert title.startswith(short.split("…")[0]) and len(short.split(" — ")[0]) <= 70
    assert _byline("Kurz", None, None) == "Kurz"


def test_a_chat_session_survives_an_error_and_ends_on_quit(monkeypatch: pytest.MonkeyPatch) -> None:
    """A generation server that is down ends one turn, not the session (its history is kept); /quit ends it."""
    from rag import wiring
    from rag.errors import BackendError

    asked: list[tuple[str, int]] = []

    def answerer(question: str, *, history: list[dict[str, str]], **kw: Any) -> Any:
        asked.append((question, len(history)))
        if question.startswith("down"):
            raise BackendError("the generation server at RAG_LLM_URL is unreachable")
        from rag.types import Answer

        return Answer(question, "Liang Wenfeng [1].", "de", False)

    monkeypatch.setattr(wiring, "answerer", lambda settings: answerer)
    result = runner.invoke(app, ["chat"], input="Wer gründete DeepSeek?\ndown?\nUnd wann?\n/quit\nnie\n",
                           env={"RAG_ENV_FILE": ""})  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "error: the generation server" in result.output
    assert asked == [("Wer gründete DeepSeek?", 0), ("down?", 2), ("Und wann?", 2)]


def test_a_link_to_a_file_outside_the_corpus_is_not_indexed(rag: Any, tmp_path: Path) -> None:
    (rag.settings.corpus_dir / "passwd.txt").symlink_to("/etc/passwd")
    result = rag("index")
    assert result.exit_code == 0, result.output
    folder = rag.settings.corpus_dir
    assert f"skipped {folder / 'passwd.txt'}: symbolic link to /etc/passwd, outside {folder}; not followed" in (
        result.output
    )
    assert sorted(indexed(rag.settings)) == ["a.txt", "b.txt"]


def test_text_the_index_cannot_store_as_utf8_is_no_traceback(rag: Any) -> None:
    """A Latin-1 byte in a file name, or a "\\ud800" escape in front matter, crashed writing the index
    (UnicodeEncodeError, exit 1) and left its staging folder behind."""
    folder = rag.settings.corpus_dir
    (folder / os.fsdecode(b"caf\xe9.txt")).write_text("Ein Artikel über Kaffee.")
    (folder / "kaputt.md").write_text('---\ntitle: "Halb \\ud800 Zeichen"\n---\nEin Artikel über Tee.\n')
    result = rag("index")
    assert result.exit_code == 0, result.output
    assert "file name is not valid UTF-8; rename the file" in result.output
    assert indexed(rag.settings)["kaputt.md"].endswith("Ein Artikel über Tee.\n")
    from rag import wiring

    assert wiring.open_index(rag.settings).documents["kaputt.md"].title == "Halb \ufffd Zeichen"
    assert not list(rag.settings.index_dir.glob(".building-*"))


def test_a_same_named_article_from_another_working_folder_is_refused(
    rag: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Paths were stored as given: `x/corp/art.txt`, indexed as `corp/art.txt`, was looked for in the working
    folder of the next run, found there as y's own file, and y's article silently replaced x's."""
    for where, text in (("x", "Artikel X über Chips."), ("y", "Artikel Y über Öl.")):
        (tmp_path / where / "corp").mkdir(parents=True)
        (tmp_path / where / "corp" / "art.txt").write_text(text)
    monkeypatch.chdir(tmp_path / "x")
    assert rag("index", "corp").exit_code == 0
    monkeypatch.chdir(tmp_path / "y")
    result = rag("index", "corp")
    assert f"(also {tmp_path / 'x' / 'corp' / 'art.txt'}, already indexed)" in result.output
    assert "every file was skipped" in error_line(result, 6)
    assert indexed(rag.settings)["art.txt"] == "Artikel X über Chips."


def test_rebuild_with_one_path_keeps_the_other_documents(rag: Any, tmp_path: Path) -> None:
    (tmp_path / "neu.txt").write_text("Ein neuer Artikel über Chips.")
    result = rag("index", "--rebuild", str(tmp_path / "neu.txt"))
    assert result.exit_code == 0 and "1 added, 0 changed, 0 removed" in result.output, result.output
    assert sorted(indexed(rag.settings)) == ["a.txt", "b.txt", "neu.txt"]


def test_prune_keeps_a_document_whose_file_is_there_but_skipped(
    rag: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file empty mid-save, or in a folder that cannot be listed, counted as deleted: --prune removed it."""
    corpus = rag.settings.corpus_dir
    (corpus / "sub").mkdir()
    (corpus / "sub" / "c.txt").write_text("Liang Wenfeng gründete DeepSeek.")
    assert rag("index").exit_code == 0 and sorted(indexed(rag.settings)) == ["a.txt", "b.txt", "c.txt"]
    (corpus / "a.txt").write_text("")  # being saved
    scandir = os.scandir

    def refuse(path: Any) -> Any:
        if not isinstance(path, int) and Path(path).name == "sub":  # chmod 000 does not stop root (CI)
            raise PermissionError(13, "Permission denied", str(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", refuse)
    result = rag("index", "--prune")
    assert result.exit_code == 0, result.output
    assert "kept 2 indexed documents whose files are there but were skipped: a.txt, c.txt" in result.output
    assert sorted(indexed(rag.settings)) == ["a.txt", "b.txt", "c.txt"]


def test_loading_many_files_shows_progress(rag: Any, tmp_path: Path) -> None:
    """With many files `rag index` was silent for tens of seconds before the embedding bar."""
    from rag.config import PROGRESS_MIN_ITEMS

    for n in range(PROGRESS_MIN_ITEMS + 1):
        (tmp_path / "viele").mkdir(exist_ok=True)
        (tmp_path / "viele" / f"n{n:03d}.txt").write_text(f"Artikel Nummer {n} über Chips.")
    result = rag("index", str(tmp_path / "viele"))
    assert result.exit_code == 0 and f"{PROGRESS_MIN_ITEMS + 1} added" in result.output, result.output
    assert "loading" in result.output and "chunking" in result.output


def test_a_file_name_with_a_line_break_is_skipped_in_one_line(rag: Any) -> None:
    """It became a doc_id that broke the one-line messages naming it."""
    folder = rag.settings.corpus_dir
    (folder / "zwei\nzeilen.txt").write_text("Ein Artikel.")
    result = rag("index")
    assert result.exit_code == 0, result.output
    shown = repr(str(folder / "zwei\nzeilen.txt"))
    assert f"skipped {shown}: file name contains a line break or other control character" in result.output
    assert sorted(indexed(rag.settings)) == ["a.txt", "b.txt"]


def test_a_pattern_is_read_once_and_refused_for_watching(rag: Any, tmp_path: Path) -> None:
    folder = tmp_path / "neu"
    folder.mkdir()
    (folder / "x.txt").write_text("Liang Wenfeng gründete DeepSeek.")
    result = rag("index", str(folder / "*.txt"))
    assert result.exit_code == 0 and "x.txt" in indexed(rag.settings), result.output
    watched = rag("index", "--watch", str(folder / "*.txt"))
    assert watched.exit_code == 2 and "--watch needs folders or files, not patterns" in watched.output


def test_a_quote_over_paragraphs_prints_indented_without_blank_lines(capsys: pytest.CaptureFixture[str]) -> None:
    """A quote spanning two paragraphs printed a line of spaces for the blank line between them (review)."""
    from rag.cli.main import _print_sources
    from rag.types import Answer, Citation

    quote = "Die Kosten lagen bei 5,6 Millionen Dollar.\n\nAnalysten waren überrascht."
    _print_sources(Answer("?", "x [1].", "de", False, citations=(Citation(1, "a.txt", "A", "a#0", 0, 70, quote),)))
    assert capsys.readouterr().out.splitlines()[1:] == [
        "      \u201eDie Kosten lagen bei 5,6 Millionen Dollar.",
        "       Analysten waren überrascht.\u201c",
    ]

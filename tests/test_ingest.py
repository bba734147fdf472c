"""Loaders for .txt, .md, .html and .pdf, and the errors for files that are not articles."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader, PdfWriter

from rag.errors import DocumentError
from rag.ingest.load import SUPPORTED_SUFFIXES, derive_title, load_document, load_documents

CORPUS = Path(__file__).resolve().parent.parent / "corpus"

ARTICLE_HTML = """<!doctype html>
<html lang="de"><head><title>DeepSeek | Portal</title>
<style>body { color: red }</style>
<script>var tracking = "Script-Text darf nicht erscheinen";</script></head>
<body>
<nav><a href="/">Startseite</a> <a href="/news">Nachrichten</a></nav>
<header><p>Portal-Kopfzeile</p></header>
<article>
  <h1>DeepSeek stellt R1 vor</h1>
  <p>Das Training kostete ca. 5,6&nbsp;Mio. Dollar. Es   nutzte
     2.048 GPUs.</p>
  <div style="display: none">Versteckter Text</div>
  <p>Gründer <a href="/p/liang">Liang Wenfeng</a> sprach am 27. Januar mit <b>Regierungschef</b> Li Qiang.</p>
  <ul><li>Nvidia verlor 600 Milliarden Dollar.</li><li>Meta verlor auch.</li></ul>
  <!-- Kommentar im Quelltext -->
</article>
<aside>Anzeige: Jetzt abonnieren</aside>
<footer>© 2025 Portal GmbH · Impressum · Datenschutz</footer>
<script>console.log("mehr Script")</script>
</body></html>
"""


def make_pdf(lines: list[str]) -> bytes:
    """A one-page PDF with a Helvetica text layer, built by hand (no PDF writer needed)."""
    escaped = [line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") for line in lines]
    content = "BT /F1 12 Tf 72 720 Td 14 TL " + " ".join(f"({line}) Tj T*" for line in escaped) + " ET"
    stream = content.encode("cp1252")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def encrypt_pdf(data: bytes, user_password: str) -> bytes:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    # RC4 needs no extra crypto package, unlike AES.
    writer.encrypt(user_password=user_password, owner_password="owner", algorithm="RC4-128")
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


PDF_LINES = ["DeepSeek R1 im Test", "Das Training kostete ca. 5,6 Mio. Dollar.", "Gründer ist Liang Wenfeng."]


def write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        path.write_text(data, encoding="utf-8", newline="")
    else:
        path.write_bytes(data)
    return path


# --- formats --------------------------------------------------------------------------


def test_supported_suffixes() -> None:
    assert {".txt", ".md", ".html", ".htm", ".pdf"} <= SUPPORTED_SUFFIXES


def test_txt_is_loaded_unchanged(tmp_path: Path) -> None:
    raw = "Titel der Meldung\r\n\r\nDeepSeek nutzte 2.048 GPUs.  \r\n"
    path = write(tmp_path / "meldung.txt", raw)
    doc = load_document(path)
    assert doc.text == raw  # offsets refer to the file content itself, line endings included
    assert doc.doc_id == "meldung.txt"
    assert doc.path == str(path)
    assert doc.title == "Titel der Meldung"
    assert doc.content_hash == hashlib.sha256(raw.encode("utf-8")).hexdigest()


def test_utf8_bom_is_not_part_of_the_text(tmp_path: Path) -> None:
    path = write(tmp_path / "bom.txt", b"\xef\xbb\xbfGr\xc3\xb6\xc3\x9fe.\n")
    assert load_document(path).text == "Größe.\n"


def test_utf16_with_bom(tmp_path: Path) -> None:
    path = write(tmp_path / "utf16.txt", "Über 2.048 GPUs.\nZweite Zeile.".encode("utf-16"))
    assert load_document(path).text == "Über 2.048 GPUs.\nZweite Zeile."


def test_latin1_bytes_decode_as_windows_1252(tmp_path: Path) -> None:
    text = "Größe über Gebühr: 5,6 Mio. €\nZweite Zeile."
    path = write(tmp_path / "alt.txt", text.encode("cp1252"))
    assert load_document(path).text == text
    path = write(tmp_path / "latin1.txt", "Äpfel und Öl.\nMehr.".encode("latin-1"))
    assert load_document(path).text == "Äpfel und Öl.\nMehr."


def test_markdown_title_from_heading(tmp_path: Path) -> None:
    raw = "# DeepSeek R1: Der Überblick\n\nDas Modell kostete *5,6 Mio.* Dollar.\n"
    doc = load_document(write(tmp_path / "notiz.md", raw))
    assert doc.text == raw
    assert doc.title == "DeepSeek R1: Der Überblick"


def test_html_keeps_only_visible_article_text(tmp_path: Path) -> None:
    path = write(tmp_path / "seite.html", ARTICLE_HTML)
    doc = load_document(path)
    assert doc.text == (
        "DeepSeek stellt R1 vor\n"
        "Das Training kostete ca. 5,6 Mio. Dollar. Es nutzte 2.048 GPUs.\n"
        "Gründer Liang Wenfeng sprach am 27. Januar mit Regierungschef Li Qiang.\n"
        "Nvidia verlor 600 Milliarden Dollar.\n"
        "Meta verlor auch."
    )
    assert doc.title == "DeepSeek stellt R1 vor"
    for hidden in [
        "Script",
        "Startseite",
        "Portal-Kopfzeile",
        "Anzeige",
        "Impressum",
        "Versteckt",
        "Kommentar",
    ]:
        assert hidden not in doc.text
    assert doc.content_hash == hashlib.sha256(ARTICLE_HTML.encode("utf-8")).hexdigest()


def test_html_without_article_uses_main_then_body(tmp_path: Path) -> None:
    html = "<html><body><nav>Menü</nav><main><h2>Titel</h2><p>Text eins.</p></main><footer>Fuß</footer></body></html>"
    assert load_document(write(tmp_path / "main.htm", html)).text == "Titel\nText eins."
    html = "<html><body><div><p>Nur ein Absatz.</p></div><footer>Fuß</footer></body></html>"
    assert load_document(write(tmp_path / "body.html", html)).text == "Nur ein Absatz."


def test_html_picks_the_longest_article(tmp_path: Path) -> None:
    html = "<article><p>Teaser.</p></article><article><p>Der eigentliche, lange Artikel.</p></article>"
    assert load_document(write(tmp_path / "zwei.html", html)).text == "Der eigentliche, lange Artikel."


def test_html_without_visible_text(tmp_path: Path) -> None:
    path = write(tmp_path / "leer.html", "<html><head><script>x()</script></head><body><nav>Menü</nav></body></html>")
    with pytest.raises(DocumentError, match=r"leer\.html.*no text"):
        load_document(path)


def test_pdf_text_layer(tmp_path: Path) -> None:
    data = make_pdf(PDF_LINES)
    doc = load_document(write(tmp_path / "bericht.pdf", data))
    assert doc.text == "\n".join(PDF_LINES)
    assert doc.title == "DeepSeek R1 im Test"
    assert doc.content_hash == hashlib.sha256(data).hexdigest()


def test_pdf_encrypted_with_empty_user_password_opens(tmp_path: Path) -> None:
    path = write(tmp_path / "offen.pdf", encrypt_pdf(make_pdf(PDF_LINES), user_password=""))
    assert load_document(path).text == "\n".join(PDF_LINES)


def test_pdf_encrypted_with_password_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "geheim.pdf", encrypt_pdf(make_pdf(PDF_LINES), user_password="geheim"))
    with pytest.raises(DocumentError, match=r"geheim\.pdf.*encrypted"):
        load_document(path)


def test_pdf_without_text_layer(tmp_path: Path) -> None:
    writer = PdfWriter()
    writer.add_blank_page(width=612, height=792)
    buffer = io.BytesIO()
    writer.write(buffer)
    path = write(tmp_path / "scan.pdf", buffer.getvalue())
    with pytest.raises(DocumentError, match=r"scan\.pdf.*no text layer"):
        load_document(path)


@pytest.mark.parametrize("data", [b"%PDF-1.4\nkaputt kaputt", b"kein PDF, nur Text"])
def test_damaged_pdf(tmp_path: Path, data: bytes) -> None:
    with pytest.raises(DocumentError, match=r"kaputt\.pdf"):
        load_document(write(tmp_path / "kaputt.pdf", data))


def test_a_damaged_pdf_prints_nothing_but_its_error(tmp_path: Path) -> None:
    """pypdf's own warnings ("invalid pdf header") came out bare before the skip line; a fresh process, since
    pytest's log capture would hide them."""
    import subprocess
    import sys

    path = write(tmp_path / "kaputt.pdf", b"kein PDF, nur Text")
    code = "\n".join([
        "import sys", "from rag.errors import DocumentError", "from rag.ingest.load import load_document",
        "try: load_document(sys.argv[1])", "except DocumentError: pass",
    ])  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True)
    assert done.stderr == "" and done.stdout == ""


# --- broken files ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("bild.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", "binary"),
        ("rauschen.txt", bytes(range(1, 32)) * 20 + b"abc", "binary"),
        ("leer.txt", b"", "empty"),
        ("blank.md", b"  \n\t\r\n  ", "empty"),
        ("kaputt.txt", b"Text mit \x81\x8d\x90 Bytes, die nirgends gelten", "cannot decode"),
        ("tabelle.docx", b"PK\x03\x04", "unsupported file type"),
        ("ohne_endung", b"Text", "unsupported file type"),
    ],
)
def test_broken_files(tmp_path: Path, name: str, data: bytes, reason: str) -> None:
    path = write(tmp_path / name, data)
    with pytest.raises(DocumentError, match=reason) as error:
        load_document(path)
    assert str(path) in str(error.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DocumentError, match="cannot read"):
        load_document(tmp_path / "fehlt.txt")


# --- folders and batches -------------------------------------------------------------


def test_folder_mixing_good_and_bad_files(tmp_path: Path) -> None:
    folder = tmp_path / "artikel"
    write(folder / "b_gut.txt", "Titel B\nInhalt B.")
    write(folder / "a_gut.md", "# Titel A\nInhalt A.")
    write(folder / "sub" / "c_seite.html", "<article><h1>Titel C</h1><p>Inhalt C.</p></article>")
    write(folder / "d_bericht.pdf", make_pdf(PDF_LINES))
    write(folder / "kaputt.txt", b"\x00\x01\x02binary")
    write(folder / "leer.md", b"")
    write(folder / "geheim.pdf", encrypt_pdf(make_pdf(PDF_LINES), user_password="pw"))
    write(folder / "bild.png", b"\x89PNG")  # not a supported type: ignored inside folders
    write(folder / ".versteckt.txt", "Versteckt.")  # hidden: ignored
    write(folder / ".cache" / "alt.txt", "Versteckter Ordner.")

    documents, skipped = load_documents([folder])

    assert [d.doc_id for d in documents] == ["a_gut.md", "b_gut.txt", "d_bericht.pdf", "c_seite.html"]
    assert [d.title for d in documents] == ["Titel A", "Titel B", "DeepSeek R1 im Test", "Titel C"]
    reasons = {path.name: reason for path, reason in skipped}
    assert set(reasons) == {"kaputt.txt", "leer.md", "geheim.pdf"}
    assert reasons["kaputt.txt"].startswith("binary file")  # the path is beside it, not repeated in it
    assert "empty" in reasons["leer.md"]
    assert "encrypted" in reasons["geheim.pdf"]


def test_explicit_paths_report_unsupported_and_missing(tmp_path: Path) -> None:
    good = write(tmp_path / "gut.txt", "Ein Text.")
    docx = write(tmp_path / "brief.docx", b"PK")
    missing = tmp_path / "fehlt.md"
    documents, skipped = load_documents([good, docx, missing, good])
    assert [d.doc_id for d in documents] == ["gut.txt"]
    assert [(path, "unsupported" in reason or "no such file" in reason) for path, reason in skipped] == [
        (docx, True),
        (missing, True),
    ]


def test_same_file_name_in_two_folders_is_skipped(tmp_path: Path) -> None:
    first = write(tmp_path / "a" / "artikel.txt", "Erster.")
    second = write(tmp_path / "b" / "artikel.txt", "Zweiter.")
    documents, skipped = load_documents([tmp_path / "a", tmp_path / "b"])
    assert [d.path for d in documents] == [str(first)]
    assert len(skipped) == 1 and skipped[0][0] == second and "duplicate" in skipped[0][1]


def test_symbolic_links_out_of_the_folder_are_skipped_and_named(tmp_path: Path) -> None:
    """A link in the corpus folder to /etc/passwd (or any file outside) was read and its text indexed."""
    folder = tmp_path / "korpus"
    write(folder / "echt.txt", "Ein Artikel.")
    outside = write(tmp_path / "draussen" / "geheim.txt", "Geheim.")
    (folder / "passwd.txt").symlink_to("/etc/passwd")
    (folder / "geheim.txt").symlink_to(outside)
    (folder / "ordner").symlink_to(outside.parent, target_is_directory=True)
    (folder / "weg.md").symlink_to(tmp_path / "fehlt.md")
    write(folder / "fehlt.md", "x").unlink()  # a link inside the folder to a file that is gone
    (folder / "innen_weg.md").symlink_to(folder / "fehlt.md")

    documents, skipped = load_documents([folder])

    assert [d.doc_id for d in documents] == ["echt.txt"]
    reasons = {path.name: reason for path, reason in skipped}
    assert set(reasons) == {"passwd.txt", "geheim.txt", "ordner", "weg.md", "innen_weg.md"}
    assert reasons["passwd.txt"] == f"symbolic link to /etc/passwd, outside {folder}; not followed"
    assert reasons["geheim.txt"] == f"symbolic link to {outside}, outside {folder}; not followed"
    assert "outside" in reasons["ordner"] and "outside" in reasons["weg.md"]
    assert reasons["innen_weg.md"].startswith("broken symbolic link")


def test_a_symbolic_link_inside_the_folder_is_one_document_under_the_file_name(tmp_path: Path) -> None:
    folder = tmp_path / "korpus"
    target = write(folder / "z_artikel.txt", "Ein Artikel.")
    (folder / "a_verweis.txt").symlink_to(target)
    (folder / "sub").mkdir()
    (folder / "sub" / "b.txt").symlink_to(Path("..") / "z_artikel.txt")
    documents, skipped = load_documents([folder])
    assert [(d.doc_id, d.path) for d in documents] == [("z_artikel.txt", str(target))] and skipped == []


def test_a_symbolic_link_named_as_an_argument_is_followed(tmp_path: Path) -> None:
    """The user chose that file by naming it, as `cat link` would; only links met inside a folder are checked."""
    target = write(tmp_path / "anderswo" / "artikel.txt", "Ein Artikel.")
    link = tmp_path / "verweis.txt"
    link.symlink_to(target)
    (tmp_path / "kaputt.txt").symlink_to(tmp_path / "fehlt.txt")
    documents, skipped = load_documents([link, tmp_path / "kaputt.txt"])
    assert [(d.doc_id, d.text) for d in documents] == [("verweis.txt", "Ein Artikel.")]
    assert skipped == [
        (tmp_path / "kaputt.txt", f"broken symbolic link (its target {tmp_path / 'fehlt.txt'} does not exist)")
    ]


def test_a_folder_that_cannot_be_listed_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Its files were silently missing, as if deleted: `rag index --prune` then removed them from the index."""
    import os

    folder = tmp_path / "korpus"
    write(folder / "a.txt", "Lesbar.")
    write(folder / "gesperrt" / "b.txt", "Nicht lesbar.")
    scandir = os.scandir

    def refuse(path: Any) -> Any:
        if Path(path).name == "gesperrt":  # chmod 000 does not stop root, who runs CI containers
            raise PermissionError(13, "Permission denied", str(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", refuse)
    documents, skipped = load_documents([folder])
    assert [d.doc_id for d in documents] == ["a.txt"]
    assert skipped == [(folder / "gesperrt", "cannot read folder (Permission denied); its files are left out")]


def test_loads_the_seed_corpus() -> None:
    documents, skipped = load_documents([CORPUS])
    assert skipped == []
    assert [d.doc_id for d in documents] == sorted(p.name for p in CORPUS.glob("*.txt"))
    for doc in documents:
        assert doc.text == (CORPUS / doc.doc_id).read_text(encoding="utf-8")
        assert 0 < len(doc.title) <= 100
    titles = {d.doc_id: d.title for d in documents}
    assert titles["001_632e2609b1775729.txt"] == "Chinas KI-Durchbruch: Deepseek stellt Tech-Giganten vor große Fragen"
    assert titles["000_e6de1ff470927a21.txt"].endswith("…")


@pytest.mark.parametrize(
    ("text", "title"),
    [
        ("# Überschrift\n\nText.", "Überschrift"),
        ("Kurze Zeile\nLanger Text folgt.", "Kurze Zeile"),
        ("\n\n  28.01.2025  \n-\nText.", "Text."),
        ("Ein Satz. Noch einer.", "Ein Satz."),
        ("Nur eine Zeile ohne Punkt", "Nur eine Zeile ohne Punkt"),
        (
            "Ein sehr langer erster Satz, der weit über die Grenze von neunzig Zeichen hinausgeht und "
            "deshalb gekürzt werden muss. Zweiter Satz.",
            "Ein sehr langer erster Satz, der weit über die Grenze von neunzig Zeichen hinausgeht und…",
        ),
        ("", ""),
    ],
)
def test_derive_title(text: str, title: str) -> None:
    assert derive_title(text) == title
    assert len(derive_title(text)) <= 90 or "\n" in text


@pytest.mark.parametrize("name", ["zwei\nzeilen.txt", "wagen\rruecklauf.md", "farbe\x1b[31m.txt", "trenner\u2028.txt"])
def test_a_file_name_with_a_control_character_is_skipped(tmp_path: Path, name: str) -> None:
    """It became a doc_id that broke every one-line message naming it (skip lines, errors, reports)."""
    path = write(tmp_path / name, "Ein Artikel.")
    documents, skipped = load_documents([tmp_path])
    assert documents == [] and skipped == [
        (path, "file name contains a line break or other control character; rename the file")
    ]
    with pytest.raises(DocumentError) as exc:
        load_document(path)
    assert "\n" not in str(exc.value) and "\r" not in str(exc.value) and repr(str(path)) in str(exc.value)


def test_loading_many_files_shows_progress_only_when_asked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`rag index` over many files was silent for tens of seconds before the embedding bar."""
    from rag.config import PROGRESS_MIN_ITEMS

    for n in range(PROGRESS_MIN_ITEMS + 1):
        write(tmp_path / "viele" / f"{n:03d}.txt", f"Artikel {n}.")
    write(tmp_path / "wenige" / "a.txt", "Ein Artikel.")
    assert len(load_documents([tmp_path / "viele"])[0]) == PROGRESS_MIN_ITEMS + 1
    load_documents([tmp_path / "wenige"], progress=True)
    assert capsys.readouterr().err == ""  # quiet by default, and for a few files
    load_documents([tmp_path / "viele"], progress=True)
    assert "loading" in capsys.readouterr().err


def test_a_document_path_is_recorded_in_one_spelling(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`rag index ../proj/corpus` from a sibling folder recorded ".../sib/../proj/corpus/a.txt": each run from
    another folder then took every document for moved and wrote a new index version."""
    write(tmp_path / "proj" / "corpus" / "a.txt", "Text.")
    (tmp_path / "sib").mkdir()
    monkeypatch.chdir(tmp_path / "sib")
    (from_sibling,), _ = load_documents([Path("../proj/corpus")])
    monkeypatch.chdir(tmp_path / "proj")
    (from_project,), _ = load_documents([Path("corpus")])
    assert from_sibling.path == from_project.path == str(tmp_path / "proj" / "corpus" / "a.txt")


def test_a_folder_name_that_is_not_utf8_is_named_as_the_folder(tmp_path: Path) -> None:
    import os

    folder = tmp_path / os.fsdecode(b"caf\xe9")
    write(folder / "a.txt", "Ein Artikel.")
    documents, skipped = load_documents([folder])
    assert documents == [] and skipped == [
        (folder / "a.txt", "a folder name in its path is not valid UTF-8; rename the folder")
    ]


def test_a_pattern_the_shell_did_not_expand_is_expanded(tmp_path: Path) -> None:
    """`rag index 'corpus/*.txt'` (quoted) was "no such file or folder"."""
    write(tmp_path / "korpus" / "a.txt", "Erster Artikel.")
    write(tmp_path / "korpus" / "sub" / "b.txt", "Zweiter Artikel.")
    write(tmp_path / "korpus" / "c.md", "Dritter Artikel.")
    documents, skipped = load_documents([tmp_path / "korpus" / "*.txt", tmp_path / "korpus" / "**" / "b.txt"])
    assert [d.doc_id for d in documents] == ["a.txt", "b.txt"] and skipped == []
    _, missing = load_documents([tmp_path / "korpus" / "*.pdf"])
    assert missing == [(tmp_path / "korpus" / "*.pdf", "no file or folder matches this pattern")]


def test_still_there_names_what_cannot_be_read_as_it_is_now(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Empty (mid-save) or unreadable: there. A link out of the folder, a binary file: skipped for what they are,
    so `--prune` removes their documents (an index built when links were followed still held the linked text)."""
    import os

    from rag.ingest.load import still_there

    empty = write(tmp_path / "leer.txt", " \n")
    (tmp_path / "ordner").mkdir()
    (tmp_path / "offen").mkdir()
    binary = tmp_path / "bild.txt"
    binary.write_bytes(b"\x00\x01\x02 binary")
    outside = write(tmp_path.parent / f"{tmp_path.name}-geheim.txt", "Geheim.")
    link = tmp_path / "leck.txt"
    link.symlink_to(outside)
    scandir = os.scandir

    def refuse(path: Any) -> Any:
        if not isinstance(path, int) and Path(path).name == "ordner":  # chmod 000 does not stop root
            raise PermissionError(13, "Permission denied", str(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", refuse)
    skipped = [(empty, "empty"), (tmp_path / "ordner", "cannot read folder"), (tmp_path / "offen", "was unreadable"),
               (tmp_path / "fehlt.txt", "no such file"), (binary, "binary"), (link, "link outside")]  # fmt: skip
    assert still_there(skipped) == [empty, tmp_path / "ordner"]

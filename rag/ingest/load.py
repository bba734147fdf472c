"""Load articles from disk: .txt, .md, .html and .pdf into ``Document``.

``Document.text`` is what every later offset refers to: for .txt/.md the decoded file
unchanged, for .html the visible article text (selectolax), for .pdf the text layer
(pypdf). Title, date, author and URL come from what the file states (rag/ingest/meta.py).
A file that cannot be read as an article raises ``DocumentError`` naming
the file and the reason; ``load_documents`` collects those as skipped entries so
one bad file never stops the rest.
"""

from __future__ import annotations

import glob
import hashlib
import io
import logging
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from pypdf import PdfReader
from pypdf.errors import PyPdfError
from selectolax.lexbor import LexborHTMLParser
from tqdm import tqdm

from rag.config import PROGRESS_MIN_ITEMS
from rag.errors import DocumentError
from rag.ingest.chunk import split_sentences
from rag.ingest.meta import Metadata, front_matter_metadata, html_metadata, split_front_matter, text_metadata
from rag.types import Document

# pypdf logs what it finds wrong in a damaged file ("invalid pdf header", "EOF marker not found") and sets no
# handler, so without one Python printed those lines bare, ahead of the skip line that names the file and
# why. They still reach a configured log (`rag serve`'s); the skip line says the rest.
logging.getLogger("pypdf").addHandler(logging.NullHandler())

TEXT_SUFFIXES = frozenset({".txt", ".md", ".markdown"})
MARKDOWN_SUFFIXES = frozenset({".md", ".markdown"})
HTML_SUFFIXES = frozenset({".html", ".htm"})
PDF_SUFFIXES = frozenset({".pdf"})
SUPPORTED_SUFFIXES = TEXT_SUFFIXES | HTML_SUFFIXES | PDF_SUFFIXES

_TITLE_MAX_CHARS = 90
# A first line up to this long is a heading and becomes the title as it is.
_HEADING_MAX_CHARS = 120
# Share of control characters (other than tab/newline/CR/FF) above which decoded bytes are binary.
_MAX_CONTROL_SHARE = 0.01
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f]")
_LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")
_GLOB = re.compile(r"[*?\[]")
# In a file name (the doc_id) these would break the one-line messages and reports that name it.
_NAME_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")

# Elements whose text is never shown as article text.
_INVISIBLE_TAGS = (
    "script, style, noscript, template, nav, header, footer, aside, form, iframe, svg, "
    "button, select, dialog, [hidden], [aria-hidden=true], [role=navigation], [role=banner], "
    "[role=contentinfo], [role=complementary]"
)
# Elements that start a new line in the extracted text.
# fmt: off
_BLOCK_TAGS = frozenset({
    "address", "article", "blockquote", "dd", "details", "div", "dl", "dt", "figcaption", "figure", "h1",
    "h2", "h3", "h4", "h5", "h6", "hr", "li", "main", "ol", "p", "pre", "section", "summary", "table",
    "tbody", "thead", "tfoot", "tr", "td", "th", "ul", "caption",
})
# fmt: on


def load_document(path: Path) -> Document:
    """Read one article file.

    Raises ``DocumentError`` ("<path>: <reason>") for an unsupported extension, an
    unreadable, binary, empty or undecodable file, and an encrypted or textless PDF.
    """
    try:
        return _read_document(Path(path))
    except DocumentError as exc:
        raise DocumentError(f"{shown(path)}: {exc}") from exc


def shown(path: str | Path) -> str:
    """``path`` for a one-line message: escaped as a Python string when it holds a line break or
    another unprintable character.

    >>> print(shown("/c/a.txt"), shown("/c/a\\nb.txt"))
    /c/a.txt '/c/a\\nb.txt'
    """
    text = str(path)
    return text if text.isprintable() else repr(text)


def _read_document(path: Path) -> Document:
    """``load_document`` whose errors hold only the reason, so batch reports don't repeat the path."""
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        supported = ", ".join(sorted(SUPPORTED_SUFFIXES))
        raise DocumentError(f"unsupported file type {path.suffix or '(none)'!r}; use {supported}")
    # Bytes of another encoding in a name (an old zip, a Latin-1 file system): the index is UTF-8.
    if _LONE_SURROGATE.search(path.name):
        raise DocumentError("file name is not valid UTF-8; rename the file")
    if _LONE_SURROGATE.search(str(path.parent)):
        raise DocumentError("a folder name in its path is not valid UTF-8; rename the folder")
    if _NAME_CONTROL.search(path.name):
        raise DocumentError("file name contains a line break or other control character; rename the file")
    if path.exists() and not path.is_file():
        # A folder, FIFO or device named like an article: reading a FIFO would wait forever.
        raise DocumentError("not a regular file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DocumentError(f"cannot read file ({exc.strerror or exc})") from exc
    if not data.strip():
        raise DocumentError("file is empty (or whitespace only)")
    meta, body = Metadata(), 0  # body: where the article begins after Markdown front matter
    if suffix in PDF_SUFFIXES:
        text = _pdf_text(data)
    elif suffix in HTML_SUFFIXES:
        tree = LexborHTMLParser(_decode(data))
        meta = html_metadata(tree)  # before the text: <head> and <header> are removed for it
        text = _html_text(tree)
    else:
        text = _decode(data)
        if suffix in MARKDOWN_SUFFIXES:
            front, body = split_front_matter(text)
            meta = front_matter_metadata(front)
    if not text[body:].strip():
        raise DocumentError("no text in file (empty, whitespace only or nothing visible)")
    meta = meta.fill(text_metadata(text[body:]))
    return Document(
        doc_id=path.name,
        title=_valid(meta.title or derive_title(text[body:])),
        # Absolute: a relative path would name another file once `rag index` runs from another folder.
        path=os.path.abspath(path),  # `..` resolved too: one spelling per file, whatever the working folder
        text=_valid(text),
        content_hash=hashlib.sha256(data).hexdigest(),
        published=meta.published,
        author=meta.author and _valid(meta.author),
        url=meta.url and _valid(meta.url),
    )


def _valid(text: str) -> str:
    """``text`` with each lone surrogate (a PDF's broken character map, a "\\ud800" escape in front matter
    or JSON-LD) as U+FFFD: one character for one, so offsets hold, and the index can be written as UTF-8.

    >>> _valid("a\\ud800b") == "a\\ufffdb"
    True
    """
    return _LONE_SURROGATE.sub("\ufffd", text)


def load_documents(paths: Iterable[Path], *, progress: bool = False) -> tuple[list[Document], list[tuple[Path, str]]]:
    """Load files and folders; return the documents and the ``(path, reason)`` of each skipped file.

    ``reason`` says what is wrong ("binary file ...") without repeating the path.

    Folders are searched recursively for supported files, in sorted order, skipping
    hidden files and folders. A file whose name (its doc_id) was already loaded from
    another place is skipped, since citations could not tell the two apart.
    ``progress``: a bar on stderr when there are more than ``PROGRESS_MIN_ITEMS`` files.
    """
    return load_listed(list_files(paths), progress=progress)


def load_listed(
    found: Iterable[Path | tuple[Path, str]], *, progress: bool = False
) -> tuple[list[Document], list[tuple[Path, str]]]:
    """`load_documents` of what `list_files` found, for a caller that walked the folders already
    (`rag index --watch` walks once per change, to see what came or went, and reads what it found)."""
    documents: list[Document] = []
    skipped: list[tuple[Path, str]] = []
    seen_paths: set[Path] = set()
    seen_ids: dict[str, Path] = {}
    found = list(found)
    many = sum(isinstance(item, Path) for item in found) > PROGRESS_MIN_ITEMS
    for item in tqdm(found, desc="loading", unit="file", disable=not (progress and many)):
        if not isinstance(item, Path):  # a path that names no file, in its place among the files
            skipped.append(item)
            continue
        path = item
        resolved = path.resolve()
        if resolved in seen_paths:
            continue
        seen_paths.add(resolved)
        if path.name in seen_ids:
            skipped.append(
                (path, f"duplicate document id {path.name!r} (also {seen_ids[path.name]}); rename one of the two")
            )
            continue
        try:
            document = _read_document(path)
        except DocumentError as exc:
            skipped.append((path, str(exc)))
            continue
        seen_ids[path.name] = path
        documents.append(document)
    return documents, skipped


def still_there(skipped: Iterable[tuple[Path, str]]) -> list[Path]:
    """The skipped files and folders that are there but cannot be read as they are now: a folder that cannot
    be listed, a file that is empty (being saved) or cannot be opened. ``prune`` keeps their documents
    (`update_index`'s ``keep``). A file skipped for what it is (a link out of the folder, a binary file, an
    unsupported type) is not among them: ``prune`` removes its document, so a link followed by an older
    version is cleaned up.
    """
    return [path for path, _ in skipped if _passing(path)]


def _passing(path: Path) -> bool:
    if path.is_symlink():
        return False
    if path.is_dir():
        try:
            with os.scandir(path):
                return False
        except OSError:
            return True
    if not path.is_file() or path.suffix.lower() not in SUPPORTED_SUFFIXES:
        return False
    try:
        with path.open("rb") as f:
            return not f.read(4096).strip()  # empty or whitespace only: mid-save
    except OSError:
        return True


def list_files(paths: Iterable[Path]) -> list[Path | tuple[Path, str]]:
    """The files `load_documents` reads below ``paths``, in its order, with the ``(path, reason)`` of
    each path that names none (missing, a folder that cannot be listed, a link out) in its place."""
    found: list[Path | tuple[Path, str]] = []
    pending: list[tuple[Path, str]] = []
    for path in _expand(paths, pending):
        found.extend(pending)
        pending.clear()
        found.append(path)
    found.extend(pending)
    return found


def derive_title(text: str) -> str:
    """A short first line (a heading) if there is one, else the first sentence cut to ~90 chars.

    >>> derive_title("# DeepSeek R1\\n\\nText.")
    'DeepSeek R1'
    >>> derive_title("DeepSeek nutzte 2.048 GPUs für R1. Das ist wenig.")
    'DeepSeek nutzte 2.048 GPUs für R1.'
    """
    # Lines without a letter (a date, a lone "-") name nothing.
    lines = [line.strip() for line in text.splitlines() if re.search(r"[^\W\d_]", line)]
    if not lines:
        return ""
    first = re.sub(r"^(#{1,6}\s+|[*_=\-]+\s*)|\s*[*_#=]+$", "", lines[0]).strip() or lines[0]
    if len(lines) > 1 and len(first) <= _HEADING_MAX_CHARS:
        return first
    spans = split_sentences(first)
    sentence = first[spans[0].start : spans[0].end] if spans else first
    return _shorten(sentence, _TITLE_MAX_CHARS)


def _shorten(text: str, limit: int) -> str:
    """Cut at a word boundary to at most ``limit`` characters, marking the cut with "…"."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0].rstrip(" ,;:–-")
    return cut + "…"


def is_pattern(path: Path) -> bool:
    """A path that is no file or folder but a glob pattern ("corpus/*.txt", quoted so the shell left it)."""
    return not path.exists() and _GLOB.search(str(path)) is not None


def _expand(paths: Iterable[Path], skipped: list[tuple[Path, str]]) -> Iterator[Path]:
    for path in map(Path, paths):
        if path.is_dir():
            yield from _folder_files(path, skipped)
        elif path.exists():
            yield path  # named by the user: a symbolic link is followed wherever it leads
        elif path.is_symlink():
            skipped.append((path, f"broken symbolic link (its target {path.readlink()} does not exist)"))
        elif is_pattern(path):  # a pattern the shell did not expand (quoted, or no shell): as it would
            matches = sorted(Path(m) for m in glob.glob(str(path), recursive=True))
            if not matches:
                skipped.append((path, "no file or folder matches this pattern"))
            yield from _expand(matches, skipped)
        else:
            skipped.append((path, "no such file or folder"))


def _folder_files(folder: Path, skipped: list[tuple[Path, str]]) -> list[Path]:
    """Supported, not hidden files below ``folder``, sorted, files before the links to them.

    A symbolic link is followed only to a file inside ``folder``: one leading outside (to
    /etc/passwd, another user's files) is skipped and named, since its text would be quoted
    in answers. Linked folders are not entered. A folder that cannot be listed is named too:
    its files silently missing would look like files deleted (and ``--prune`` removes those).
    """
    root = folder.resolve()
    found: list[Path] = []

    def unreadable(exc: OSError) -> None:
        skipped.append((Path(exc.filename), f"cannot read folder ({exc.strerror or exc}); its files are left out"))

    for top, dirs, files in os.walk(folder, onerror=unreadable):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for p in sorted(Path(top) / name for name in (*dirs, *files) if not name.startswith(".")):
            if p.is_symlink() and (p.is_dir() or p.suffix.lower() in SUPPORTED_SUFFIXES):
                target = p.resolve()
                if not target.is_relative_to(root):
                    skipped.append((p, f"symbolic link to {target}, outside {folder}; not followed"))
                    continue
                if not target.exists():
                    skipped.append((p, f"broken symbolic link (its target {target} does not exist)"))
                    continue
            if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES:
                found.append(p)
    # A link and its target are one document (load_documents reads it once), under the file's own name.
    return sorted(found, key=lambda p: (p.is_symlink(), p))


def _decode(data: bytes) -> str:
    """Decode text bytes: UTF-8 (with or without BOM), UTF-16 with BOM, else Windows-1252.

    Windows-1252 is the legacy encoding of German text on the web and on Windows, and
    a superset of Latin-1's printable characters; strict decoding fails on its five
    undefined bytes, and text full of control characters is treated as binary.
    """
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return _check_not_binary(data.decode("utf-16"))
        except UnicodeDecodeError as exc:
            raise DocumentError(f"invalid UTF-16 text ({exc.reason})") from exc
    if b"\x00" in data[:8192]:
        raise DocumentError("binary file (contains NUL bytes), not text")
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return _check_not_binary(data.decode(encoding))
        except UnicodeDecodeError:
            continue
    raise DocumentError("cannot decode text as UTF-8 or Windows-1252; save it as UTF-8")


def _check_not_binary(text: str) -> str:
    controls = len(_CONTROL.findall(text))
    if controls > _MAX_CONTROL_SHARE * len(text):
        raise DocumentError(f"binary file ({controls} control characters), not text")
    return text


def _html_text(html: str | LexborHTMLParser) -> str:
    """Visible text of the page's article: the longest <article>, else <main>, else <body>.

    Headings, paragraphs and list items become lines; whitespace inside a line is
    collapsed as a browser would.

    >>> _html_text("<nav>Menü</nav><article><h1>Titel</h1><p>Ein <b>Satz</b>.</p></article>")
    'Titel\\nEin Satz.'
    """
    tree = LexborHTMLParser(html) if isinstance(html, str) else html
    # Innermost first, so no node is removed after an ancestor already took it away.
    for node in reversed(tree.css(_INVISIBLE_TAGS)):
        node.decompose()
    for node in reversed(tree.css("[style]")):
        if re.search(r"display\s*:\s*none|visibility\s*:\s*hidden", node.attributes.get("style") or ""):
            node.decompose()
    articles = tree.css("article")
    root = (
        max(articles, key=lambda node: len(node.text(deep=True)))
        if articles
        else tree.css_first("main, [role=main]") or tree.body or tree.root
    )
    if root is None:
        return ""
    pieces: list[str] = []
    stack = [(root, False)]
    while stack:
        node, closing = stack.pop()
        if closing or node.tag == "br":
            pieces.append("\n")
        elif node.tag == "-text":
            # Source line breaks inside text are plain spaces on screen.
            pieces.append(re.sub(r"\s+", " ", node.text(deep=False)))
        elif node.tag not in ("-comment", "_comment"):
            if node.tag in _BLOCK_TAGS:
                pieces.append("\n")
                stack.append((node, True))
            stack.extend((child, False) for child in reversed(list(node.iter(include_text=True))))
    lines = (" ".join(line.split()) for line in "".join(pieces).split("\n"))
    return "\n".join(line for line in lines if line)


def _pdf_text(data: bytes) -> str:
    """The text layer of a PDF, pages separated by a blank line."""
    try:
        reader = PdfReader(io.BytesIO(data))
        # Many PDFs are encrypted only to set permissions and open with an empty password.
        if reader.is_encrypted and not reader.decrypt(""):
            raise DocumentError("PDF is encrypted with a password; save an unencrypted copy")
        pages = [page.extract_text() or "" for page in reader.pages]
    except PyPdfError as exc:
        raise DocumentError(f"cannot read PDF ({exc})") from exc
    # pypdf reports some damaged files with these rather than its own errors.
    except (ValueError, KeyError, TypeError) as exc:
        raise DocumentError(f"damaged PDF ({type(exc).__name__}: {exc})") from exc
    text = "\n\n".join(page.strip() for page in pages if page.strip())
    if not text:
        raise DocumentError("PDF has no text layer (scanned or image-only?); run OCR first")
    return text

"""Article metadata at ingest: title, publication date, author and URL, only where the file states them."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest
from fakes import CONFIG, doc, run

from rag.ingest.clean import clean
from rag.ingest.load import load_document
from rag.ingest.meta import iso_date, text_metadata
from rag.retrieval.files import describe_files
from rag.retrieval.store import current_version, load_index

CORPUS = Path(__file__).resolve().parent.parent / "corpus"
BODY = "DeepSeek trainierte sein Modell R1 mit vergleichsweise wenigen Grafikkarten. " * 4


# ----------------------------------------------------------------------------- the five corpus articles


@pytest.mark.parametrize(
    ("name", "title", "published", "author"),
    [
        # No title line: the first sentence names it (cut), nothing else is stated.
        (
            "000_e6de1ff470927a21.txt",
            "In einem beispiellosen technologischen Kraftakt hat das chinesische KI-Startup DeepSeek…",
            None,
            None,
        ),
        # Title line, then the date line twice, "3 Minuten Lesezeit"; later dates belong to teasers.
        (
            "001_632e2609b1775729.txt",
            "Chinas KI-Durchbruch: Deepseek stellt Tech-Giganten vor große Fragen",
            "2025-01-28",
            None,
        ),
        (
            "002_a67883e9b2eeb20f.txt",
            "Die Revolution im Bereich Künstlicher Intelligenz hat einen neuen Namen: DeepSeek R1.",
            None,
            None,
        ),
        # Title line, "by Silke Mayr", "0 comments": a byline but no date.
        (
            "003_4a8c9f61d5cf23d7.txt",
            "DeepSeek KI-Modell Kosteneffizienz: Kosteneffizienz und der Weckruf für die US-Tech-Industrie",
            None,
            "Silke Mayr",
        ),
        (
            "004_bf2714fd59e382f3.txt",
            "Der KI-Knaller aus China: Wie DeepSeek die globale KI-Landschaft aufmischt",
            None,
            None,
        ),
    ],
)
def test_corpus_articles(name: str, title: str, published: str | None, author: str | None) -> None:
    d = load_document(CORPUS / name)
    assert (d.title, d.published, d.author, d.url) == (title, published, author, None)
    assert d.text == (CORPUS / name).read_text(encoding="utf-8")  # metadata never changes the text


# ----------------------------------------------------------------------------- plain-text forms


@pytest.mark.parametrize(
    ("line", "published"),
    [
        ("28.01.2025", "2025-01-28"),
        ("28. Januar 2025", "2025-01-28"),
        ("2025-01-28", "2025-01-28"),
        ("Veröffentlicht am 28.01.2025, 10:15 Uhr", "2025-01-28"),
        ("January 28, 2025", "2025-01-28"),
        ("3. März 2024 · 4 Min. Lesezeit", "2024-03-03"),
        ("Aktualisiert am 30.01.2025", None),  # a change, not the publication
        ("Januar 2025", None),  # no day: not a date to file under
        ("31.02.2025", None),
        ("Am 27.01.2025 verlor Nvidia an einem einzigen Tag fast 600 Milliarden Dollar an Wert.", None),
    ],
)
def test_date_line_in_the_head(line: str, published: str | None) -> None:
    assert text_metadata(f"Titel\n\n{line}\n{BODY}").published == published


def test_a_date_after_the_first_paragraph_is_not_the_articles() -> None:
    assert text_metadata(f"Titel\n{BODY}\n23.02.2024\n").published is None


@pytest.mark.parametrize(
    ("line", "author"),
    [
        ("by Silke Mayr", "Silke Mayr"),
        ("Von Max Muster", "Max Muster"),
        ("Autorin: Jana Beispiel", "Jana Beispiel"),
        ("Von Max Muster, dpa", "Max Muster"),
        ("Von Max Muster | 28.01.2025", "Max Muster"),
        ("von China lernen", None),  # a heading, not a name
        ("By", None),
    ],
)
def test_byline_in_the_head(line: str, author: str | None) -> None:
    assert text_metadata(f"Titel\n{line}\n{BODY}").author == author


def test_source_url_labelled_at_the_end_or_alone_in_the_head() -> None:
    assert text_metadata(f"Titel\n{BODY}\nQuelle: https://example.org/r1.\n").url == "https://example.org/r1"
    assert text_metadata(f"Titel\nhttps://example.org/a?id=1\n{BODY}").url == "https://example.org/a?id=1"
    # A URL inside a sentence of the body is something the article cites, not its source.
    assert text_metadata(f"Titel\n{BODY}\nMehr unter https://x.org im Netz.\n{BODY}").url is None


def test_nothing_is_invented_for_a_plain_text(tmp_path: Path) -> None:
    path = tmp_path / "plain.txt"
    path.write_text(BODY, encoding="utf-8")
    d = load_document(path)
    assert (d.published, d.author, d.url) == (None, None, None)


def test_iso_date_forms() -> None:
    assert iso_date("28 Jan 2025") == iso_date("Jan. 28, 2025") == iso_date("28.1.2025") == "2025-01-28"
    assert iso_date("3. Mär. 2024") == "2024-03-03"
    assert iso_date("Tue, 28 Jan 2025 10:00:00 GMT") == "2025-01-28"
    assert iso_date("2025-01") is None and iso_date("heute") is None and iso_date(None) is None


def test_a_year_first_date_keeps_its_month_before_its_day(tmp_path: Path) -> None:
    """dateutil's day-first reading made "2025-05-02" the 5th of February (every test date was the 28th)."""
    assert iso_date("2025-05-02") == iso_date("2025/05/02") == iso_date("02.05.2025") == "2025-05-02"
    assert iso_date("2025-12-01T08:00:00.000Z") == "2025-12-01" and iso_date("2025-13-01") is None
    assert iso_date("20250502") == iso_date("2025 05 02") == "2025-05-02"  # no separator, or spaces (review)
    assert text_metadata(f"Titel\n\n2025-05-02\n{BODY}").published == "2025-05-02"
    html = tmp_path / "a.html"
    html.write_text(PAGE.replace("2025-01-28T06:00:00+01:00", "2025-05-02").format(body=BODY), encoding="utf-8")
    front = tmp_path / "a.md"
    front.write_text(f'---\ndate: "2025-05-02"\n---\n# R1\n{BODY}', encoding="utf-8")
    assert load_document(html).published == load_document(front).published == "2025-05-02"


# ----------------------------------------------------------------------------- Markdown front matter

FRONT = """---
title: "DeepSeek R1: was das Modell kann"
date: 2025-01-28
author:
  - name: Jana Beispiel
  - Max Muster
url: https://example.org/deepseek-r1
tags: [ki]
---
# Eine andere Überschrift

by Someone Else
"""


def test_markdown_front_matter(tmp_path: Path) -> None:
    path = tmp_path / "r1.md"
    path.write_text(FRONT + BODY, encoding="utf-8")
    d = load_document(path)
    assert d.title == "DeepSeek R1: was das Modell kann"
    assert d.published == "2025-01-28"
    assert d.author == "Jana Beispiel, Max Muster"  # front matter wins over the byline below it
    assert d.url == "https://example.org/deepseek-r1"
    assert d.text == FRONT + BODY  # offsets keep counting from the file's first character
    kept = [d.text[s.start : s.end] for s in clean(d.text)]
    assert kept[0] == "# Eine andere Überschrift" and not any("title:" in k or k == "---" for k in kept)


def test_markdown_front_matter_with_a_datetime_and_a_string_date(tmp_path: Path) -> None:
    for value in ("2025-01-28T09:30:00+01:00", "'28.01.2025'"):
        path = tmp_path / "a.md"
        path.write_text(f"---\npublished: {value}\n---\n# R1\n{BODY}", encoding="utf-8")
        d = load_document(path)
        assert (d.title, d.published) == ("R1", "2025-01-28")


def test_markdown_rule_or_broken_yaml_is_no_front_matter(tmp_path: Path) -> None:
    path = tmp_path / "rule.md"
    path.write_text(f"---\n# R1\n\n{BODY}", encoding="utf-8")
    assert load_document(path).title == "R1"
    path.write_text(f"---\ntitle: [unclosed\n---\n# R1\n{BODY}", encoding="utf-8")
    d = load_document(path)
    assert d.published is None and d.author is None


# ----------------------------------------------------------------------------- HTML

PAGE = """<html><head><title>R1 | Beispiel-Zeitung</title>
<meta property="og:title" content="DeepSeek R1 fordert das Silicon Valley heraus">
<meta property="article:published_time" content="2025-01-28T06:00:00+01:00">
<meta name="Author" content="Silke Mayr">
<link rel="canonical" href="https://zeitung.example/r1">
</head><body><header><time datetime="2024-12-01">1. Dezember</time></header>
<article><h1>DeepSeek R1</h1><p>{body}</p></article></body></html>"""


def test_html_meta_tags(tmp_path: Path) -> None:
    path = tmp_path / "r1.html"
    path.write_text(PAGE.format(body=BODY), encoding="utf-8")
    d = load_document(path)
    assert (d.title, d.published, d.author, d.url) == (
        "DeepSeek R1 fordert das Silicon Valley heraus",
        "2025-01-28",
        "Silke Mayr",
        "https://zeitung.example/r1",
    )
    assert d.text.startswith("DeepSeek R1\n")  # the text is still only the visible article


def test_html_json_ld_then_time_and_h1(tmp_path: Path) -> None:
    ld = {
        "@context": "https://schema.org",
        "@graph": [
            {"@type": "WebSite", "name": "Beispiel"},
            {
                "@type": "NewsArticle",
                "datePublished": "2025-01-29",
                "author": [{"@type": "Person", "name": "Max Muster"}],
            },
        ],
    }
    page = (
        f'<html><head><script type="application/ld+json">{json.dumps(ld)}</script></head><body>'
        f'<article><h1>Die Überschrift</h1><time datetime="2025-01-30">30.01.</time><p>{BODY}</p></article>'
        "</body></html>"
    )
    path = tmp_path / "ld.html"
    path.write_text(page, encoding="utf-8")
    d = load_document(path)
    assert (d.title, d.published, d.author, d.url) == ("Die Überschrift", "2025-01-29", "Max Muster", None)
    path.write_text(page.replace(json.dumps(ld), "{not json"), encoding="utf-8")
    d = load_document(path)
    assert (d.published, d.author) == ("2025-01-30", None)  # the <time> element; no author stated


def test_html_author_profile_url_is_no_name(tmp_path: Path) -> None:
    path = tmp_path / "p.html"
    path.write_text(
        f'<head><meta property="article:author" content="https://fb.com/x"></head><p>{BODY}</p>', encoding="utf-8"
    )
    assert load_document(path).author is None


# ----------------------------------------------------------------------------- the index


def test_metadata_in_manifest_documents_and_chunks(tmp_path: Path) -> None:
    d = load_document(CORPUS / "001_632e2609b1775729.txt")
    run(tmp_path, [d])
    index = load_index(tmp_path, CONFIG)
    entry = index.manifest["documents"][d.doc_id]
    assert (entry["title"], entry["published"], entry["author"], entry["url"]) == (d.title, "2025-01-28", None, None)
    assert index.documents[d.doc_id] == d
    assert {c.published for c in index.chunks} == {"2025-01-28"}
    assert all(d.text[c.start : c.end] == c.text for c in index.chunks)


def test_index_built_before_metadata_loads_with_empty_fields_and_is_rebuilt(tmp_path: Path) -> None:
    old = doc("a.txt", "Titel\n28.01.2025\nDeepSeek nutzte 2.048 GPUs.")
    run(tmp_path, [old])
    version = current_version(tmp_path)
    assert version is not None
    # Write the version as an older program did: no metadata fields anywhere.
    for name in ("documents.jsonl", "chunks.jsonl"):
        rows = [json.loads(line) for line in (version / name).read_text().splitlines()]
        for row in rows:
            for key in ("published", "author", "url"):
                row.pop(key)
        (version / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    manifest = json.loads((version / "manifest.json").read_text())
    del manifest["chunker"]["metadata"]
    for entry in manifest["documents"].values():
        for key in ("published", "author", "url"):
            entry.pop(key)
    manifest["files"] = describe_files(version)
    (version / "manifest.json").write_text(json.dumps(manifest))

    index = load_index(tmp_path, CONFIG)
    assert index.documents["a.txt"].published is None and index.chunks[0].published is None
    dated = doc("a.txt", old.text)
    dated = type(dated)(**{**asdict(dated), "published": "2025-01-28"})
    report = run(tmp_path, [dated])  # same content hash, but the next `rag index` redoes every document
    assert report.embedded_chunks == len(index.chunks)
    assert load_index(tmp_path, CONFIG).chunks[0].published == "2025-01-28"


def test_a_date_read_differently_by_a_newer_program_is_corrected_by_the_next_index(tmp_path: Path) -> None:
    """Same text, another date (an older program read "2025-05-02" day first): the article is indexed again with
    the date read now, its chunks too; an article whose text and metadata are the same stays as it is."""
    wrong = type(doc("a.txt", BODY))(**{**asdict(doc("a.txt", BODY)), "published": "2025-02-05"})
    other = doc("b.txt", "Titel\n\nNvidia verlor 600 Milliarden Dollar an einem Tag.")
    run(tmp_path, [wrong, other])
    right = type(wrong)(**{**asdict(wrong), "published": "2025-05-02"})
    report = run(tmp_path, [right, other])
    assert report.changed == ["a.txt"] and report.unchanged == ["b.txt"]
    index = load_index(tmp_path, CONFIG)
    assert index.documents["a.txt"].published == "2025-05-02"
    assert {c.published for c in index.chunks if c.doc_id == "a.txt"} == {"2025-05-02"}
    assert run(tmp_path, [right, other]).nothing_to_do

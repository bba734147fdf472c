"""The chat page at `/` in a real headless Chromium, against the app served by uvicorn with fake models.

Needs Debian's browser and its driver (a test tool's own browser download does not work offline):

    apt-get update && apt-get install -y chromium chromium-driver

and `selenium` from PyPI, which drives /usr/bin/chromedriver given by path (so Selenium Manager never
downloads anything). Skipped when /usr/bin/chromium is absent. Leaves a screenshot in
eval/reports/web-ui.png.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from fakes import FakeGenerator, fake_answerer
from live import WAIT_S, serve

from rag.answer.pipeline import AnswerSettings
from rag.wiring import Answerer

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
APT = "apt-get update && apt-get install -y chromium chromium-driver"
SCREENSHOT = ROOT / "eval" / "reports" / "web-ui.png"
WIDE, NARROW = (1280, 860), (390, 800)

# ----------------------------------------------------------------------------- browser and server


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    if not CHROMIUM.is_file():
        pytest.skip(f"no {CHROMIUM} for the browser test; install it with `{APT}`")
    if not CHROMEDRIVER.is_file():
        pytest.fail(f"{CHROMIUM} is there but {CHROMEDRIVER} is not; install it with `{APT}`")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.options import Options
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.fail("the browser test needs selenium: pip install 'selenium>=4.20,<5' (dev dependency)")

    options = Options()
    options.binary_location = str(CHROMIUM)
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--force-prefers-reduced-motion",
        "--lang=en-US",
        f"--window-size={WIDE[0]},{WIDE[1]}",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # The driver by path: Selenium Manager (which would download a browser) is never asked.
    service = Service(executable_path=str(CHROMEDRIVER), log_output=os.devnull)
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(WAIT_S)
    try:
        yield driver
    finally:
        driver.quit()


def open_page(driver: Any, url: str, size: tuple[int, int] = WIDE) -> None:
    driver.set_window_size(*size)
    driver.get(f"{url}/")
    driver.execute_script("localStorage.clear()")
    driver.get(f"{url}/")
    driver.get_log("browser")  # start each page with an empty console record
    # Record every state each answer passes through (waiting -> streaming -> final | error).
    driver.execute_script(
        """
        window.__states = [];
        new MutationObserver((ms) => ms.forEach((m) => {
          if (m.type === 'attributes') window.__states.push(m.target.dataset.state);
          m.addedNodes.forEach((n) => n.dataset && n.dataset.state && window.__states.push(n.dataset.state));
        })).observe(document.getElementById('log'), {subtree: true, childList: true, attributes: true,
                                                    attributeFilter: ['data-state']});
        """
    )


def wait_for(driver: Any, condition: Callable[[Any], Any], what: str, wait_s: float = WAIT_S) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, wait_s, poll_frequency=0.05).until(condition, message=f"timed out waiting for {what}")


def ask(driver: Any, question: str, wait_s: float = WAIT_S) -> Any:
    """Type a question, press the button, wait until its answer is final (or failed); return the turn."""
    from selenium.webdriver.common.by import By

    before = len(driver.find_elements(By.CSS_SELECTOR, ".turn"))
    box = driver.find_element(By.ID, "question")
    box.clear()
    box.send_keys(question)
    driver.find_element(By.ID, "ask").click()

    def finished(d: Any) -> Any:
        turns = d.find_elements(By.CSS_SELECTOR, ".turn")
        return len(turns) > before and turns[-1].get_attribute("data-state") in ("final", "error") and turns[-1]

    return wait_for(driver, finished, f"the answer to {question!r}", wait_s)


def latest_answer(driver: Any) -> Any:
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, ".answer")[-1]


def text_content(driver: Any, element: Any) -> str:
    return str(driver.execute_script("return arguments[0].textContent", element))


def open_first_citation(driver: Any, turn: Any) -> Any:
    """Click the first [n] of an answer; return the <mark> once the article is in the panel."""
    from selenium.webdriver.common.by import By

    cite = turn.find_elements(By.CSS_SELECTOR, ".answer .cite")[0]
    cite.click()
    return wait_for(
        driver,
        lambda d: (m := d.find_elements(By.CSS_SELECTOR, "#doc-panel mark")) and m[0].is_displayed() and m[0],
        "the cited article in #doc-panel",
    )


def mark_in_view(driver: Any) -> bool:
    return bool(
        driver.execute_script(
            """
            const mark = document.querySelector('#doc-panel mark').getBoundingClientRect();
            const box = document.getElementById('doc-text').getBoundingClientRect();
            return mark.top >= box.top - 1 && mark.bottom <= box.bottom + 1 && mark.height > 0;
            """
        )
    )


def console_errors(driver: Any) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def reference(url: str, question: str, history: list[dict[str, str]] | None = None) -> dict[str, Any]:
    """The same question through the JSON API (the fakes are deterministic)."""
    r = httpx.post(f"{url}/v1/ask", json={"question": question, "history": history or []}, timeout=WAIT_S)
    assert r.status_code == 200, r.text
    return dict(r.json())


# ----------------------------------------------------------------------------- tests


def test_page_is_self_contained() -> None:
    page = (ROOT / "rag" / "serve" / "web" / "index.html").read_text(encoding="utf-8")
    for external in ('src="http', "src='http", 'href="http', "href='http", "@import", "url(http", 'src="//'):
        assert external not in page
    assert "innerHTML" not in page and "insertAdjacentHTML" not in page and "document.write" not in page


def test_german_question_streams_cites_and_opens_the_article(browser, app_settings) -> None:
    from selenium.webdriver.common.by import By

    question = "Wie viele GPUs nutzte DeepSeek?"
    with serve(app_settings, fake_answerer) as url:
        expected = reference(url, question)
        citation = expected["citations"][0]
        article = httpx.get(f"{url}/v1/documents/{citation['doc_id']}").json()["text"]

        open_page(browser, url)
        assert browser.title and browser.find_element(By.ID, "doc-panel").is_displayed() is False
        turn = ask(browser, question)

        assert turn.get_attribute("data-state") == "final"
        states = browser.execute_script("return window.__states")
        assert "streaming" in states and states.index("streaming") < states.index("final"), states
        answer = latest_answer(browser)
        assert "2.048" in answer.text and answer.get_attribute("lang") == "de"
        assert text_content(browser, answer) == expected["text"]  # the checked text replaced the draft
        cites = turn.find_elements(By.CSS_SELECTOR, ".answer .cite")
        assert [c.get_attribute("data-number") for c in cites] == ["1"] and cites[0].tag_name == "button"
        assert not turn.find_elements(By.CSS_SELECTOR, ".refusal")
        sources = browser.find_element(By.ID, "sources")
        assert citation["doc_id"] in sources.text and citation["quote"] in sources.text
        timings = turn.find_element(By.CSS_SELECTOR, ".timings").text
        assert "erster Satz" in timings and "gesamt" in timings

        mark = open_first_citation(browser, turn)
        assert browser.find_element(By.ID, "doc-panel").is_displayed()
        assert text_content(browser, mark) == citation["quote"]
        panel_text = text_content(browser, browser.find_element(By.ID, "doc-text"))
        assert panel_text == article and citation["quote"] in article
        before = browser.execute_script(
            "const m = document.querySelector('#doc-panel mark');"
            "const r = document.createRange(); r.setStart(document.getElementById('doc-text'), 0);"
            "r.setEndBefore(m); return r.toString().length;"
        )
        assert before == citation["start"] and article[citation["start"] : citation["end"]] == citation["quote"]
        assert wait_for(browser, lambda d: mark_in_view(d), "the highlight scrolled into view")

        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        assert browser.save_screenshot(str(SCREENSHOT)) and SCREENSHOT.stat().st_size > 10_000
        assert console_errors(browser) == []


def test_english_follow_up_sends_history_and_fits_a_narrow_window(browser, app_settings) -> None:
    from selenium.webdriver.common.by import By

    seen: list[list[dict[str, str]]] = []

    class Recording(Answerer):
        def __call__(self, question: str, **kwargs: Any) -> Any:
            seen.append(list(kwargs.get("history") or []))
            return super().__call__(question, **kwargs)

    def build(settings: Any) -> Answerer:
        plain = fake_answerer(settings)
        return Recording(**{f.name: getattr(plain, f.name) for f in fields(plain)})

    first_q, second_q = "How many GPUs did DeepSeek use?", "Where is the seat in Hangzhou?"
    with serve(app_settings, build) as url:
        first = reference(url, first_q)
        second = reference(
            url,
            second_q,
            [{"role": "user", "content": first_q}, {"role": "assistant", "content": first["text"]}],
        )
        seen.clear()

        open_page(browser, url, NARROW)
        try:
            turn = ask(browser, first_q)
            assert turn.get_attribute("data-state") == "final"
            assert "2.048" in latest_answer(browser).text and latest_answer(browser).get_attribute("lang") == "en"
            assert turn.find_element(By.CSS_SELECTOR, ".sources h3").text.lower() == "sources"
            assert "first sentence" in turn.find_element(By.CSS_SELECTOR, ".timings").text

            turn = ask(browser, second_q)
            assert text_content(browser, latest_answer(browser)) == second["text"]
            assert len(browser.find_elements(By.CSS_SELECTOR, ".turn")) == 2
            # The follow-up went out with the first exchange as history.
            assert seen == [
                [],
                [{"role": "user", "content": first_q}, {"role": "assistant", "content": first["text"]}],
            ]

            # Narrow window: nothing overflows sideways, and the article covers the chat.
            assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
            mark = open_first_citation(browser, turn)
            assert text_content(browser, mark) == second["citations"][0]["quote"]
            panel = browser.find_element(By.ID, "doc-panel")
            width = browser.execute_script("return window.innerWidth")
            assert panel.rect["width"] >= width - 2 and panel.rect["x"] <= 1
            browser.find_element(By.ID, "doc-close").click()
            wait_for(browser, lambda d: not d.find_element(By.ID, "doc-panel").is_displayed(), "the panel to close")
            assert console_errors(browser) == []
        finally:
            browser.set_window_size(*WIDE)


def test_refusal_is_shown_apart(browser, app_settings) -> None:
    from selenium.webdriver.common.by import By

    def strict_gate(settings: Any) -> Answerer:
        return replace(fake_answerer(settings), settings=AnswerSettings(min_dense_score=0.99))

    question = "Wie viele GPUs nutzte DeepSeek?"
    with serve(app_settings, strict_gate) as url:
        expected = reference(url, question)
        assert expected["refused"]
        open_page(browser, url)
        turn = ask(browser, question)
        assert turn.get_attribute("data-state") == "final" and "refused" in turn.get_attribute("class")
        badge = turn.find_element(By.CSS_SELECTOR, ".refusal")
        assert badge.is_displayed() and "keine antwort" in badge.text.lower()
        assert text_content(browser, latest_answer(browser)) == expected["text"]
        assert not turn.find_elements(By.CSS_SELECTOR, ".cite") and not browser.find_elements(By.ID, "sources")
        assert console_errors(browser) == []


def test_api_key_errors_are_shown_and_the_key_is_kept(browser, app_settings) -> None:
    from selenium.webdriver.common.by import By

    secured = app_settings.model_copy(update={"api_key": "s3cret"})
    with serve(secured, fake_answerer) as url:
        open_page(browser, url)
        turn = ask(browser, "Wie viele GPUs nutzte DeepSeek?")
        assert turn.get_attribute("data-state") == "error"
        error = turn.find_element(By.CSS_SELECTOR, ".error").text
        assert "401" in error and "API key" in error

        browser.find_element(By.CSS_SELECTOR, "#settings summary").click()
        browser.find_element(By.ID, "api-key").send_keys("s3cret")
        turn = ask(browser, "Wie viele GPUs nutzte DeepSeek?")
        assert turn.get_attribute("data-state") == "final" and "2.048" in latest_answer(browser).text
        open_first_citation(browser, turn)  # the article request carries the key too
        assert browser.execute_script("return localStorage.getItem('rag.apiKey')") == "s3cret"
        browser.refresh()
        assert browser.find_element(By.ID, "api-key").get_attribute("value") == "s3cret"


def test_article_and_answer_text_never_become_html(browser, app_settings) -> None:
    from selenium.webdriver.common.by import By

    from rag import wiring
    from rag.ingest.load import load_documents

    evil = '<img src=x onerror="window.__pwned=1">'
    filler = "\n\n".join(f"Absatz {i} erzählt vom Wetter, vom Sport und von Musik im Sommer." for i in range(120))
    target = f"Zhipu trainierte <b>GLM</b> mit 777 Beschleunigern {evil}."
    (app_settings.corpus_dir / "zhipu.txt").write_text(f"Bericht {evil} über Zhipu\n\n{filler}\n\n{target}\n")
    docs, _ = load_documents([app_settings.corpus_dir])
    wiring.index_documents(app_settings, docs)
    reply = f"Zhipu trainierte <b>GLM</b> mit 777 Beschleunigern {evil} [1]."

    def scripted(settings: Any) -> Answerer:
        return replace(fake_answerer(settings), generator=FakeGenerator(script=[reply, reply]))

    question = "Womit trainierte Zhipu GLM? 777 Beschleuniger"
    with serve(app_settings, scripted) as url:
        expected = reference(url, question)
        citation = expected["citations"][0]
        assert citation["doc_id"] == "zhipu.txt" and citation["start"] > 2000, json.dumps(citation)
        open_page(browser, url)
        turn = ask(browser, question)
        answer = latest_answer(browser)
        assert "<b>GLM</b>" in answer.text and not answer.find_elements(By.CSS_SELECTOR, "b, img")
        mark = open_first_citation(browser, turn)
        assert text_content(browser, mark) == citation["quote"] and "<b>GLM</b>" in citation["quote"]
        assert not browser.find_elements(By.CSS_SELECTOR, "#doc-panel img, #doc-panel b, #doc-panel script")
        assert "<img" in browser.find_element(By.ID, "doc-title").text + text_content(
            browser, browser.find_element(By.ID, "doc-text")
        )
        # The quote sits far down a long article: the panel scrolled to it.
        assert wait_for(browser, lambda d: mark_in_view(d), "the highlight scrolled into view")
        assert browser.execute_script("return document.getElementById('doc-text').scrollTop") > 0
        assert browser.execute_script("return window.__pwned") is None
        assert console_errors(browser) == []


STUB_FETCH = """
const [body, chunkBytes] = arguments;
const realFetch = window.__realFetch || (window.__realFetch = window.fetch.bind(window));
window.__requests = [];
window.fetch = async (url, init) => {
  if (url !== '/v1/ask') return realFetch(url, init);
  window.__requests.push({headers: init.headers, body: JSON.parse(init.body)});
  const bytes = new TextEncoder().encode(body);
  const stream = new ReadableStream({start(c) {
    for (let i = 0; i < bytes.length; i += chunkBytes) c.enqueue(bytes.slice(i, i + chunkBytes));
    c.close();
  }});
  return new Response(stream, {status: 200, headers: {'content-type': 'text/event-stream'}});
};
"""


def sse(*events: tuple[str, Any], crlf: bool = False) -> str:
    text = "".join(f"event: {kind}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n" for kind, data in events)
    return text.replace("\n", "\r\n") if crlf else text


def quoted(number: int, doc_id: str, sentence: str) -> dict[str, Any]:
    """A citation of an article's first sentence (the test articles' titles are their first lines)."""
    return {"number": number, "doc_id": doc_id, "title": sentence, "chunk_id": f"{doc_id}#0",
            "start": 0, "end": len(sentence), "quote": sentence}  # fmt: skip


def test_conflicts_unsupported_claims_and_rewrites_are_flagged(browser, app_settings) -> None:
    """Answers the fakes cannot produce, streamed through a stubbed fetch (in 5-byte reads, mid-character)."""
    from selenium.webdriver.common.by import By

    claim = "Das Training kostete nur 5 Dollar."
    final = {
        "text": f"Es waren 2.048 GPUs [1], laut einem Bericht 10.000 GPUs [2][1]. {claim}",
        "lang": "de", "refused": False, "grounded": False,
        "citations": [
            quoted(1, "a.txt", "DeepSeek nutzte 2.048 GPUs."),
            quoted(2, "b.txt", "Nvidia verlor 600 Milliarden Dollar an einem Tag."),
        ],
        "conflicts": ["GPUs: 2.048 [1] gegenüber 10.000 [2]"],
        "unsupported": [claim],
        "rewritten_question": "Wie viele GPUs nutzte DeepSeek für das Training?",
        "timings": {"retrieve": 0.01, "first_token": 0.25, "total": 1.5},
    }  # fmt: skip
    draft = ["Es ", "waren ", "2.048 ", "GPUs ", "[1] ", "— über ", "10.000 ", "[2]."]
    stream = sse(*[("token", {"text": t}) for t in draft], ("answer", final), crlf=True)

    with serve(app_settings, fake_answerer) as url:
        open_page(browser, url)
        browser.execute_script(STUB_FETCH, stream, 5)
        turn = ask(browser, "Und wie viele GPUs?")
        assert turn.get_attribute("data-state") == "final"
        assert "streaming" in browser.execute_script("return window.__states")
        sent = browser.execute_script("return window.__requests[0]")
        assert sent["body"] == {"question": "Und wie viele GPUs?", "history": [], "stream": True}
        assert "Authorization" not in sent["headers"]

        assert text_content(browser, latest_answer(browser)) == final["text"]
        numbers = [c.get_attribute("data-number") for c in turn.find_elements(By.CSS_SELECTOR, ".answer .cite")]
        assert numbers == ["1", "2", "1"]
        assert turn.find_element(By.CSS_SELECTOR, ".claim-unsupported").text == claim
        assert claim in turn.find_element(By.CSS_SELECTOR, ".unsupported-box").text
        conflict = turn.find_element(By.CSS_SELECTOR, ".conflict")
        assert conflict.is_displayed() and "widersprechen" in conflict.text and "10.000 [2]" in conflict.text
        assert turn.find_element(By.CSS_SELECTOR, ".understood").text.endswith(final["rewritten_question"])
        assert turn.find_element(By.CSS_SELECTOR, ".badge.ungrounded").is_displayed()
        assert not turn.find_elements(By.CSS_SELECTOR, ".refusal")
        assert turn.find_element(By.CSS_SELECTOR, ".revised").is_displayed()  # the draft was replaced
        assert turn.find_element(By.CSS_SELECTOR, ".timings").text == "erster Satz 250 ms · gesamt 1.50 s"

        turn.find_elements(By.CSS_SELECTOR, ".answer .cite")[1].click()  # [2]: the other article
        wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#doc-panel mark"), "article b.txt")
        assert (
            text_content(browser, browser.find_element(By.CSS_SELECTOR, "#doc-panel mark"))
            == final["citations"][1]["quote"]
        )
        browser.save_screenshot(str(SCREENSHOT.with_name("web-ui-flags.png")))

        # A failure inside the stream shows its message; the request carried the first exchange as history.
        failing = sse(
            ("token", {"text": "Halb"}),
            ("error", {"error": {"type": "GenerationError", "message": "model crashed"}}),
        )
        browser.execute_script(STUB_FETCH, failing, 64)
        turn = ask(browser, "Noch eine Frage?")
        assert turn.get_attribute("data-state") == "error"
        assert turn.find_element(By.CSS_SELECTOR, ".error").text == "GenerationError: model crashed"
        sent = browser.execute_script("return window.__requests[0]")
        assert sent["body"]["history"] == [
            {"role": "user", "content": "Und wie viele GPUs?"},
            {"role": "assistant", "content": final["text"]},
        ]
        assert console_errors(browser) == []


@pytest.mark.real_models
@pytest.mark.parametrize(
    ("question", "lang", "expected"),
    [
        ("Wie viele GPUs nutzte DeepSeek für das Training von R1?", "de", "2.048"),
        ("Who founded DeepSeek?", "en", "Liang Wenfeng"),
    ],
)
def test_real_models_answer_with_working_citation_links(browser, question, lang, expected) -> None:
    """The default models and the built index (`make index`), as a user sees them; screenshots kept."""
    from selenium.webdriver.common.by import By

    from rag import wiring
    from rag.config import Settings
    from rag.retrieval.store import current_version

    settings = Settings(answer_cache=0)
    if current_version(settings.index_dir) is None:
        pytest.fail(f"no index in {settings.index_dir}; run `make index`", pytrace=False)
    with serve(settings, wiring.answerer, wait_s=300) as url:
        open_page(browser, url)
        turn = ask(browser, question, wait_s=300)
        assert turn.get_attribute("data-state") == "final"
        answer = latest_answer(browser)
        assert expected in answer.text and answer.get_attribute("lang") == lang
        assert not turn.find_elements(By.CSS_SELECTOR, ".refusal")
        sources = browser.find_element(By.ID, "sources").text
        mark = open_first_citation(browser, turn)
        quote = text_content(browser, mark)
        assert quote and quote in sources, "the highlighted span is the quoted source sentence"
        assert quote in text_content(browser, browser.find_element(By.ID, "doc-text"))
        assert wait_for(browser, lambda d: mark_in_view(d), "the highlight scrolled into view")
        shot = SCREENSHOT.with_name(f"web-ui-real-{lang}.png")
        assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
        assert console_errors(browser) == []

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
from contextlib import AbstractContextManager, contextmanager
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
            assert "2,048" in latest_answer(browser).text and latest_answer(browser).get_attribute("lang") == "en"
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


def test_a_reply_cut_at_the_token_limit_is_not_called_a_refusal(browser, app_settings) -> None:
    from selenium.webdriver.common.by import By

    notice = "Die Antwort erreichte ihr Limit von 5 Tokens, bevor ein Satz geprüft werden konnte."
    final = {"text": notice, "lang": "de", "refused": True, "truncated": True, "grounded": True, "citations": []}
    with serve(app_settings, fake_answerer) as url:
        open_page(browser, url)
        browser.execute_script(STUB_FETCH, sse(("token", {"text": notice}), ("answer", final)), 64)
        turn = ask(browser, "Wie viele GPUs nutzte DeepSeek?")
        assert turn.get_attribute("data-state") == "final"
        assert not turn.find_elements(By.CSS_SELECTOR, ".badge.refusal")
        assert "token-limit" in turn.find_element(By.CSS_SELECTOR, ".badge").text.lower()
        assert text_content(browser, latest_answer(browser)) == notice


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
const [body, chunkBytes, path] = arguments;
const realFetch = window.__realFetch || (window.__realFetch = window.fetch.bind(window));
window.__requests = [];
window.fetch = async (url, init) => {
  if (url !== (path || '/v1/ask')) return realFetch(url, init);
  window.__requests.push({url, headers: init.headers, body: JSON.parse(init.body)});
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
        "conflicts": ["GPUs: 2.048 [1] gegenüber 10.000 [3]"],
        "conflict_sources": [quoted(3, "c.txt", "Es waren 10.000 GPUs.")],  # named only by the note
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
        assert conflict.is_displayed() and "widersprechen" in conflict.text and "10.000 [3]" in conflict.text
        assert [b.text for b in conflict.find_elements(By.CSS_SELECTOR, ".cite")] == ["[1]", "[3]"]
        sources = turn.find_elements(By.CSS_SELECTOR, ".sources li")
        assert [s.find_element(By.CSS_SELECTOR, ".source-open").text for s in sources] == ["[1]", "[2]", "[3]"]
        assert "nur im Hinweis oben" in sources[2].text and "nur im Hinweis" not in sources[0].text
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


# ----------------------------------------------------------------------------- documents, filters, a kept chat


def documents_listed(driver: Any, count: int | None = None, wait_s: float = WAIT_S) -> list[Any]:
    """The entries of the documents panel, once the list has loaded (``count`` of them, when given)."""
    from selenium.webdriver.common.by import By

    def loaded(d: Any) -> Any:
        items = d.find_elements(By.CSS_SELECTOR, "#doc-list .doc-item")
        return items if items and (count is None or len(items) == count) else False

    return list(wait_for(driver, loaded, f"{count or 'some'} entries in #doc-list", wait_s))


def entry(driver: Any, doc_id: str) -> Any:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, f'#doc-list .doc-item[data-doc-id="{doc_id}"]')


def panel_text(driver: Any) -> str:
    from selenium.webdriver.common.by import By

    return text_content(driver, driver.find_element(By.ID, "doc-text"))


def upload_rows(driver: Any, states: tuple[str, ...] = ("done", "failed")) -> list[Any]:
    from selenium.webdriver.common.by import By

    rows = driver.find_elements(By.CSS_SELECTOR, "#uploads .upload")
    return [r for r in rows if r.get_attribute("data-state") in states]


DROP = """
const [name, text] = arguments;
const data = new DataTransfer();
data.items.add(new File([text], name, {type: 'text/plain'}));
const zone = document.getElementById('drop');
for (const type of ['dragenter', 'dragover', 'drop'])
  zone.dispatchEvent(new DragEvent(type, {dataTransfer: data, bubbles: true, cancelable: true}));
"""

RECORD_UPLOAD_STATES = """
window.__uploadStates = [];
new MutationObserver((ms) => ms.forEach((m) => window.__uploadStates.push(m.target.dataset.state)))
  .observe(document.getElementById('uploads'), {subtree: true, attributes: true, attributeFilter: ['data-state']});
"""


def test_documents_panel_lists_opens_uploads_and_deletes(browser, app_settings, tmp_path) -> None:
    from selenium.webdriver.common.by import By

    article = "Zhipu baute den Rechner Orion mit 4.096 Chips.\nOrion steht in Peking."
    with serve(app_settings, fake_answerer) as url:
        listed = httpx.get(f"{url}/v1/documents").json()["documents"]
        open_page(browser, url)
        items = documents_listed(browser, 3)
        assert [i.get_attribute("data-doc-id") for i in items] == [d["doc_id"] for d in listed]  # no dates: by name
        assert browser.find_element(By.ID, "docs-count").text == "3"
        b = next(d for d in listed if d["doc_id"] == "b.txt")
        assert entry(browser, "b.txt").find_element(By.CSS_SELECTOR, ".doc-info").text == (
            f"{b['chunks']} chunk{'s' if b['chunks'] != 1 else ''} · b.txt"
        )
        assert entry(browser, "b.txt").find_element(By.CSS_SELECTOR, ".doc-name").text == b["title"]

        # An article from the list: its full text, nothing highlighted.
        entry(browser, "b.txt").find_element(By.CSS_SELECTOR, ".doc-open").click()
        full = httpx.get(f"{url}/v1/documents/b.txt").json()["text"]
        wait_for(browser, lambda d: panel_text(d) == full, "b.txt in the article panel")
        assert not browser.find_elements(By.CSS_SELECTOR, "#doc-panel mark")
        assert "b.txt" in browser.find_element(By.ID, "doc-meta").text
        assert "current" in entry(browser, "b.txt").get_attribute("class")

        # Upload with the button's file input: progress states, then the new entry.
        browser.execute_script(RECORD_UPLOAD_STATES)
        path = tmp_path / "zhipu.txt"
        path.write_text(article, encoding="utf-8")
        browser.find_element(By.ID, "upload-input").send_keys(str(path))
        row = wait_for(browser, lambda d: upload_rows(d) and upload_rows(d)[0], "the upload to finish")
        assert row.get_attribute("data-state") == "done", row.text
        states = browser.execute_script("return window.__uploadStates")
        assert states[0] == "uploading" and states[-1] == "done" and "indexing" in states, states
        assert "added" in row.text and "chunk" in row.text
        documents_listed(browser, 4)
        assert browser.find_element(By.ID, "docs-count").text == "4"
        assert "zhipu.txt" in [d["doc_id"] for d in httpx.get(f"{url}/v1/documents").json()["documents"]]

        # The new article answers and its citation opens it.
        turn = ask(browser, "Wie viele Chips hat der Rechner Orion?")
        assert "4.096" in latest_answer(browser).text
        assert "zhipu.txt" in browser.find_element(By.ID, "sources").text
        mark = open_first_citation(browser, turn)
        assert text_content(browser, mark) in article and panel_text(browser) == article

        # A file the server refuses, dropped on the page: the server's message, as it is.
        refused = httpx.post(f"{url}/v1/documents", files={"file": ("notes.docx", b"Notizen")})
        error = refused.json()["error"]
        browser.execute_script(DROP, "notes.docx", "Notizen")
        row = wait_for(browser, lambda d: upload_rows(d) and upload_rows(d)[-1], "the refused upload")
        assert row.get_attribute("data-state") == "failed"
        shown = row.find_element(By.CSS_SELECTOR, ".error").text
        assert shown == f"{refused.status_code} {error['type']}: {error['message']}"
        assert len(documents_listed(browser)) == 4

        # Delete asks first; "Cancel" keeps the article.
        entry(browser, "zhipu.txt").find_element(By.CSS_SELECTOR, ".doc-delete").click()
        dialog = browser.find_element(By.ID, "confirm-delete")
        assert dialog.is_displayed() and "zhipu.txt" in dialog.text
        browser.find_element(By.ID, "confirm-no").click()
        wait_for(browser, lambda d: not dialog.is_displayed(), "the confirmation to close")
        assert len(documents_listed(browser)) == 4 and httpx.get(f"{url}/v1/documents/zhipu.txt").status_code == 200

        entry(browser, "zhipu.txt").find_element(By.CSS_SELECTOR, ".doc-delete").click()
        browser.find_element(By.ID, "confirm-yes").click()
        documents_listed(browser, 3)
        assert httpx.get(f"{url}/v1/documents/zhipu.txt").status_code == 404
        assert not browser.find_element(By.ID, "doc-panel").is_displayed()  # it showed the deleted article
        assert "Deleted zhipu.txt" in browser.find_element(By.ID, "lib-status").text

        # The next answer no longer cites it.
        turn = ask(browser, "Wie viele Chips hat der Rechner Orion?")
        assert turn.get_attribute("data-state") == "final"
        sources = turn.find_elements(By.CSS_SELECTOR, ".sources")
        assert not sources or "zhipu.txt" not in sources[0].text
        assert [e for e in console_errors(browser) if "notes.docx" not in e and "/v1/documents" not in e] == []


STUB_ROUTES = """
const routes = JSON.parse(%s);
const realFetch = window.fetch.bind(window);
window.fetch = async (url, init) => {
  const route = routes[url];
  if (!route || (init && init.method && init.method !== 'GET')) return realFetch(url, init);
  return new Response(JSON.stringify(route), {status: 200, headers: {'content-type': 'application/json'}});
};
"""


@contextmanager
def page_script(driver: Any, source: str) -> Iterator[None]:
    """`source` run at the start of each page loaded inside the block, removed after it."""
    script = driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": source})["identifier"]
    try:
        yield
    finally:
        driver.execute_cdp_cmd("Page.removeScriptToEvaluateOnNewDocument", {"identifier": script})


def stubbed_routes(driver: Any, routes: dict[str, Any]) -> AbstractContextManager[None]:
    """STUB_ROUTES answering `routes` (path: JSON body) for each page loaded inside the block."""
    return page_script(driver, STUB_ROUTES % json.dumps(json.dumps(routes)))


def test_article_metadata_is_shown_when_present_and_left_out_when_absent(browser, app_settings) -> None:
    """`published`, `author`, `url` (the contract's fields, served here by a stubbed fetch)."""
    from selenium.webdriver.common.by import By

    meta = {"published": "2025-02-01", "author": "Erika Muster", "url": "https://example.org/neu"}
    listing = [
        {"doc_id": "old.txt", "title": "Alter Artikel", "chunks": 1, "tokens": 9, "lang": "de"},
        {"doc_id": "new.txt", "title": "Neuer Artikel", "chunks": 3, "tokens": 90, "lang": "de", **meta},
        {"doc_id": "evil.txt", "title": "Böser Link", "chunks": 2, "tokens": 20, "lang": "de",
         "published": "2025-01-01", "url": "javascript:window.__pwned=1"},
    ]  # fmt: skip
    details = {
        f"/v1/documents/{d['doc_id']}": {k: v for k, v in d.items() if k not in ("chunks", "tokens", "lang")}
        | {"text": f"Text von {d['title']}."}
        for d in listing
    }
    routes = {"/v1/documents": {"documents": listing}, **details}
    with serve(app_settings, fake_answerer) as url, stubbed_routes(browser, routes):
        open_page(browser, url)
        items = documents_listed(browser, 3)
        assert [i.get_attribute("data-doc-id") for i in items] == ["new.txt", "evil.txt", "old.txt"]  # newest first
        info = {i.get_attribute("data-doc-id"): i.find_element(By.CSS_SELECTOR, ".doc-info").text for i in items}
        assert info == {
            "new.txt": "2025-02-01 · Erika Muster · 3 chunks · new.txt",
            "evil.txt": "2025-01-01 · 2 chunks · evil.txt",
            "old.txt": "1 chunk · old.txt",
        }

        entry(browser, "new.txt").find_element(By.CSS_SELECTOR, ".doc-open").click()
        wait_for(browser, lambda d: panel_text(d) == "Text von Neuer Artikel.", "new.txt in the panel")
        assert browser.find_element(By.ID, "doc-title").text == "Neuer Artikel"
        line = browser.find_element(By.CSS_SELECTOR, "#doc-meta .meta-line").text
        assert line == "2025-02-01 · Erika Muster · new.txt · 3 chunks"
        link = browser.find_element(By.ID, "doc-link")
        assert link.get_attribute("href") == meta["url"] and link.get_attribute("target") == "_blank"
        assert "noopener" in link.get_attribute("rel")

        lines = {"old.txt": "old.txt · 1 chunk", "evil.txt": "2025-01-01 · evil.txt · 2 chunks"}
        for doc_id, expected in lines.items():
            entry(browser, doc_id).find_element(By.CSS_SELECTOR, ".doc-open").click()
            text = next(d["text"] for d in details.values() if d["doc_id"] == doc_id)
            wait_for(browser, lambda d, t=text: panel_text(d) == t, f"{doc_id} in the panel")
            assert browser.find_element(By.CSS_SELECTOR, "#doc-meta .meta-line").text == expected
            assert not browser.find_elements(By.ID, "doc-link")  # no address, or not an http(s) one

        # Citations carry the same fields: shown beside the source's title when there.
        answer = {
            "text": "Neu [1], alt [2].", "lang": "de", "refused": False, "grounded": True,
            "citations": [quoted(1, "new.txt", "Text von Neuer Artikel.") | meta,
                          quoted(2, "old.txt", "Text von Alter Artikel.")],
        }  # fmt: skip
        browser.execute_script(STUB_FETCH, sse(("answer", answer)), 64)
        turn = ask(browser, "Was ist neu?")
        sources = turn.find_elements(By.CSS_SELECTOR, ".sources li")
        assert sources[0].find_element(By.CSS_SELECTOR, ".src-meta").text == "2025-02-01 · Erika Muster"
        assert not sources[1].find_elements(By.CSS_SELECTOR, ".src-meta")
        turn.find_elements(By.CSS_SELECTOR, ".answer .cite")[0].click()
        wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#doc-panel mark"), "the cited article")
        assert browser.find_element(By.CSS_SELECTOR, "#doc-meta .meta-line").text.startswith("[1] · 2025-02-01")

        # The filter's document choices show the dates too.
        browser.find_element(By.CSS_SELECTOR, "#filters summary").click()
        labels = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#filter-docs label")]
        assert labels == ["Neuer Artikel · 2025-02-01", "Böser Link · 2025-01-01", "Alter Artikel"]
        assert browser.execute_script("return window.__pwned") is None
        assert console_errors(browser) == []


RECORD_STATUS = """
window.__status = [];
new MutationObserver(() => window.__status.push(document.getElementById('status').textContent))
  .observe(document.getElementById('status'), {subtree: true, childList: true, characterData: true});
"""


def test_the_open_article_is_summarised_into_the_chat(browser, app_settings) -> None:
    """Summarise: part progress while a long article's parts run, then the checked, cited summary as a turn."""
    from selenium.webdriver.common.by import By

    cited = "DeepSeek nutzte 2.048 GPUs [1]. Das Training kostete 5,6 Millionen Dollar [1]."  # a.txt states both

    def build(settings: Any) -> Answerer:
        return fake_answerer(settings, FakeGenerator(script=[cited] * 4))

    with serve(app_settings, build) as url:
        open_page(browser, url)
        documents_listed(browser, 3)
        entry(browser, "a.txt").find_element(By.CSS_SELECTOR, ".doc-open").click()
        wait_for(browser, lambda d: panel_text(d).strip(), "a.txt in the panel")
        title = browser.find_element(By.ID, "doc-title").text  # the test article's first line
        text = f"{title} [1]."
        final = {
            "doc_id": "a.txt", "topic": None, "text": text, "lang": "de", "refused": False, "grounded": True,
            "citations": [quoted(1, "a.txt", title)],
            "parts": [{"number": n, "of": 2, "first": n, "last": n, "text": f"Teil {n} [{n}].", "refused": False}
                      for n in (1, 2)],
            "timings": {"first_shown": 1.25, "total": 3.0},
        }  # fmt: skip
        stream = sse(*[("part", p) for p in final["parts"]], ("token", {"text": text}), ("summary", final))

        browser.execute_script(STUB_FETCH, stream, 7, "/v1/summarize")
        browser.execute_script(RECORD_STATUS)
        browser.find_element(By.ID, "doc-summarize").click()
        wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, '.turn[data-state="final"]'), "the summary")
        turn = browser.find_element(By.CSS_SELECTOR, ".turn")
        assert turn.find_element(By.CSS_SELECTOR, ".q-text").text == f"Summary: {title}"
        assert browser.execute_script("return window.__requests") == [
            {"url": "/v1/summarize", "headers": {"Content-Type": "application/json", "Accept": "text/event-stream"},
             "body": {"doc_id": "a.txt", "stream": True}}
        ]  # fmt: skip
        assert "Part 2 of 2 summarised (passages 2–2) …" in browser.execute_script("return window.__status")
        assert not turn.find_elements(By.CSS_SELECTOR, ".progress")  # progress goes once the summary is there
        assert text_content(browser, latest_answer(browser)) == final["text"]
        assert not turn.find_elements(By.CSS_SELECTOR, ".revised")  # the stream showed the checked text
        turn.find_element(By.CSS_SELECTOR, ".answer .cite").click()
        wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#doc-panel mark"), "the cited sentence")
        assert text_content(browser, browser.find_element(By.CSS_SELECTOR, "#doc-panel mark")) == title

        # Through the real route (fake models): the page shows what the JSON API returns, and keeps it.
        expected = httpx.post(f"{url}/v1/summarize", json={"doc_id": "a.txt"}, timeout=WAIT_S).json()
        assert expected["text"] == cited and not expected["refused"] and expected["citations"][0]["doc_id"] == "a.txt"
        browser.execute_script("window.fetch = window.__realFetch")
        browser.find_element(By.ID, "doc-summarize").click()
        wait_for(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, '.turn[data-state="final"]')) == 2, "again")
        assert text_content(browser, latest_answer(browser)) == cited
        browser.refresh()
        kept = wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, ".turn"), "the kept turns")
        assert [t.find_element(By.CSS_SELECTOR, ".q-text").text for t in kept] == [f"Summary: {title}"] * 2
        assert text_content(browser, latest_answer(browser)) == cited
        assert console_errors(browser) == []


def test_chat_is_kept_across_a_reload_and_new_chat_clears_it(browser, app_settings) -> None:
    from selenium.webdriver.common.by import By

    question = "Wie viele GPUs nutzte DeepSeek?"
    with serve(app_settings, fake_answerer) as url:
        expected = reference(url, question)
        open_page(browser, url)
        ask(browser, question)
        browser.refresh()

        turns = wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, ".turn"), "the kept conversation")
        assert len(turns) == 1 and turns[0].get_attribute("data-state") == "final"
        assert turns[0].find_element(By.CSS_SELECTOR, ".q-text").text == question
        assert text_content(browser, latest_answer(browser)) == expected["text"]
        assert expected["citations"][0]["quote"] in browser.find_element(By.ID, "sources").text
        mark = open_first_citation(browser, turns[0])  # the citations still open their article
        assert text_content(browser, mark) == expected["citations"][0]["quote"]
        stored = json.loads(browser.execute_script("return localStorage.getItem('rag.chat')"))
        assert "passages" not in stored["turns"][0]["result"]  # the bulky part is not kept

        # A follow-up after the reload carries the kept exchange as history.
        browser.execute_script(STUB_FETCH, sse(("answer", {"text": "Ja.", "lang": "de", "refused": False})), 64)
        ask(browser, "Und danach?")
        sent = browser.execute_script("return window.__requests[0]")
        assert sent["body"]["history"] == [
            {"role": "user", "content": question},
            {"role": "assistant", "content": expected["text"]},
        ]

        browser.find_element(By.ID, "new-chat").click()
        assert not browser.find_elements(By.CSS_SELECTOR, ".turn")
        assert browser.execute_script("return localStorage.getItem('rag.chat')") is None
        browser.refresh()
        documents_listed(browser)
        assert not browser.find_elements(By.CSS_SELECTOR, ".turn") and browser.find_element(By.ID, "empty")

        # A damaged record is dropped, not shown or thrown.
        browser.execute_script('localStorage.setItem(\'rag.chat\', \'{"version": 1, "turns": [{"question": 1}]}\')')
        browser.refresh()
        documents_listed(browser)
        assert not browser.find_elements(By.CSS_SELECTOR, ".turn")
        assert browser.execute_script("return localStorage.getItem('rag.chat')") is None
        assert console_errors(browser) == []


def set_date(driver: Any, element_id: str, value: str) -> None:
    driver.execute_script(
        "const e = document.getElementById(arguments[0]); e.value = arguments[1];"
        "e.dispatchEvent(new Event('change', {bubbles: true}));",
        element_id,
        value,
    )


def test_filters_go_out_with_the_question(browser, app_settings) -> None:
    from selenium.webdriver.common.by import By

    with serve(app_settings, fake_answerer) as url:
        open_page(browser, url)
        documents_listed(browser, 3)
        summary = browser.find_element(By.ID, "filter-summary")
        assert summary.text == "Filter: all documents"
        summary.click()
        browser.find_element(By.CSS_SELECTOR, '#filter-docs input[value="c.txt"]').click()
        browser.find_element(By.CSS_SELECTOR, '#filter-docs input[value="a.txt"]').click()
        set_date(browser, "since", "2025-01-27")
        set_date(browser, "until", "2025-01-31")
        assert summary.text == "Filter: 2 documents · since 2025-01-27 · until 2025-01-31"
        assert "active" in browser.find_element(By.ID, "filters").get_attribute("class")

        # The server applies the filter: the fake articles state no dates, so it answers 400 naming the
        # filter, and the page shows that error as it is.
        turn = ask(browser, "Wer gründete DeepSeek?")
        assert turn.get_attribute("data-state") == "error", turn.text
        assert "400 InputError: no indexed document matches the filter" in turn.text
        assert turn.find_element(By.CSS_SELECTOR, ".turn-filter").text == summary.text

        browser.execute_script(STUB_FETCH, sse(("answer", {"text": "Ja.", "lang": "de", "refused": False})), 64)
        ask(browser, "Wer gründete DeepSeek?")
        body = browser.execute_script("return window.__requests[0]")["body"]
        assert body["docs"] == ["a.txt", "c.txt"] and body["since"] == "2025-01-27" and body["until"] == "2025-01-31"

        # Only the fields set are sent.
        browser.find_element(By.CSS_SELECTOR, '#filter-docs input[value="a.txt"]').click()
        browser.find_element(By.CSS_SELECTOR, '#filter-docs input[value="c.txt"]').click()
        set_date(browser, "since", "")
        browser.execute_script(STUB_FETCH, sse(("answer", {"text": "Ja.", "lang": "de", "refused": False})), 64)
        ask(browser, "Wer gründete DeepSeek?")
        body = browser.execute_script("return window.__requests[0]")["body"]
        assert set(body) == {"question", "history", "stream", "until"} and body["until"] == "2025-01-31"

        # A range that ends before it starts is not sent.
        set_date(browser, "since", "2025-02-05")
        browser.execute_script("window.__requests = []")
        browser.find_element(By.ID, "question").send_keys("Noch eine?")
        browser.find_element(By.ID, "ask").click()
        assert "after its last" in browser.find_element(By.ID, "status").text
        assert browser.execute_script("return window.__requests.length") == 0

        browser.find_element(By.ID, "filter-clear").click()
        assert summary.text == "Filter: all documents"
        assert not browser.find_elements(By.CSS_SELECTOR, "#filter-docs input:checked")
        # the browser logs the 400 above as a failed resource; nothing else
        assert [e for e in console_errors(browser) if "status of 400" not in e] == []


def test_the_server_applies_the_fields_the_page_sends(client) -> None:
    """The page sends `docs`, `since`, `until`: answers cite only the chosen documents; dates no article states
    are a 400 naming the filter."""
    r = client.post("/v1/ask", json={"question": "Wie viele GPUs nutzte DeepSeek?", "docs": ["a.txt"]})
    assert r.status_code == 200, r.text
    assert {c["doc_id"] for c in r.json()["citations"]} <= {"a.txt"}
    dated = {"docs": ["a.txt"], "since": "2025-01-01", "until": "2025-12-31"}
    for path, body in (
        ("/v1/ask", {"question": "GPUs?"}),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "GPUs?"}]}),
    ):
        r = client.post(path, json={**body, **dated})
        assert r.status_code == 400 and "no indexed document matches the filter" in r.text, r.text


UPLOADED = (
    "Forschungsschiff Polarlicht entdeckt Tiefseekoralle vor Grönland\n\n"
    "Kiel. Das Forschungsschiff Polarlicht des Kieler Meeresinstituts hat vor der Küste Grönlands eine bislang "
    "unbekannte Tiefseekoralle entdeckt. Die Expedition fand die Koralle in 3.417 Metern Tiefe. "
    "Die Leiterin der Expedition, Henrike Saalfeld, gab der Art den Namen Corallium borealis. "
    "Die Fahrt dauerte 41 Tage und endete am Montag in Kiel.\n"
)


@pytest.mark.real_models
def test_real_models_upload_ask_cite_and_delete(browser, tmp_path) -> None:
    """Upload an article with a fact no other holds, ask, open the citation; delete it, ask again.

    Works on copies of the corpus and the built index (`make index`): the test adds and removes a file.
    Leaves screenshots in eval/reports/ (web-ui-documents.png, web-ui-upload-answer.png, web-ui-summary.png).
    """
    import shutil

    from selenium.webdriver.common.by import By

    from rag import wiring
    from rag.config import Settings
    from rag.retrieval.store import current_version

    built = Settings(answer_cache=0)
    if current_version(built.index_dir) is None:
        pytest.fail(f"no index in {built.index_dir}; run `make index`", pytrace=False)
    shutil.copytree(built.corpus_dir, tmp_path / "corpus")
    shutil.copytree(built.index_dir, tmp_path / "index")
    settings = built.model_copy(update={"corpus_dir": tmp_path / "corpus", "index_dir": tmp_path / "index"})
    article = tmp_path / "polarlicht.txt"
    article.write_text(UPLOADED, encoding="utf-8")
    question = "In welcher Tiefe fand das Forschungsschiff Polarlicht die Koralle?"

    with serve(settings, wiring.answerer, wait_s=600) as url:  # loading is slow on a busy machine
        before = len(httpx.get(f"{url}/v1/documents").json()["documents"])
        open_page(browser, url)
        documents_listed(browser, before)
        browser.find_element(By.ID, "upload-input").send_keys(str(article))
        row = wait_for(browser, lambda d: upload_rows(d) and upload_rows(d)[0], "the upload to be indexed", 300)
        assert row.get_attribute("data-state") == "done", row.text
        documents_listed(browser, before + 1, wait_s=60)
        entry(browser, "polarlicht.txt").find_element(By.CSS_SELECTOR, ".doc-open").click()
        wait_for(browser, lambda d: panel_text(d) == UPLOADED, "the uploaded article in the panel")
        assert browser.find_element(By.ID, "doc-title").text.startswith("Forschungsschiff Polarlicht")
        shot = SCREENSHOT.with_name("web-ui-documents.png")
        assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
        browser.find_element(By.ID, "doc-close").click()

        turn = ask(browser, question, wait_s=600)
        assert turn.get_attribute("data-state") == "final"
        assert "3.417" in latest_answer(browser).text, latest_answer(browser).text
        cited = [c["doc_id"] for c in json.loads(browser.execute_script("return localStorage.getItem('rag.chat')"))[
            "turns"][-1]["result"]["citations"]]  # fmt: skip
        assert "polarlicht.txt" in cited
        number = cited.index("polarlicht.txt")
        turn.find_elements(By.CSS_SELECTOR, ".sources .source-open")[number].click()
        mark = wait_for(browser, lambda d: (m := d.find_elements(By.CSS_SELECTOR, "#doc-panel mark")) and m[0], "mark")
        assert text_content(browser, mark) in UPLOADED and panel_text(browser) == UPLOADED
        shot = SCREENSHOT.with_name("web-ui-upload-answer.png")
        assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000

        # The open article's summary: a turn of the chat, every sentence citing the article.
        browser.find_element(By.ID, "doc-summarize").click()
        wait_for(
            browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, '.turn[data-state="final"]')) == 2, "summary", 600
        )
        summary = json.loads(browser.execute_script("return localStorage.getItem('rag.chat')"))["turns"][-1]
        assert summary["summary"] == "polarlicht.txt" and not summary["result"]["refused"], summary
        assert {c["doc_id"] for c in summary["result"]["citations"]} == {"polarlicht.txt"}
        assert text_content(browser, latest_answer(browser)) == summary["result"]["text"]
        shot = SCREENSHOT.with_name("web-ui-summary.png")
        assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000

        entry(browser, "polarlicht.txt").find_element(By.CSS_SELECTOR, ".doc-delete").click()
        browser.find_element(By.ID, "confirm-yes").click()
        documents_listed(browser, before, wait_s=300)  # the index is rewritten without it
        assert not (tmp_path / "corpus" / "polarlicht.txt").exists()

        turn = ask(browser, question, wait_s=600)
        assert turn.get_attribute("data-state") == "final"
        stored = json.loads(browser.execute_script("return localStorage.getItem('rag.chat')"))["turns"][-1]
        assert "polarlicht.txt" not in [c["doc_id"] for c in stored["result"]["citations"]]
        sources = turn.find_elements(By.CSS_SELECTOR, ".sources")
        assert not sources or "polarlicht.txt" not in sources[0].text
        assert console_errors(browser) == []

"""The chat page's states a user runs into, in headless Chromium against the fake-model app.

The focus after "Ask" and "Stop", around the article panel and after a delete, a question that got no answer
kept in the box, Retry-After on any status (its wait counted down, and stopped by the next question or "New
chat"), a final event the page cannot read, the live region while an answer streams, the contrast of key text
in both colour schemes, titles with a right-to-left override, a delete while the service is gone or refused
for a while (its wait counted down, and stopped by the next delete), a documents
list that failed to load read again (its wait counted down), one list request per typed API key, the filter's
boxes keeping the focus when the list is read again, progress events the page cannot read, and the `#sources`
id after a final event that could not be drawn. The browser and the helpers are those of `test_web_ui.py`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from email.utils import formatdate
from typing import Any

import pytest
import test_web_ui
from fakes import fake_answerer
from live import WAIT_S, serve
from test_web_ui import (
    DROP,
    NARROW,
    RECORD_STATUS,
    STUB_FETCH,
    WIDE,
    ask,
    documents_listed,
    entry,
    open_page,
    page_script,
    panel_text,
    quoted,
    sse,
    stubbed_routes,
    upload_rows,
    wait_for,
)

pytestmark = pytest.mark.browser
browser = test_web_ui.browser  # the module-scoped Chromium fixture

QUESTION = "Wie viele GPUs nutzte DeepSeek?"

# A stream that sends `head`, then holds the connection open until window.__release(rest) or the page aborts.
HOLD_FETCH = """
const [path, head] = arguments;
const realFetch = window.__realFetch || (window.__realFetch = window.fetch.bind(window));
window.__release = null;
window.fetch = async (url, init) => {
  if (url !== path) return realFetch(url, init);
  const encode = (text) => new TextEncoder().encode(text);
  const stream = new ReadableStream({start(c) {
    c.enqueue(encode(head));
    window.__release = (rest) => { c.enqueue(encode(rest)); c.close(); };
    init.signal.addEventListener('abort', () => c.error(new DOMException('aborted', 'AbortError')));
  }});
  return new Response(stream, {status: 200, headers: {'content-type': 'text/event-stream'}});
};
"""

# A plain error response for every POST to `path`.
STUB_STATUS = """
const [path, status, headers, body] = arguments;
const realFetch = window.__realFetch || (window.__realFetch = window.fetch.bind(window));
window.fetch = async (url, init) => url === path ? new Response(body, {status, headers}) : realFetch(url, init);
"""

CONTRAST = """
const lum = (color) => {
  const [r, g, b] = color.match(/[\\d.]+/g).slice(0, 3).map((v) => Number(v) / 255)
    .map((v) => (v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4));
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
};
const background = (e) => {
  for (; e; e = e.parentElement) {
    const parts = getComputedStyle(e).backgroundColor.match(/[\\d.]+/g);
    if (parts.length < 4 || Number(parts[3]) > 0) return getComputedStyle(e).backgroundColor;
  }
  return 'rgb(255, 255, 255)';
};
const out = {};
for (const selector of arguments[0]) {
  const e = document.querySelector(selector);
  if (!e) { out[selector] = null; continue; }
  const f = lum(getComputedStyle(e).color), b = lum(background(e));
  out[selector] = Math.round(100 * (Math.max(f, b) + 0.05) / (Math.min(f, b) + 0.05)) / 100;
}
return out;
"""

# Left edges of the first and the last character of `needle` inside `element`, as laid out.
CHAR_EDGES = """
const [element, needle] = arguments;
const walker = document.createTreeWalker(element, NodeFilter.SHOW_TEXT);
for (let node; (node = walker.nextNode());) {
  const at = node.data.indexOf(needle);
  if (at < 0) continue;
  const left = (i) => { const r = document.createRange(); r.setStart(node, i); r.setEnd(node, i + 1);
                        return r.getBoundingClientRect().left; };
  return [left(at), left(at + needle.length - 1)];
}
return null;
"""


def active(driver: Any) -> str:
    return str(driver.execute_script("const a = document.activeElement; return a.id || a.className || a.tagName"))


def test_focus_stays_in_the_question_box_after_ask_and_stop(browser, app_settings) -> None:
    """A disabled or hidden button that holds the focus drops it to <body>, where the next question typed is lost."""
    from selenium.webdriver.common.by import By

    with serve(app_settings, fake_answerer) as url:
        open_page(browser, url)
        turn = ask(browser, QUESTION)  # types, then clicks "Ask" with the mouse
        assert turn.get_attribute("data-state") == "final"
        assert active(browser) == "question"

        browser.execute_script(HOLD_FETCH, "/v1/ask", sse(("token", {"text": "DeepSeek nutzte "})))
        browser.find_element(By.ID, "question").send_keys("Und danach?")
        browser.find_element(By.ID, "ask").click()
        stop = wait_for(browser, lambda d: (s := d.find_element(By.ID, "stop")).is_displayed() and s, "Stop")
        wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, '.turn[data-state="streaming"]'), "the draft")
        assert browser.find_element(By.ID, "ask").get_attribute("disabled") == "true"
        stop.send_keys("\n")  # a keyboard user presses Stop
        wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, '.turn[data-state="error"]'), "the stop")
        assert browser.find_elements(By.CSS_SELECTOR, ".turn .error")[-1].text == "Stopped."
        assert not stop.is_displayed() and browser.find_element(By.ID, "ask").get_attribute("disabled") is None
        assert active(browser) == "question"
        # Stopping is a choice: the box stays empty for the next question.
        assert browser.find_element(By.ID, "question").get_attribute("value") == ""


BUSY_ASK = json.dumps({"error": {"type": "Busy", "message": "the queue is full"}})


@pytest.mark.parametrize(
    ("status", "retry_after", "shown"),
    [
        (503, "10", "(retry in 10 s)"),
        (429, "7", "(retry in 7 s)"),  # a reverse proxy's rate limit
        (409, "3", "(retry in 3 s)"),  # IndexLockedError
        (503, "date", "(retry in 30 s)"),  # RFC 9110 also allows an HTTP date
    ],
)
def test_a_refused_question_says_when_to_retry_and_stays_in_the_box(
    browser, app_settings, status, retry_after, shown
) -> None:
    from selenium.webdriver.common.by import By

    if retry_after == "date":
        retry_after = formatdate(time.time() + 30, usegmt=True)
    with serve(app_settings, fake_answerer) as url:
        open_page(browser, url)
        browser.execute_script(STUB_STATUS, "/v1/ask", status, {"Retry-After": retry_after}, BUSY_ASK)
        turn = ask(browser, QUESTION)
        error = turn.find_element(By.CSS_SELECTOR, ".error").text
        if retry_after.isdigit():
            assert error == f"{status} Busy: the queue is full {shown}"
        else:  # a second may pass between the header and the page reading it
            assert error.startswith(f"{status} Busy: the queue is full (retry in ") and error.endswith(" s)")
            assert 28 <= int(error.rsplit("in ", 1)[1].split()[0]) <= 30, error
        # The question is back in the box: Enter sends it again.
        assert browser.find_element(By.ID, "question").get_attribute("value") == QUESTION


# Counts the page's setTimeout calls from now on: a count still running down adds one each second.
COUNT_TIMEOUTS = """
window.__timeouts = 0;
const realSetTimeout = window.setTimeout.bind(window);
window.setTimeout = (...args) => { window.__timeouts++; return realSetTimeout(...args); };
"""


def test_the_wait_of_a_refused_question_counts_down(browser, app_settings) -> None:
    """ "(retry in 3 s)" under a refused question stood still, long after the wait was over."""
    from selenium.webdriver.common.by import By

    failure = "503 Busy: the queue is full"
    with serve(app_settings, fake_answerer) as url:
        open_page(browser, url)
        browser.execute_script(STUB_STATUS, "/v1/ask", 503, {"Retry-After": "3"}, BUSY_ASK)
        error = ask(browser, QUESTION).find_element(By.CSS_SELECTOR, ".error")
        assert error.text == f"{failure} (retry in 3 s)"
        for shown in (f"{failure} (retry in 2 s)", f"{failure} (retry in 1 s)", f"{failure} (you can retry now)"):
            wait_for(browser, lambda d, shown=shown: error.text == shown, shown)
        # Kept without the wait: a reloaded page has no count to show.
        kept = json.loads(browser.execute_script("return localStorage.getItem('rag.chat')"))["turns"]
        assert kept[-1]["error"] == failure


def test_a_new_question_or_a_new_chat_stops_the_wait_of_a_refused_one(browser, app_settings) -> None:
    """The count must not run on in a turn that is no longer the newest, nor in one "New chat" took away."""
    from selenium.webdriver.common.by import By

    failure = "503 Busy: the queue is full"

    def refused() -> None:
        browser.execute_script(STUB_STATUS, "/v1/ask", 503, {"Retry-After": "30"}, BUSY_ASK)
        line = ask(browser, QUESTION).find_element(By.CSS_SELECTOR, ".error")
        assert line.text == f"{failure} (retry in 30 s)"
        browser.execute_script("window.__line = arguments[0]", line)  # still readable once taken off the page

    def stands_still() -> None:
        ticks = browser.execute_script("return window.__timeouts")
        time.sleep(1.5)
        assert browser.execute_script("return window.__line.textContent") == failure
        assert browser.execute_script("return window.__timeouts") == ticks

    with serve(app_settings, fake_answerer) as url:
        open_page(browser, url)
        documents_listed(browser, 3)
        browser.execute_script(COUNT_TIMEOUTS)
        refused()
        browser.execute_script("window.fetch = window.__realFetch")  # the service answers again
        assert ask(browser, QUESTION).get_attribute("data-state") == "final"
        stands_still()

        refused()
        browser.find_element(By.ID, "new-chat").click()
        assert not browser.find_elements(By.CSS_SELECTOR, ".turn")
        stands_still()


def test_a_question_asked_while_the_service_is_gone_is_kept(browser, app_settings) -> None:
    from selenium.webdriver.common.by import By

    with serve(app_settings, fake_answerer) as url:
        open_page(browser, url)
        documents_listed(browser, 3)
    turn = ask(browser, QUESTION)  # the server has stopped
    assert turn.find_element(By.CSS_SELECTOR, ".error").text.startswith("Could not reach the service")
    box = browser.find_element(By.ID, "question")
    assert box.get_attribute("value") == QUESTION
    assert browser.find_element(By.ID, "ask").get_attribute("disabled") is None
    assert not browser.find_element(By.ID, "stop").is_displayed() and browser.find_element(By.ID, "status").text == ""


def test_the_streamed_answer_is_announced_once_it_is_checked(browser, app_settings) -> None:
    """The log is a live region: busy while the draft streams (and is then replaced), not busy once final."""
    from selenium.webdriver.common.by import By

    final = {"text": "DeepSeek nutzte 2.048 GPUs [1].", "lang": "de", "refused": False, "grounded": True,
             "citations": [quoted(1, "a.txt", "DeepSeek nutzte 2.048 GPUs.")]}  # fmt: skip
    with serve(app_settings, fake_answerer) as url:
        open_page(browser, url)
        log = browser.find_element(By.ID, "log")
        assert log.get_attribute("role") == "log" and log.get_attribute("aria-live") == "polite"
        assert log.get_attribute("aria-busy") in (None, "false")
        browser.execute_script(HOLD_FETCH, "/v1/ask", sse(("token", {"text": "DeepSeek nutzte "})))
        browser.find_element(By.ID, "question").send_keys(QUESTION + "\n")
        wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, '.turn[data-state="streaming"]'), "the draft")
        assert log.get_attribute("aria-busy") == "true"
        browser.execute_script("window.__release(arguments[0])", sse(("answer", final)))
        wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, '.turn[data-state="final"]'), "the answer")
        assert log.get_attribute("aria-busy") == "false"


KEY_TEXT = [
    "#uploads .upload.done .up-state",  # "added · 1 chunk"
    "#doc-list .doc-info",
    "#filter-summary",
    ".turn .q-text",
    ".turn .answer",
    ".turn .answer .cite",
    ".turn .sources .src-title",
    ".turn .sources .src-id",
    ".turn .sources .src-quote",
    ".turn .timings",
]


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_key_text_has_enough_contrast(browser, app_settings, scheme) -> None:
    """WCAG AA for normal-size text, 4.5:1, in both colour schemes."""
    with serve(app_settings, fake_answerer) as url:
        browser.execute_cdp_cmd(
            "Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": scheme}]}
        )
        try:
            open_page(browser, url)
            documents_listed(browser, 3)
            browser.execute_script(DROP, "neu.txt", "Zhipu baute den Rechner Orion mit 4.096 Chips.")
            wait_for(browser, lambda d: upload_rows(d), "the upload")
            ask(browser, QUESTION)
            ratios = browser.execute_script(CONTRAST, KEY_TEXT)
            assert all(ratios.values()), ratios  # every element was there
            assert {s: r for s, r in ratios.items() if r < 4.5} == {}, ratios
        finally:
            browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})


def test_a_right_to_left_override_in_a_title_stays_inside_it(browser, app_settings) -> None:
    """U+202E in an article's title reversed the rest of the delete confirmation and of the source line."""
    from selenium.webdriver.common.by import By

    title = "Nett \u202eTXT.LIVE"
    listing = [{"doc_id": "b.txt", "title": title, "chunks": 1, "tokens": 9, "lang": "de"}]
    routes = {"/v1/documents": {"documents": listing}}
    answer = {"text": "Ja [1].", "lang": "de", "refused": False, "grounded": True,
              "citations": [quoted(1, "b.txt", "Nett.") | {"title": title}]}  # fmt: skip
    with serve(app_settings, fake_answerer) as url, stubbed_routes(browser, routes):
        open_page(browser, url)
        documents_listed(browser, 1)
        entry(browser, "b.txt").find_element(By.CSS_SELECTOR, ".doc-delete").click()
        text = browser.find_element(By.ID, "confirm-text")
        for needle in ("b.txt", "the index"):  # short: on one line
            first, last = browser.execute_script(CHAR_EDGES, text, needle)
            assert first < last, f"{needle!r} is shown reversed"
        browser.find_element(By.ID, "confirm-no").click()

        browser.execute_script(STUB_FETCH, sse(("answer", answer)), 64)
        turn = ask(browser, "Was ist nett?")
        source = turn.find_element(By.CSS_SELECTOR, ".sources li")
        first, last = browser.execute_script(CHAR_EDGES, source, "b.txt")
        assert first < last, "the file name beside the title is shown reversed"


def test_a_delete_while_the_service_is_gone_does_not_stay_deleting(browser, app_settings) -> None:
    from selenium.webdriver.common.by import By

    with serve(app_settings, fake_answerer) as url:
        open_page(browser, url)
        documents_listed(browser, 3)
    entry(browser, "b.txt").find_element(By.CSS_SELECTOR, ".doc-delete").click()  # the server has stopped
    browser.find_element(By.ID, "confirm-yes").click()
    status = browser.find_element(By.ID, "lib-status")
    wait_for(browser, lambda d: status.text.startswith("Not deleted: Could not reach the service"), "the failure")
    item = entry(browser, "b.txt")
    assert "busy" not in item.get_attribute("class")
    assert item.find_element(By.CSS_SELECTOR, ".doc-info").text.endswith("b.txt")  # not "Deleting …"
    assert len(documents_listed(browser)) == 3
    # The entry was drawn anew: its new × has the focus the old one held.
    assert browser.execute_script(
        "return document.activeElement === arguments[0]", item.find_element(By.CSS_SELECTOR, ".doc-delete")
    )


def test_the_article_panel_takes_and_gives_back_the_focus_in_a_narrow_window(browser, app_settings) -> None:
    """The panel covers the chat on a phone: the focus goes into it, and back to the [n] when it closes."""
    from selenium.webdriver.common.by import By

    with serve(app_settings, fake_answerer) as url:
        open_page(browser, url, NARROW)
        try:
            turn = ask(browser, QUESTION)
            cite = turn.find_element(By.CSS_SELECTOR, ".answer .cite")
            browser.execute_script("arguments[0].focus()", cite)
            cite.send_keys("\n")  # Enter on the focused [1]
            wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#doc-panel mark"), "the cited article")
            assert browser.execute_script(
                "return document.getElementById('doc-panel').contains(document.activeElement)"
            )
            browser.find_element(By.ID, "doc-close").click()
            wait_for(browser, lambda d: not d.find_element(By.ID, "doc-panel").is_displayed(), "the panel to close")
            assert browser.execute_script("return document.activeElement === arguments[0]", cite)
        finally:
            browser.set_window_size(*WIDE)


def test_typing_the_api_key_reads_the_list_once(browser, app_settings) -> None:
    """Not one request per keystroke: each half-typed key was a 401, and a late one could overwrite the list's state."""
    from selenium.webdriver.common.by import By

    secured = app_settings.model_copy(update={"api_key": "s3cret"})
    with serve(secured, fake_answerer) as url:
        open_page(browser, url)
        status = browser.find_element(By.ID, "lib-status")
        wait_for(browser, lambda d: "401" in status.text, "the 401 without a key")
        browser.execute_script(
            "window.__listed = 0; const f = window.fetch;"
            "window.fetch = (url, init) => { if (url === '/v1/documents') window.__listed++; return f(url, init); };"
        )
        browser.find_element(By.CSS_SELECTOR, "#settings summary").click()
        browser.find_element(By.ID, "api-key").send_keys("s3cret")
        documents_listed(browser, 3)
        time.sleep(0.6)  # past the pause that ends typing
        assert browser.execute_script("return window.__listed") == 1
        assert status.text == ""


def test_a_kept_chat_that_cannot_be_drawn_is_dropped_and_the_page_still_works(browser, app_settings) -> None:
    """A stored turn whose shape passes the first check but holds a `null` citation stopped the page's script:
    no documents list, no focus, an error in the console."""
    from selenium.webdriver.common.by import By

    damaged = {"version": 1, "turns": [{"question": "q", "result": {"text": "a [1].", "citations": [None]}}]}
    with serve(app_settings, fake_answerer) as url:
        open_page(browser, url)
        browser.execute_script("localStorage.setItem('rag.chat', arguments[0])", json.dumps(damaged))
        browser.refresh()
        documents_listed(browser, 3)
        assert not browser.find_elements(By.CSS_SELECTOR, ".turn")
        assert browser.execute_script("return localStorage.getItem('rag.chat')") is None
        assert active(browser) == "question"
        assert [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []
        assert ask(browser, QUESTION).get_attribute("data-state") == "final"


UNREAD = "The answer could not be read: the service's final event "


@pytest.mark.parametrize(
    ("final", "shown"),
    [
        ('event: answer\ndata: {"text": "Ja [1].", "lang": \n\n', UNREAD + "is not valid JSON."),
        (sse(("answer", {"lang": "de", "refused": False})), UNREAD + "has no text."),
        (sse(("answer", ["Ja [1]."])), UNREAD + "is not a JSON object."),
        (sse(("answer", {"text": "Ja [1].", "lang": "de", "citations": [None]})), "The answer could not be shown: "),
    ],
    ids=["not-json", "no-text", "no-object", "citation-no-object"],
)
def test_a_final_event_the_page_cannot_read_ends_the_turn_with_an_error(browser, app_settings, final, shown) -> None:
    """Such an event was dropped ("the connection closed …"), drawn as a blank answer, or threw halfway through
    drawing: a turn without an error, the question gone from the box, an uncaught error in the console."""
    from selenium.webdriver.common.by import By

    with serve(app_settings, fake_answerer) as url:
        open_page(browser, url)
        browser.execute_script(STUB_FETCH, sse(("token", {"text": "Ja "})) + final, 64)
        turn = ask(browser, QUESTION)
        assert turn.get_attribute("data-state") == "error"
        assert turn.find_element(By.CSS_SELECTOR, ".error").text.startswith(shown)
        answer = turn.find_element(By.CSS_SELECTOR, ".answer")
        assert answer.text.strip() == "Ja" and "waiting" not in answer.get_attribute(
            "class"
        )  # the draft, as after Stop
        assert not turn.find_elements(By.CSS_SELECTOR, ".sources, .badge")
        assert browser.find_element(By.ID, "question").get_attribute("value") == QUESTION
        assert browser.find_element(By.ID, "ask").get_attribute("disabled") is None
        assert (
            not browser.find_element(By.ID, "stop").is_displayed() and browser.find_element(By.ID, "status").text == ""
        )
        kept = json.loads(browser.execute_script("return localStorage.getItem('rag.chat')"))["turns"]
        assert kept[-1]["error"].startswith(shown) and "result" not in kept[-1]
        assert [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []


# The first `times` reads of the documents list fail: `status` 0 as an unreachable service, else that response.
FAIL_LIST = """
const fail = JSON.parse(%s);
const realFetch = window.fetch.bind(window);
window.__listed = 0;
window.fetch = async (url, init) => {
  if (url !== '/v1/documents' || (init && init.method && init.method !== 'GET')) return realFetch(url, init);
  if (window.__listed++ < fail.times) {
    if (!fail.status) throw new TypeError('Failed to fetch');
    return new Response(fail.body, {status: fail.status, headers: fail.headers});
  }
  return realFetch(url, init);
};
"""


BUSY = json.dumps({"error": {"type": "Busy", "message": "models are still loading; retry shortly"}})


@contextmanager
def failing_list(
    driver: Any, times: int, status: int = 0, headers: dict[str, str] | None = None, body: str = ""
) -> Iterator[None]:
    """FAIL_LIST installed for each page loaded inside the block, removed after it."""
    fail = {"times": times, "status": status, "headers": headers or {}, "body": body}
    with page_script(driver, FAIL_LIST % json.dumps(json.dumps(fail))):
        yield


def test_a_documents_list_that_could_not_be_read_is_read_again(browser, app_settings) -> None:
    """A list that failed to load (the service not up yet, a restart) stayed empty until the page was reloaded."""
    from selenium.webdriver.common.by import By

    with serve(app_settings, fake_answerer) as url, failing_list(browser, times=2):
        open_page(browser, url)
        status = browser.find_element(By.ID, "lib-status")
        first = wait_for(browser, lambda d: "Could not reach the service" in status.text and status.text, "a failure")
        documents_listed(browser, 3, wait_s=2 + 4 + WAIT_S)  # tried again after 2 s, then after 4 s
        assert first == "Could not reach the service: Failed to fetch (retry in 2 s)"
        assert browser.execute_script("return window.__listed") == 3
        assert status.text == "" and not browser.find_element(By.ID, "lib-retry").is_displayed()


def test_the_documents_list_waits_for_retry_after_and_offers_retry(browser, app_settings) -> None:
    """Retry-After is honoured (the 503 was read again after 2 s whatever it said); "Retry" reads it now and
    hands the focus to the list, not to <body>."""
    from selenium.webdriver.common.by import By

    with (
        serve(app_settings, fake_answerer) as url,
        failing_list(browser, times=1, status=503, headers={"Retry-After": "3600"}, body=BUSY),
    ):
        open_page(browser, url)
        status = browser.find_element(By.ID, "lib-status")
        wait_for(browser, lambda d: browser.execute_script("return window.__listed"), "the first read")
        time.sleep(2.5)
        assert browser.execute_script("return window.__listed") == 1
        # The wait counts down: about 2 of the 3600 s have passed.
        text = status.text
        assert text.startswith("503 Busy: models are still loading; retry shortly (retry in "), text
        assert 3596 <= int(text.rsplit("in ", 1)[1].split()[0]) <= 3599, text
        retry = browser.find_element(By.ID, "lib-retry")
        browser.execute_script("arguments[0].focus()", retry)
        retry.send_keys("\n")  # a keyboard user presses Retry
        items = documents_listed(browser, 3)
        assert status.text == "" and not retry.is_displayed()
        first = items[0].find_element(By.CSS_SELECTOR, ".doc-open")
        assert browser.execute_script("return document.activeElement === arguments[0]", first)


def test_a_retry_after_of_zero_does_not_read_the_list_in_a_loop(browser, app_settings) -> None:
    """A failing list answered "Retry-After: 0" was read again at once, again and again."""
    from selenium.webdriver.common.by import By

    with (
        serve(app_settings, fake_answerer) as url,
        failing_list(browser, times=50, status=503, headers={"Retry-After": "0"}, body="{}"),
    ):
        open_page(browser, url)
        wait_for(browser, lambda d: browser.execute_script("return window.__listed"), "the first read")
        time.sleep(1.5)
        assert browser.execute_script("return window.__listed") == 1  # the next read waits 2 s, then 4, 8 ...
        assert "(retry in " in browser.find_element(By.ID, "lib-status").text


def test_the_focus_moves_to_the_next_entry_after_a_delete(browser, app_settings) -> None:
    """The deleted entry's × held the focus and was drawn away with the list: the focus fell to <body>."""
    from selenium.webdriver.common.by import By

    def delete(doc_id: str, left: int) -> None:
        button = entry(browser, doc_id).find_element(By.CSS_SELECTOR, ".doc-delete")
        browser.execute_script("arguments[0].focus()", button)
        button.send_keys("\n")  # by keyboard: Enter on ×, then on "Delete"
        browser.find_element(By.ID, "confirm-yes").send_keys("\n")
        wait_for(browser, lambda d: d.find_element(By.ID, "lib-status").text == f"Deleted {doc_id}.", doc_id)
        assert len(browser.find_elements(By.CSS_SELECTOR, "#doc-list .doc-item")) == left

    def focused(selector: str) -> bool:
        return bool(browser.execute_script(f"return document.activeElement === document.querySelector('{selector}')"))

    with serve(app_settings, fake_answerer) as url:
        open_page(browser, url)
        documents_listed(browser, 3)  # a.txt, b.txt, c.txt
        delete("b.txt", 2)
        assert focused('.doc-item[data-doc-id="c.txt"] .doc-delete'), active(browser)  # the next one
        delete("c.txt", 1)
        assert focused('.doc-item[data-doc-id="a.txt"] .doc-delete'), active(browser)  # none after: the one before
        delete("a.txt", 0)
        assert focused("#library-title"), active(browser)  # none left: the panel's heading


def test_the_wait_before_the_list_is_read_again_counts_down(browser, app_settings) -> None:
    """ "(retry in 3 s)" stood still for the 3 s until the list was read again."""
    from selenium.webdriver.common.by import By

    with (
        serve(app_settings, fake_answerer) as url,
        failing_list(browser, times=1, status=503, headers={"Retry-After": "3"}, body=BUSY),
    ):
        open_page(browser, url)
        status = browser.find_element(By.ID, "lib-status")
        for left in (3, 2, 1):
            shown = f"503 Busy: models are still loading; retry shortly (retry in {left} s)"
            wait_for(browser, lambda d, shown=shown: status.text == shown, shown)
        documents_listed(browser, 3)
        assert browser.execute_script("return window.__listed") == 2
        assert status.text == ""


def test_a_ticked_document_keeps_the_focus_when_the_list_is_read_again(browser, app_settings) -> None:
    """The filter's boxes are drawn anew with each reading of the list (here after an upload): the box that
    had the focus was drawn away with it, and the focus fell to <body>."""
    from selenium.webdriver.common.by import By

    def focused_box() -> Any:
        return browser.execute_script(
            "const a = document.activeElement; return a.closest('#filter-docs') ? [a.value, a.checked] : a.tagName"
        )

    with serve(app_settings, fake_answerer) as url:
        open_page(browser, url)
        documents_listed(browser, 3)
        browser.find_element(By.CSS_SELECTOR, "#filters summary").click()
        box = browser.find_element(By.CSS_SELECTOR, '#filter-docs input[value="b.txt"]')
        browser.execute_script("arguments[0].focus()", box)
        box.send_keys(" ")  # a keyboard user ticks it
        assert focused_box() == ["b.txt", True]
        browser.execute_script(DROP, "neu.txt", "Zhipu baute den Rechner Orion mit 4.096 Chips.")
        documents_listed(browser, 4)
        wait_for(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#filter-docs input")) == 4, "4 boxes")
        assert focused_box() == ["b.txt", True]
        assert browser.find_element(By.ID, "filter-summary").text != "Filter: all documents"
        assert [
            e.get_attribute("value") for e in browser.find_elements(By.CSS_SELECTOR, "#filter-docs input:checked")
        ] == ["b.txt"]


def test_a_part_event_the_page_cannot_read_shows_no_undefined(browser, app_settings) -> None:
    """A `part` event without its numbers showed "Part undefined of undefined summarised (passages undefined–…)"."""
    from selenium.webdriver.common.by import By

    text = "DeepSeek nutzte 2.048 GPUs [1]."
    final = {"doc_id": "a.txt", "text": text, "lang": "de", "refused": False, "grounded": True,
             "citations": [quoted(1, "a.txt", "DeepSeek nutzte 2.048 GPUs.")]}  # fmt: skip
    parts = [
        {"text": "Teil."},  # no place at all: skipped
        {"number": "1", "of": None, "first": 1, "last": 2},  # not numbers: skipped
        {"number": 2, "of": 3, "text": "Teil [3].", "refused": False},  # no passages: the line without them
        {"number": 3, "of": 3, "first": "4", "last": 5},
    ]
    with serve(app_settings, fake_answerer) as url:
        open_page(browser, url)
        documents_listed(browser, 3)
        entry(browser, "a.txt").find_element(By.CSS_SELECTOR, ".doc-open").click()
        wait_for(browser, lambda d: panel_text(d).strip(), "a.txt in the panel")
        stream = sse(*[("part", p) for p in parts], ("token", {"text": text}), ("summary", final))
        browser.execute_script(STUB_FETCH, stream, 7, "/v1/summarize")
        browser.execute_script(RECORD_STATUS)
        browser.find_element(By.ID, "doc-summarize").click()
        wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, '.turn[data-state="final"]'), "the summary")
        shown = [line for line in browser.execute_script("return window.__status") if line.startswith("Part")]
        assert shown == ["Part 2 of 3 summarised …", "Part 3 of 3 summarised …"]
        assert browser.find_element(By.CSS_SELECTOR, ".turn .answer").text == text
        assert [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []


def test_the_sources_id_stays_on_the_last_drawn_sources_after_a_failed_draw(browser, app_settings) -> None:
    """The id moved to the new turn's sources before they were drawn; when drawing them threw, that list went
    with the undone turn and no element was #sources any more."""
    from selenium.webdriver.common.by import By

    def sources_turn() -> Any:
        return browser.execute_script(
            "const s = document.querySelectorAll('#sources'), turns = [...document.querySelectorAll('.turn')];"
            "return s.length === 1 ? turns.indexOf(s[0].closest('.turn')) : s.length + ' found'"
        )

    with serve(app_settings, fake_answerer) as url:
        open_page(browser, url)
        assert ask(browser, QUESTION).find_elements(By.CSS_SELECTOR, ".sources")
        assert sources_turn() == 0
        # No [n] in the text: the answer is drawn, then the sources list throws on the `null` citation.
        final = {"text": "Ja.", "lang": "de", "refused": False, "grounded": True, "citations": [None]}
        browser.execute_script(STUB_FETCH, sse(("answer", final)), 64)
        turn = ask(browser, "Und danach?")
        assert turn.get_attribute("data-state") == "error"
        assert turn.find_element(By.CSS_SELECTOR, ".error").text.startswith("The answer could not be shown: ")
        assert sources_turn() == 0
        browser.refresh()  # drawn again from the kept chat: the same
        wait_for(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, ".turn")) == 2, "the kept turns")
        assert sources_turn() == 0


def test_the_wait_of_a_refused_upload_counts_down(browser, app_settings) -> None:
    """An upload refused while another process writes the index (409, Retry-After: 10) showed "(retry in 10 s)"
    for good, as a chat turn did before."""
    from fakes import index_lock_held_elsewhere
    from selenium.webdriver.common.by import By

    with serve(app_settings, fake_answerer) as url, index_lock_held_elsewhere(app_settings.index_dir):
        open_page(browser, url)
        documents_listed(browser, 3)
        browser.execute_script(DROP, "neu.txt", "Zhipu baute den Rechner Orion mit 4.096 Chips.")
        row = wait_for(browser, lambda d: upload_rows(d, ("failed",)) and upload_rows(d, ("failed",))[0], "refusal")
        first = row.find_element(By.CSS_SELECTOR, ".error").text
        assert first.startswith("409 IndexLockedError: ") and first.endswith(" (retry in 10 s)"), first
        failure = first.rsplit(" (retry in ", 1)[0]
        time.sleep(2.2)
        later = row.find_element(By.CSS_SELECTOR, ".error").text
        assert later in (f"{failure} (retry in 8 s)", f"{failure} (retry in 7 s)"), later


def test_the_wait_of_a_refused_delete_counts_down_until_the_next_delete(browser, app_settings) -> None:
    """A delete refused while another process writes the index (409, Retry-After: 10) showed "(retry in 10 s)"
    for good, as an upload did before; the next delete stops the count, which must not write over its result."""
    from fakes import index_lock_held_elsewhere
    from selenium.webdriver.common.by import By

    def delete(doc_id: str) -> None:
        entry(browser, doc_id).find_element(By.CSS_SELECTOR, ".doc-delete").click()
        browser.find_element(By.ID, "confirm-yes").click()

    with serve(app_settings, fake_answerer) as url:
        open_page(browser, url)
        documents_listed(browser, 3)
        status = browser.find_element(By.ID, "lib-status")
        with index_lock_held_elsewhere(app_settings.index_dir):
            delete("b.txt")
            first = wait_for(browser, lambda d: status.text.startswith("Not deleted: ") and status.text, "refusal")
            assert first.startswith("Not deleted: 409 IndexLockedError: ") and first.endswith(" (retry in 10 s)"), first
            failure = first.rsplit(" (retry in ", 1)[0]
            time.sleep(2.2)
            assert status.text in (f"{failure} (retry in 8 s)", f"{failure} (retry in 7 s)"), status.text
        browser.execute_script(COUNT_TIMEOUTS)
        delete("b.txt")
        wait_for(browser, lambda d: status.text == "Deleted b.txt.", "the delete")
        ticks = browser.execute_script("return window.__timeouts")
        time.sleep(1.5)
        assert status.text == "Deleted b.txt." and browser.execute_script("return window.__timeouts") == ticks

"""Server-sent events through sse-starlette: headers, keep-alive comments while a request waits in the
queue, a full queue still a 503, and a client that goes away frees the model."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fakes import FakeGenerator, fake_answerer, wait_ready
from fastapi.testclient import TestClient
from live import serve

from rag.serve.app import create_app

QUESTION = "Wie viele GPUs nutzte DeepSeek?"
STREAMS = [
    ("/v1/ask", {"question": QUESTION, "stream": True}),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": QUESTION}], "stream": True}),
]


class HeldGenerator(FakeGenerator):
    """Its first reply waits for ``release``, so that request holds the model while others queue."""

    def __init__(self) -> None:
        super().__init__()
        self.started, self.release = threading.Event(), threading.Event()
        self._first = True

    def stream(self, messages, settings, *, prefix="", between=None):  # type: ignore[no-untyped-def]
        if self._first:
            self._first = False
            self.started.set()
            self.release.wait(10)
        yield from super().stream(messages, settings)


class SlowGenerator(FakeGenerator):
    """A long backed answer, one token every ``token_s``; counts what it produced and how many ran at once."""

    REPLY = "DeepSeek nutzte 2.048 GPUs [1]. " * 60

    def __init__(self, token_s: float) -> None:
        super().__init__(answerable=0.9)
        self.token_s = token_s
        self.produced = 0
        self.running = 0
        self.most_at_once = 0

    def stream(self, messages, settings, *, prefix="", between=None):  # type: ignore[no-untyped-def]
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        try:
            for piece in self.REPLY.split(" ")[: settings.max_tokens]:
                time.sleep(self.token_s)
                self.produced += 1
                yield piece + " "
        finally:
            self.running -= 1


@pytest.mark.parametrize(("path", "body"), STREAMS)
def test_stream_headers(client, path: str, body: dict[str, Any]) -> None:
    with client.stream("POST", path, json=body) as r:
        r.read()
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    assert r.headers["cache-control"] == "no-cache" and r.headers["x-accel-buffering"] == "no"


@pytest.fixture
def held(app_settings) -> Iterator[tuple[TestClient, HeldGenerator, Any]]:
    """A service whose first answer holds the model (in a thread) until ``release`` is set."""
    settings = app_settings.model_copy(update={"sse_ping_s": 0.05, "max_queue": 1})
    gen = HeldGenerator()
    with TestClient(create_app(settings, build=lambda s: fake_answerer(s, gen))) as c:
        wait_ready(c)
        first = threading.Thread(target=lambda: c.post("/v1/ask", json={"question": QUESTION}))
        first.start()
        assert gen.started.wait(5)
        try:
            yield c, gen, settings
        finally:
            gen.release.set()
            first.join(10)


def _in_thread(fn: Any) -> tuple[threading.Thread, list[Any]]:
    out: list[Any] = []
    thread = threading.Thread(target=lambda: out.append(fn()))
    thread.start()
    return thread, out


def _wait_until_queued(c: TestClient) -> None:
    """Wait (at most 5 s) until a request waits in the service's queue."""
    deadline = time.monotonic() + 5
    while c.app.state.gate.waiting < 1:  # type: ignore[attr-defined]
        assert time.monotonic() < deadline
        time.sleep(0.01)


@pytest.mark.parametrize(("path", "body"), STREAMS)
def test_keep_alive_comments_while_waiting_in_the_queue(held, path: str, body: dict[str, Any]) -> None:
    c, gen, _ = held

    def queued() -> str:
        with c.stream("POST", path, json=body) as r:
            assert r.status_code == 200
            return r.read().decode()

    thread, out = _in_thread(queued)
    _wait_until_queued(c)  # under load the request may reach the queue late
    time.sleep(0.4)  # about eight keep-alive intervals in the queue
    gen.release.set()
    thread.join(10)
    (text,) = out
    before_answer = text.split("\ndata: {", 1)[0]
    pings = [line for line in before_answer.split("\n") if line.startswith(": ping")]
    assert len(pings) >= 3, text[:500]
    assert "data: [DONE]" in text if "chat" in path else "event: answer" in text


def test_a_full_queue_is_still_a_503_for_a_stream(held) -> None:
    c, gen, _ = held
    thread, out = _in_thread(lambda: c.post("/v1/ask", json={"question": QUESTION}))  # takes the one queue place
    _wait_until_queued(c)
    r = c.post("/v1/ask", json={"question": QUESTION, "stream": True})
    assert r.status_code == 503 and r.json()["error"]["type"] == "Busy" and r.headers["Retry-After"]
    gen.release.set()
    thread.join(10)
    assert out[0].status_code == 200


class _BuggyAfterTheFirst(HeldGenerator):
    def stream(self, messages, settings, *, prefix="", between=None):  # type: ignore[no-untyped-def]
        first = self._first
        yield from super().stream(messages, settings)
        if not first:
            raise ValueError("a bug quoting the question")


def test_a_bug_after_the_queue_is_an_error_event(app_settings) -> None:
    gen = _BuggyAfterTheFirst()
    settings = app_settings.model_copy(update={"sse_ping_s": 0.05})
    with TestClient(create_app(settings, build=lambda s: fake_answerer(s, gen))) as c:
        wait_ready(c)
        first, _ = _in_thread(lambda: c.post("/v1/ask", json={"question": QUESTION}))
        assert gen.started.wait(5)
        thread, out = _in_thread(lambda: c.post("/v1/ask", json={"question": QUESTION, "stream": True}))
        time.sleep(0.2)
        gen.release.set()
        thread.join(10)
        first.join(10)
        assert c.post("/v1/ask", json={"question": QUESTION}).status_code == 500  # the model was freed
    (r,) = out
    assert r.status_code == 200 and "event: error" in r.text and '"InternalError"' in r.text
    assert "quoting" not in r.text


def _leave_at(http: httpx.Client, prefix: str) -> None:
    """Stream an answer and close the connection at its first line that starts with ``prefix``."""
    with http.stream("POST", "/v1/ask", json={"question": QUESTION, "stream": True}) as r:
        for line in r.iter_lines():
            if line.startswith(prefix):
                break  # leaving the block closes the connection


def test_a_client_that_goes_away_frees_the_model(app_settings) -> None:
    """Generation stops within a token; the model is free only once it stopped (never two at once)."""
    gen = SlowGenerator(token_s=0.1)
    settings = app_settings.model_copy(update={"max_tokens": 400})
    with serve(settings, lambda s: fake_answerer(s, gen)) as url, httpx.Client(base_url=url, timeout=10) as http:
        _leave_at(http, "event: token")
        stopped_at = gen.produced
        # At once: the next answer must wait until the abandoned one has stopped, not start beside it.
        started = time.monotonic()
        short = http.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": QUESTION}],
                                                        "max_tokens": 3})  # fmt: skip
        assert short.status_code == 200 and time.monotonic() - started < 5  # the gate was released
        time.sleep(0.5)
        assert gen.produced - stopped_at <= 3 + 3, "generation went on after the client left"
        assert gen.produced < 200
    assert gen.most_at_once == 1


class _OneLongSentence(SlowGenerator):
    """No sentence ends for 400 tokens: nothing is checked, so no event is ready for a long while."""

    REPLY = "DeepSeek nutzte viele GPUs und " * 100


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/ask", {"question": QUESTION}),
        ("/v1/ask", {"question": QUESTION, "stream": True}),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": QUESTION}]}),
        ("/v1/summarize", {"doc_id": "a.txt"}),
        ("/v1/summarize", {"doc_id": "a.txt", "stream": True}),
    ],
)
def test_a_client_that_leaves_before_any_event_frees_the_model(app_settings, path: str, body: dict[str, Any]) -> None:
    """Without a response started nothing noticed the client leave: a plain request ran to its end, a stream
    until its first keep-alive (15 s by default), and every request behind it waited."""
    gen = _OneLongSentence(token_s=0.05)  # 400 tokens: 20 s
    settings = app_settings.model_copy(update={"max_tokens": 400, "sse_ping_s": 30.0})
    with serve(settings, lambda s: fake_answerer(s, gen)) as url, httpx.Client(base_url=url, timeout=10) as http:
        with pytest.raises(httpx.ReadTimeout):
            http.post(path, json=body, timeout=0.5)  # the client gives up and closes the connection
        time.sleep(1.5)
        stopped_at = gen.produced
        time.sleep(0.5)
        assert gen.produced == stopped_at and gen.running == 0, "generation went on after the client left"
        assert stopped_at < 60
        started = time.monotonic()
        short = http.post("/v1/ask", json={"question": "🤖🚀"})  # refused at once, once it has the model
        assert short.status_code == 200 and short.json()["refused"] and time.monotonic() - started < 5
    assert gen.most_at_once == 1


def test_a_client_that_leaves_while_queued_never_takes_the_model(app_settings) -> None:
    """It kept its queue place (a live client got 503 Busy) and, at its turn, still ran the check and a token."""
    gen = SlowGenerator(token_s=0.01)  # 200 tokens: 2 s an answer
    settings = app_settings.model_copy(update={"max_tokens": 200, "max_queue": 1})
    with serve(settings, lambda s: fake_answerer(s, gen)) as url, httpx.Client(base_url=url, timeout=30) as http:
        first, out = _in_thread(lambda: http.post("/v1/ask", json={"question": QUESTION}))
        time.sleep(0.3)  # the first has the model
        with pytest.raises(httpx.ReadTimeout):
            http.post("/v1/ask", json={"question": "Wer gründete DeepSeek?"}, timeout=0.5)  # queued, then gone
        time.sleep(0.2)
        third = http.post("/v1/ask", json={"question": "Was kostete das Training?"})
        first.join(10)
    assert out[0].status_code == 200 and third.status_code == 200, third.text  # its place was free again
    asked = [m[-1]["content"] for m in gen.checks]
    assert len(asked) == 2 and not any("gründete" in a for a in asked)


def _logged_worker(log: list[str]) -> Any:
    """An answerer that writes a token every 20 ms through ``on_token`` and notes in ``log`` when it stopped."""

    def answerer(question: str, on_token: Any, **kw: Any) -> None:
        try:
            for i in range(100):
                time.sleep(0.02)  # one token
                on_token(f"t{i}. ")
        finally:
            log.append("worker stopped")

    return answerer


def _logged_gate(log: list[str]) -> Any:
    """A model gate that notes in ``log`` when it is released."""
    from rag.serve.gate import ModelGate

    gate = ModelGate(1)
    release = gate.release
    gate.release = lambda: log.append("gate released") or release()  # type: ignore[method-assign]
    return gate


def test_the_gate_opens_only_after_the_worker_of_a_closed_stream_stopped() -> None:
    """Closed at a yield (sse-starlette closes the response's frames when a send fails), the wrappers left the
    stream beneath them to the collector: the gate was released while llama.cpp still generated."""
    import asyncio
    from contextlib import aclosing
    from types import SimpleNamespace

    from rag.serve import deps

    log: list[str] = []
    answerer = _logged_worker(log)

    async def run() -> None:
        gate = _logged_gate(log)
        state = SimpleNamespace(gate=gate, metrics=None, settings=SimpleNamespace(log_questions=False))
        request = SimpleNamespace(app=SimpleNamespace(state=state), state=SimpleNamespace())
        inner = deps._events(request, answerer, "q", gate.reserve())  # type: ignore[arg-type]
        events = deps._errors_as_events(deps.prepend(await anext(inner), inner), request)  # type: ignore[arg-type]
        del inner
        async with aclosing(events):
            async for _ in events:
                break  # the client went away at a yield
        log.append("closed")

    asyncio.run(run())
    assert log == ["worker stopped", "gate released", "closed"]


class _SlowFirstToken(FakeGenerator):
    """A long prompt evaluation: no token, so no call that could stop it, for ``delay`` seconds."""

    def __init__(self, delay: float) -> None:
        super().__init__(answerable=0.9)
        self.delay = delay
        self.running = 0
        self.most_at_once = 0
        self.lock = threading.Lock()

    def stream(self, messages, settings, *, prefix="", between=None):  # type: ignore[no-untyped-def]
        with self.lock:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        try:
            time.sleep(self.delay)
            yield from super().stream(messages, settings)
        finally:
            with self.lock:
                self.running -= 1


def test_a_client_that_leaves_after_a_keep_alive_never_shares_the_model(app_settings) -> None:
    """The response had started (a keep-alive went out) and waited for its first event; each repeated cancel of
    the leaving response went on into the task evaluating it, through its shielded wait for the worker, and
    the next request entered the model beside it (second review)."""
    gen = _SlowFirstToken(delay=1.0)
    settings = app_settings.model_copy(update={"sse_ping_s": 0.1})
    with serve(settings, lambda s: fake_answerer(s, gen)) as url, httpx.Client(base_url=url, timeout=30) as http:
        _leave_at(http, ":")  # a keep-alive: the response started and waits for its first event
        second = http.post("/v1/ask", json={"question": QUESTION})
    assert second.status_code == 200 and gen.most_at_once == 1


def test_a_stream_closed_at_its_head_frame_stops_its_worker_before_the_gate_opens() -> None:
    """Chat's role chunk goes out before any event: closed there, nothing beneath was closed, and the worker
    generated the whole answer with the model held until the collector came (second review)."""
    import asyncio
    from types import SimpleNamespace

    from sse_starlette import ServerSentEvent

    from rag.serve import deps

    log: list[str] = []
    answerer = _logged_worker(log)

    async def run() -> None:
        gate = _logged_gate(log)

        async def receive() -> dict[str, str]:
            await asyncio.Event().wait()  # the client is still there while the first event comes
            return {}

        settings = SimpleNamespace(sse_ping_s=5.0, log_questions=False)
        state = SimpleNamespace(gate=gate, metrics=SimpleNamespace(observe=lambda a: None), settings=settings)
        request = SimpleNamespace(app=SimpleNamespace(state=state), state=SimpleNamespace(), receive=receive)
        response = await deps.stream_events(
            request, answerer, "q", lambda kind, value: [ServerSentEvent(kind)],  # type: ignore[arg-type]
            head=[ServerSentEvent("head")],
        )  # fmt: skip
        body = response.body_iterator
        await anext(body)  # the head frame went out, and its send failed: the response closes its body
        await body.aclose()  # type: ignore[attr-defined]
        log.append("closed" + (", gate free" if gate.free else ", gate held"))

    asyncio.run(run())
    assert log == ["worker stopped", "gate released", "closed, gate free"]


def test_a_request_cancelled_while_queued_leaves_the_model_free() -> None:
    """Its wait for the model went on alone, took the model once it came free and kept it for good."""
    import asyncio
    from types import SimpleNamespace

    from rag.serve import deps
    from rag.serve.gate import ModelGate

    async def run() -> bool:
        gate = ModelGate(4)

        async def receive() -> dict[str, str]:
            await asyncio.Event().wait()  # a client that stays
            return {}

        state = SimpleNamespace(gate=gate, metrics=None, settings=None)
        request = SimpleNamespace(app=SimpleNamespace(state=state), state=SimpleNamespace(), receive=receive)
        holder = gate.reserve()
        await holder.take()  # another request has the model
        task = asyncio.ensure_future(deps.answer_once(request, lambda q, **kw: None, "q"))  # type: ignore[arg-type]
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        gate.release()  # the other request ends
        await asyncio.sleep(0.05)
        return gate.free and gate.waiting == 0

    assert asyncio.run(run())


def test_a_reserved_queue_place_counts_until_taken_or_left() -> None:
    """A stream reserves its place before responding; one that never starts gives it back."""
    import asyncio

    from rag.errors import Busy
    from rag.serve.gate import ModelGate

    async def run() -> None:
        gate = ModelGate(max_queue=1)
        async with gate:
            place = gate.reserve()
            assert gate.waiting == 1
            with pytest.raises(Busy):
                gate.reserve()
            place.leave()
            place.leave()  # idempotent
            assert gate.waiting == 0
            waiter = asyncio.create_task(gate.reserve().take())
            await asyncio.sleep(0)
            assert gate.waiting == 1 and not waiter.done()
        await waiter  # got the model: the place is left
        assert gate.waiting == 0 and not gate.free
        gate.release()

    asyncio.run(run())


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/ask", {"question": "   ", "stream": True}),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "   "}], "stream": True}),
        ("/v1/summarize", {"topic": "   ", "stream": True}),
    ],
)
def test_an_input_the_pipeline_rejects_is_a_400_for_a_stream_too(client, path: str, body: dict[str, Any]) -> None:
    """With the model free, an error before the first event is a status, as for the same request unstreamed."""
    unstreamed = client.post(path, json={**body, "stream": False})
    r = client.post(path, json=body)
    assert unstreamed.status_code == 400
    assert r.status_code == 400 and r.json()["error"]["type"] == unstreamed.json()["error"]["type"]
    assert "text/event-stream" not in r.headers["content-type"]
    again = client.post("/v1/ask", json={"question": QUESTION, "stream": True})  # the model and queue place are free
    assert again.status_code == 200 and "event: answer" in again.text
    assert client.app.state.gate.waiting == 0


class _SlowStart(FakeGenerator):
    """Its reply starts after ``delay`` seconds, as a summary's first part does after many."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay

    def stream(self, messages, settings, *, prefix="", between=None):  # type: ignore[no-untyped-def]
        time.sleep(self.delay)
        yield from super().stream(messages, settings)


@pytest.mark.parametrize(("path", "body"), STREAMS)
def test_keep_alive_comments_while_the_first_event_takes_long(app_settings, path: str, body: dict[str, Any]) -> None:
    """With the model free, the response waits for the first event one keep-alive interval at most."""
    gen = _SlowStart(delay=0.5)
    settings = app_settings.model_copy(update={"sse_ping_s": 0.05})
    with TestClient(create_app(settings, build=lambda s: fake_answerer(s, gen))) as c:
        wait_ready(c)
        text = c.post(path, json=body).text
        assert c.post("/v1/ask", json={"question": "   ", "stream": True}).status_code == 400  # quick: a status
        assert c.app.state.gate.waiting == 0 and c.post("/v1/ask", json={"question": QUESTION}).status_code == 200
    before = text.split("\ndata: {", 1)[0]
    assert len([line for line in before.split("\n") if line.startswith(": ping")]) >= 3, text[:500]
    assert "data: [DONE]" in text if "chat" in path else "event: answer" in text


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/ask", {"question": "   ", "stream": True}),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "   "}], "stream": True}),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "x" * 2001}], "stream": True}),
        ("/v1/summarize", {"topic": "   ", "stream": True}),
    ],
)
def test_a_bad_question_is_a_400_while_the_model_is_busy_too(held, path: str, body: dict[str, Any]) -> None:
    """The status must not depend on load: a question the pipeline would refuse is refused before the
    stream starts, not sent as a 200 whose error event comes after the other request's answer."""
    c, _, _ = held
    r = _with_timeout_s(lambda: c.post(path, json=body), 5)
    assert r.status_code == 400 and r.json()["error"]["type"] == "InputError", r.text[:300]
    assert c.app.state.gate.waiting == 0  # type: ignore[attr-defined]


def _with_timeout_s(fn: Any, seconds: float) -> Any:
    thread, out = _in_thread(fn)
    thread.join(seconds)
    assert out, f"no response within {seconds} s: the request waited for the model"
    return out[0]

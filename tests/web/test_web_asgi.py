"""The ASGI middleware: ids bound per request, one event per request, the loop never blocked."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

import pytest

from databuddy_otel import current_ids
from databuddy_otel.devserver import DevServer
from databuddy_otel.web import ROUTE_KEY, DatabuddyASGIMiddleware
from tests.conftest import MakeClient
from tests.web.conftest import IDS, RecordingClient, call_asgi, http_scope, run_asgi

Receive = Any
Send = Any


async def hello(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"hello"})


def test_header_ids_reach_events_tracked_by_the_app(
    server: DevServer, make_client: MakeClient
) -> None:
    """An event tracked inside the ASGI app carries the ids from the request headers."""
    client = make_client()

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        client.track(name="search", properties={"q": "shoes"})
        await hello(scope, receive, send)

    sent = run_asgi(DatabuddyASGIMiddleware(app, client), http_scope(headers=IDS))
    assert sent[-1]["body"] == b"hello"
    client.flush(timeout=5)
    (event,) = server.events()
    assert (event["anonymousId"], event["sessionId"]) == ("anon_web-1", "sess_web-1")


def test_ids_are_bound_in_tasks_the_app_starts(recording_client: RecordingClient) -> None:
    """A task spawned while serving inherits the ids; the caller's context stays clean."""
    seen: list[Any] = []

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        async def background() -> None:
            seen.append(current_ids())

        await asyncio.create_task(background())
        await hello(scope, receive, send)

    async def main() -> None:
        await call_asgi(DatabuddyASGIMiddleware(app, recording_client), http_scope(headers=IDS))
        seen.append(current_ids())

    asyncio.run(main())
    assert seen == [("anon_web-1", "sess_web-1"), (None, None)]


def test_request_event_has_method_route_status_and_duration(
    recording_client: RecordingClient,
) -> None:
    """Status from http.response.start, route from scope['route'].path, duration over all chunks."""

    class Route:
        path = "/items/{item_id}"

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        scope["route"] = Route()  # what Starlette's router does
        await send({"type": "http.response.start", "status": 202, "headers": []})
        for i in range(3):
            await asyncio.sleep(0.02)  # the streamed work being timed
            await send({"type": "http.response.body", "body": b"x", "more_body": i < 2})

    middleware = DatabuddyASGIMiddleware(app, recording_client, track_requests=True)
    run_asgi(middleware, http_scope("/items/5", method="PUT", headers=IDS))
    (call,) = recording_client.calls
    props = call["properties"]
    assert {k: props[k] for k in ("method", "route", "status_code")} == {
        "method": "PUT",
        "route": "/items/{item_id}",
        "status_code": 202,
    }
    assert props["duration_ms"] >= 60
    assert (call["anonymous_id"], call["session_id"]) == ("anon_web-1", "sess_web-1")


def test_explicit_route_key_and_raw_path_fallback(recording_client: RecordingClient) -> None:
    """scope['databuddy.route'] wins; with no route the raw path is sent only when asked."""

    async def declared(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        scope[ROUTE_KEY] = "/declared"
        await hello(scope, receive, send)

    run_asgi(DatabuddyASGIMiddleware(declared, recording_client, track_requests=True), http_scope())
    run_asgi(DatabuddyASGIMiddleware(hello, recording_client, track_requests=True), http_scope())
    fallback = DatabuddyASGIMiddleware(
        hello, recording_client, track_requests=True, raw_path_fallback=True
    )
    run_asgi(fallback, http_scope("/raw/1"))
    routes = [c["properties"].get("route") for c in recording_client.calls]
    assert routes == ["/declared", None, "/raw/1"]


@pytest.mark.parametrize("kind", ["websocket"])
def test_other_scopes_pass_through_untouched(recording_client: RecordingClient, kind: str) -> None:
    """websocket scopes reach the app with the same objects; nothing is tracked."""
    got: list[Any] = []

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        got.append((scope, receive, send, current_ids()))

    async def receive() -> dict[str, Any]:
        return {"type": f"{kind}.connect"}

    async def send(message: Any) -> None:
        pass

    scope = {"type": kind, "headers": [(b"x-databuddy-anonymous-id", b"anon_ws")]}
    middleware = DatabuddyASGIMiddleware(app, recording_client, track_requests=True)
    asyncio.run(middleware(scope, receive, send))
    assert got == [(scope, receive, send, (None, None))]
    assert recording_client.calls == []


def test_app_exception_before_response_is_tracked_as_500(
    recording_client: RecordingClient,
) -> None:
    """An app that raises before answering: event with status 500, exception propagates."""

    async def broken(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        raise RuntimeError("boom")

    middleware = DatabuddyASGIMiddleware(broken, recording_client, track_requests=True)
    with pytest.raises(RuntimeError, match="boom"):
        run_asgi(middleware, http_scope())
    assert recording_client.calls[0]["properties"]["status_code"] == 500


def test_app_exception_after_response_start_keeps_the_status_sent(
    recording_client: RecordingClient,
) -> None:
    """A failure after http.response.start reports the status the client already got."""

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise RuntimeError("midway")

    middleware = DatabuddyASGIMiddleware(app, recording_client, track_requests=True)
    with pytest.raises(RuntimeError):
        run_asgi(middleware, http_scope())
    assert recording_client.calls[0]["properties"]["status_code"] == 200


def test_failing_tracking_never_breaks_the_response(caplog: pytest.LogCaptureFixture) -> None:
    """A client whose track() raises: every message still reaches the server."""

    class Exploding:
        def track(self, *args: Any, **kwargs: Any) -> None:
            raise RuntimeError("tracking is down")

    middleware = DatabuddyASGIMiddleware(hello, Exploding(), track_requests=True)
    with caplog.at_level(logging.WARNING, logger="databuddy"):
        sent = run_asgi(middleware, http_scope(headers=IDS))
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert any("middleware failed" in r.getMessage() for r in caplog.records)


def test_header_names_are_case_insensitive_and_repeats_joined(
    recording_client: RecordingClient,
) -> None:
    """Mixed-case header names are found; a repeated cookie header is joined with '; '."""
    seen: list[Any] = []

    def reader(headers: Any) -> tuple[str | None, str | None]:
        seen.append(headers.get("cookie"))
        return headers.get("x-databuddy-anonymous-id"), None

    scope = http_scope()
    scope["headers"] = [
        (b"X-Databuddy-Anonymous-Id", b"anon_mixed"),
        (b"cookie", b"a=1"),
        (b"cookie", b"b=2"),
    ]
    middleware = DatabuddyASGIMiddleware(
        hello, recording_client, track_requests=True, ids_from=reader
    )
    run_asgi(middleware, scope)
    assert seen == ["a=1; b=2"]
    assert recording_client.calls[0]["anonymous_id"] == "anon_mixed"


def test_malformed_headers_cost_the_ids_not_the_request(
    recording_client: RecordingClient,
) -> None:
    """Header pairs that are not bytes (a broken server) leave the request served, unbound."""
    scope = http_scope()
    scope["headers"] = [("x-databuddy-anonymous-id", "text, not bytes")]
    middleware = DatabuddyASGIMiddleware(hello, recording_client, track_requests=True)
    sent = run_asgi(middleware, scope)
    assert sent[-1]["body"] == b"hello"
    assert recording_client.calls[0]["anonymous_id"] is None


def test_track_and_aflush_never_block_the_running_loop(
    server: DevServer, make_client: MakeClient
) -> None:
    """Under a running loop, track() returns at once and aflush() lets other tasks run."""
    unbatched = make_client(enable_batching=False)
    batched = make_client(batch_size=100, batch_timeout=60_000)
    timings: dict[str, float] = {}

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        server.delay_next(2, seconds=0.4)  # the next two ingest answers are slow
        start = time.perf_counter()
        assert unbatched.track(name="unbatched_in_loop").success
        assert batched.track(name="batched_in_loop").success
        timings["track"] = time.perf_counter() - start
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticking = asyncio.create_task(ticker())
        flushed = await batched.aflush(timeout=5)
        ticking.cancel()
        timings["ticks"] = ticks
        assert flushed.success and flushed.processed == 1
        await hello(scope, receive, send)

    run_asgi(DatabuddyASGIMiddleware(app, batched, track_requests=True), http_scope(headers=IDS))
    assert timings["track"] < 0.2, "track() waited for the network inside the event loop"
    assert timings["ticks"] >= 10, "the loop stalled while aflush() waited for the server"
    batched.flush(timeout=5)  # the http_request event, queued as the app returned
    events = server.wait_for_events(3)
    by_name = {e["name"]: e for e in events}
    assert set(by_name) == {"unbatched_in_loop", "batched_in_loop", "http_request"}
    assert all(e["anonymousId"] == "anon_web-1" for e in events)


def _run_lifespan(middleware: Any, server: DevServer) -> list[tuple[str, int]]:
    """Drive the lifespan protocol as a server does: each message sent, with events stored then."""
    inbox = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[tuple[str, int]] = []

    async def receive() -> dict[str, Any]:
        return inbox.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append((message["type"], len(server.events())))

    asyncio.run(middleware({"type": "lifespan"}, receive, send))
    return sent


def test_lifespan_shutdown_flushes_after_the_apps_own_shutdown(
    server: DevServer, make_client: MakeClient
) -> None:
    """Events tracked by the app's shutdown handler are stored before shutdown completes."""
    client = make_client(batch_timeout=60_000)

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        assert (await receive())["type"] == "lifespan.startup"
        await send({"type": "lifespan.startup.complete"})
        client.track(name="queued_while_serving")
        assert (await receive())["type"] == "lifespan.shutdown"
        client.track(name="tracked_by_shutdown_handler")
        await send({"type": "lifespan.shutdown.complete"})

    sent = _run_lifespan(DatabuddyASGIMiddleware(app, client), server)
    assert sent == [
        ("lifespan.startup.complete", 0),
        ("lifespan.shutdown.complete", 2),
    ]


def test_lifespan_is_answered_for_an_app_that_does_not_speak_it(
    server: DevServer, make_client: MakeClient
) -> None:
    """An app that refuses the lifespan scope (Django's) still gets its client flushed."""
    client = make_client(batch_timeout=60_000)

    async def http_only(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        raise ValueError("only http")

    client.track(name="queued")
    sent = _run_lifespan(DatabuddyASGIMiddleware(http_only, client), server)
    assert sent == [
        ("lifespan.startup.complete", 0),
        ("lifespan.shutdown.complete", 1),
    ]


def test_lifespan_shutdown_leaves_no_spool_file_with_nothing_in_it(
    server: DevServer, make_client: MakeClient, tmp_path: Path
) -> None:
    """With a spool, the lifespan flush deletes the file it emptied: a uvicorn worker dies
    by the re-raised SIGTERM next, and nothing else would."""
    client = make_client(batch_timeout=60_000, spool_dir=str(tmp_path))

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        assert (await receive())["type"] == "lifespan.startup"
        await send({"type": "lifespan.startup.complete"})
        assert (await receive())["type"] == "lifespan.shutdown"
        await send({"type": "lifespan.shutdown.complete"})

    client.track(name="queued")
    assert list(tmp_path.iterdir()) != []
    _run_lifespan(DatabuddyASGIMiddleware(app, client), server)
    assert list(tmp_path.iterdir()) == []
    assert [e["name"] for e in server.events()] == ["queued"]

"""The WSGI middleware: ids bound per request, one event per request, never in the way."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
import requests

from databuddy_otel import current_ids
from databuddy_otel.devserver import DevServer
from databuddy_otel.web import ROUTE_KEY, DatabuddyWSGIMiddleware, ids_from_cookies
from tests.conftest import MakeClient
from tests.web.conftest import IDS, RecordingClient, call_wsgi

StartResponse = Any


def hello(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]


def test_header_ids_reach_events_tracked_by_the_app(
    server: DevServer, make_client: MakeClient
) -> None:
    """An event tracked while serving the request carries the ids from the request headers."""
    client = make_client()

    def app(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        client.track(name="checkout_started", properties={"cart": 3})
        return hello(environ, start_response)

    result = call_wsgi(DatabuddyWSGIMiddleware(app, client), headers=IDS)
    assert result.body == b"hello"
    client.flush(timeout=5)
    (event,) = server.events()
    assert (event["anonymousId"], event["sessionId"]) == ("anon_web-1", "sess_web-1")


def test_ids_are_unbound_after_the_request(recording_client: RecordingClient) -> None:
    """The binding ends with the request: nothing leaks into the server's context."""
    call_wsgi(DatabuddyWSGIMiddleware(hello, recording_client), headers=IDS)
    assert current_ids() == (None, None)


def test_without_ids_or_tracking_the_app_response_is_returned_as_is(
    recording_client: RecordingClient,
) -> None:
    """With nothing to bind or track, the middleware adds no wrapper at all."""
    body = [b"as is"]
    middleware = DatabuddyWSGIMiddleware(lambda environ, start: body, recording_client)
    assert middleware({"PATH_INFO": "/"}, lambda *a: None) is body
    assert recording_client.calls == []


def test_request_event_has_method_route_status_and_duration(
    recording_client: RecordingClient,
) -> None:
    """track_requests tracks one http_request with the route the app declared and the ids."""

    def app(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        environ[ROUTE_KEY] = "/orders/{order_id}"
        start_response("201 Created", [])
        return [b"created"]

    middleware = DatabuddyWSGIMiddleware(app, recording_client, track_requests=True)
    call_wsgi(middleware, path="/orders/42", method="POST", headers=IDS)
    (call,) = recording_client.calls
    assert call["name"] == "http_request"
    assert call["anonymous_id"] == "anon_web-1" and call["session_id"] == "sess_web-1"
    props = call["properties"]
    assert {k: props[k] for k in ("method", "route", "status_code")} == {
        "method": "POST",
        "route": "/orders/{order_id}",
        "status_code": 201,
    }
    assert props["duration_ms"] >= 0


def test_raw_path_is_sent_only_when_asked(recording_client: RecordingClient) -> None:
    """Without a known route the event has no route, unless raw_path_fallback is on."""
    call_wsgi(DatabuddyWSGIMiddleware(hello, recording_client, track_requests=True), path="/u/7")
    assert "route" not in recording_client.calls[0]["properties"]
    fallback = DatabuddyWSGIMiddleware(
        hello, recording_client, track_requests=True, raw_path_fallback=True
    )
    call_wsgi(fallback, path="/u/7")
    assert recording_client.calls[1]["properties"]["route"] == "/u/7"


def test_event_name_is_configurable(recording_client: RecordingClient) -> None:
    """event_name renames the per-request event."""
    middleware = DatabuddyWSGIMiddleware(
        hello, recording_client, track_requests=True, event_name="api_call"
    )
    call_wsgi(middleware)
    assert recording_client.calls[0]["name"] == "api_call"


def test_streaming_body_keeps_ids_and_is_timed_until_close(
    recording_client: RecordingClient,
) -> None:
    """A generator body sees the ids; the event comes at close(), timed over the whole body."""
    seen: list[Any] = []
    closed: list[bool] = []

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterator[bytes]:
        start_response("200 OK", [])

        def body() -> Iterator[bytes]:
            try:
                for i in range(3):
                    seen.append(current_ids())
                    time.sleep(0.02)  # the work being timed, not synchronisation
                    yield b"chunk%d" % i
            finally:
                closed.append(True)

        return body()

    middleware = DatabuddyWSGIMiddleware(app, recording_client, track_requests=True)
    environ = {"PATH_INFO": "/stream", "REQUEST_METHOD": "GET"}
    environ.update({"HTTP_X_DATABUDDY_ANONYMOUS_ID": "anon_s", "HTTP_X_DATABUDDY_SESSION_ID": "s"})
    response = middleware(environ, lambda *a: None)
    assert b"".join(response) == b"chunk0chunk1chunk2"
    assert recording_client.calls == []  # not before the server closes the response
    response.close()  # type: ignore[attr-defined]
    assert closed == [True]
    assert seen == [("anon_s", "s")] * 3
    assert recording_client.calls[0]["properties"]["duration_ms"] >= 60


def test_close_is_passed_on_and_event_tracked_once(recording_client: RecordingClient) -> None:
    """close() reaches the app's iterable; closing twice still tracks one event."""
    closed: list[int] = []

    class Body(list[bytes]):
        def close(self) -> None:
            closed.append(1)

    def app(environ: dict[str, Any], start_response: StartResponse) -> Body:
        start_response("200 OK", [])
        return Body([b"x"])

    response = DatabuddyWSGIMiddleware(app, recording_client, track_requests=True)(
        {"PATH_INFO": "/"}, lambda *a: None
    )
    list(response)
    response.close()  # type: ignore[attr-defined]
    response.close()  # type: ignore[attr-defined]
    assert closed == [1, 1]
    assert len(recording_client.calls) == 1


def test_app_exception_propagates_and_is_tracked_as_500(recording_client: RecordingClient) -> None:
    """An app that raises still yields an event (status 500); the exception is not swallowed."""

    def broken(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        raise RuntimeError("boom")

    middleware = DatabuddyWSGIMiddleware(broken, recording_client, track_requests=True)
    with pytest.raises(RuntimeError, match="boom"):
        call_wsgi(middleware)
    assert recording_client.calls[0]["properties"]["status_code"] == 500


def test_body_that_fails_midway_is_tracked_with_the_status_sent(
    recording_client: RecordingClient,
) -> None:
    """A body raising after the headers went out keeps the status the client was sent."""

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterator[bytes]:
        start_response("200 OK", [])
        yield b"first"
        raise RuntimeError("midway")

    middleware = DatabuddyWSGIMiddleware(app, recording_client, track_requests=True)
    with pytest.raises(RuntimeError, match="midway"):
        call_wsgi(middleware)
    assert recording_client.calls[0]["properties"]["status_code"] == 200


def test_exc_info_is_passed_to_the_server(recording_client: RecordingClient) -> None:
    """start_response(status, headers, exc_info) reaches the server's start_response intact."""
    got: list[Any] = []

    def app(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        try:
            raise ValueError("handled")
        except ValueError:
            import sys

            start_response("500 Internal Server Error", [], sys.exc_info())
        return [b"error page"]

    middleware = DatabuddyWSGIMiddleware(app, recording_client, track_requests=True)
    body = middleware({"PATH_INFO": "/"}, lambda *args: got.append(args))
    list(body)
    body.close()  # type: ignore[attr-defined]
    assert got[0][0] == "500 Internal Server Error" and got[0][2][0] is ValueError
    assert recording_client.calls[0]["properties"]["status_code"] == 500


def test_failing_tracking_never_breaks_the_response(caplog: pytest.LogCaptureFixture) -> None:
    """A client whose track() raises: the response is intact and one warning is logged."""

    class Exploding:
        def track(self, *args: Any, **kwargs: Any) -> None:
            raise RuntimeError("tracking is down")

    middleware = DatabuddyWSGIMiddleware(hello, Exploding(), track_requests=True)
    with caplog.at_level(logging.DEBUG, logger="databuddy"):
        for _ in range(3):
            assert call_wsgi(middleware).body == b"hello"
    levels = [r.levelno for r in caplog.records if "middleware failed" in r.getMessage()]
    assert levels == [logging.WARNING, logging.DEBUG, logging.DEBUG]


def test_failing_ids_reader_leaves_the_request_unbound(recording_client: RecordingClient) -> None:
    """An ids_from hook that raises costs the ids, never the request."""
    seen: list[Any] = []

    def app(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        seen.append(current_ids())
        return hello(environ, start_response)

    def broken_reader(headers: Any) -> Any:
        raise KeyError("no cookie jar")

    middleware = DatabuddyWSGIMiddleware(
        app, recording_client, track_requests=True, ids_from=broken_reader
    )
    assert call_wsgi(middleware, headers=IDS).body == b"hello"
    assert seen == [(None, None)]
    assert recording_client.calls[0]["anonymous_id"] is None


@pytest.mark.parametrize(
    "bad_id",
    ["a" * 257, "anon\x00id", "   ", ""],
    ids=["too-long", "control-char", "blank", "empty"],
)
def test_ids_the_server_would_refuse_are_ignored(
    server: DevServer, make_client: MakeClient, bad_id: str
) -> None:
    """An unusable header id is dropped, so the event is still delivered (without it)."""
    client = make_client()
    middleware = DatabuddyWSGIMiddleware(hello, client, track_requests=True)
    environ = {"PATH_INFO": "/", "REQUEST_METHOD": "GET", "HTTP_X_DATABUDDY_ANONYMOUS_ID": bad_id}
    response = middleware(environ, lambda *a: None)
    list(response)
    response.close()  # type: ignore[attr-defined]
    client.flush(timeout=5)
    (event,) = server.events()
    assert event["name"] == "http_request" and event["anonymousId"] is None


def test_a_custom_reader_sees_every_header_by_lower_case_name(
    recording_client: RecordingClient,
) -> None:
    """ids_from gets a mapping of all the request's headers (CGI names turned back)."""
    seen: list[dict[str, str]] = []

    def reader(headers: Any) -> Any:
        seen.append(dict(headers))
        assert "x-trace" in headers and headers["x-trace"] == "t1" and len(headers) == len(seen[0])
        with pytest.raises(KeyError):
            headers["absent"]
        return headers.get("x-user"), headers.get("absent", "fallback")

    middleware = DatabuddyWSGIMiddleware(
        hello, recording_client, track_requests=True, ids_from=reader
    )
    call_wsgi(middleware, headers={"X-User": "u1", "X-Trace": "t1"})
    assert {"x-user": "u1", "x-trace": "t1"}.items() <= seen[0].items()
    assert all(name == name.lower() and "_" not in name for name in seen[0])
    call = recording_client.calls[0]
    assert (call["anonymous_id"], call["session_id"]) == ("u1", "fallback")


def test_cookie_reader_fills_in_what_headers_lack(recording_client: RecordingClient) -> None:
    """ids_from_cookies reads the named cookies; a header, when present, wins."""
    reader = ids_from_cookies(anonymous="db_anon", session="db_sess")
    middleware = DatabuddyWSGIMiddleware(
        hello, recording_client, track_requests=True, ids_from=reader
    )
    cookie = 'theme=dark; db_anon="anon_cookie"; db_sess=sess_cookie'
    call_wsgi(middleware, headers={"Cookie": cookie})
    call_wsgi(middleware, headers={"Cookie": cookie, "X-Databuddy-Session-Id": "sess_header"})
    got = [(c["anonymous_id"], c["session_id"]) for c in recording_client.calls]
    assert got == [("anon_cookie", "sess_cookie"), ("anon_cookie", "sess_header")]


def test_flask_style_request_object_gives_the_route(recording_client: RecordingClient) -> None:
    """The rule on environ['werkzeug.request'].url_rule (as Flask leaves it) is the route."""

    class Rule:
        rule = "/users/<int:user_id>"

    class FlaskLikeRequest:
        url_rule = Rule()

    def app(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        environ["werkzeug.request"] = FlaskLikeRequest()
        return hello(environ, start_response)

    call_wsgi(DatabuddyWSGIMiddleware(app, recording_client, track_requests=True), path="/users/9")
    assert recording_client.calls[0]["properties"]["route"] == "/users/<int:user_id>"


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"client": object()}, TypeError),
        ({"ids_from": "x-anon"}, TypeError),
        ({"event_name": ""}, ValueError),
    ],
    ids=["not-a-client", "reader-not-callable", "empty-event-name"],
)
def test_bad_options_fail_at_construction(kwargs: dict[str, Any], error: type[Exception]) -> None:
    """Misconfiguration raises when the middleware is built, naming the argument."""
    options: dict[str, Any] = {"client": RecordingClient(), **kwargs}
    client = options.pop("client")
    name = next(iter(kwargs))
    with pytest.raises(error, match=name):
        DatabuddyWSGIMiddleware(hello, client, **options)


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_behind_a_real_wsgi_server(server: DevServer, make_client: MakeClient) -> None:
    """Served by wsgiref over HTTP: the request's event arrives with the browser's ids."""
    client = make_client()
    app = DatabuddyWSGIMiddleware(hello, client, track_requests=True, raw_path_fallback=True)
    httpd = make_server("127.0.0.1", 0, app, server_class=WSGIServer, handler_class=_QuietHandler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02})
    thread.start()
    try:
        with requests.Session() as session:
            answer = session.get(f"http://127.0.0.1:{httpd.server_port}/ping", headers=IDS)
        assert answer.text == "hello"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()
    client.flush(timeout=5)
    (event,) = server.wait_for_events(1)
    assert event["anonymousId"] == "anon_web-1"
    assert event["properties"]["route"] == "/ping"
    assert event["properties"]["status_code"] == 200

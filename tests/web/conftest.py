"""Fixtures for the web middleware: a recording client and bare WSGI / ASGI callers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.util import setup_testing_defaults

import pytest

from databuddy_otel import EventResponse

IDS = {"X-Databuddy-Anonymous-Id": "anon_web-1", "X-Databuddy-Session-Id": "sess_web-1"}


class RecordingClient:
    """Stands in for ``Databuddy``: keeps every ``track()`` call's keyword arguments."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def track(self, event: Any = None, /, **fields: Any) -> EventResponse:
        self.calls.append(fields)
        return EventResponse(True, "evt", None)


class WSGIResult:
    """What a WSGI call produced: status line, headers, body, and whether close() ran."""

    def __init__(self) -> None:
        self.status: str | None = None
        self.headers: list[tuple[str, str]] = []
        self.body = b""


def call_wsgi(
    app: Callable[..., Iterable[bytes]],
    *,
    path: str = "/",
    method: str = "GET",
    headers: dict[str, str] | None = None,
    close: bool = True,
) -> WSGIResult:
    """Call a WSGI app as a server would: start, iterate the body, then close it."""
    environ: dict[str, Any] = {"PATH_INFO": path, "REQUEST_METHOD": method}
    for name, value in (headers or {}).items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    setup_testing_defaults(environ)
    result = WSGIResult()

    def start_response(status: str, response_headers: Any, exc_info: Any = None) -> Any:
        result.status, result.headers = status, response_headers
        return lambda data: None

    body = app(environ, start_response)
    try:
        result.body = b"".join(body)
    finally:
        if close and hasattr(body, "close"):
            body.close()
    return result


def http_scope(
    path: str = "/", *, method: str = "GET", headers: dict[str, str] | None = None
) -> dict[str, Any]:
    """An ASGI ``http`` scope as a server builds it."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }


async def call_asgi(app: Any, scope: dict[str, Any]) -> list[dict[str, Any]]:
    """Run one ASGI request through ``app``; return the messages it sent."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


def run_asgi(app: Any, scope: dict[str, Any]) -> list[dict[str, Any]]:
    """:func:`call_asgi` on a fresh event loop."""
    return asyncio.run(call_asgi(app, scope))


@pytest.fixture
def recording_client() -> RecordingClient:
    """A fake client that records ``track()`` calls instead of sending them."""
    return RecordingClient()

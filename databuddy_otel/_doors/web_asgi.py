"""ASGI middleware: the request's ids bound while it is served, and a flush at shutdown.

See :mod:`databuddy_otel.web` for the overview and docs/web-frameworks.md.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from databuddy_otel._doors.web_request import ROUTE_KEY, Request, RequestEvents, status_code
from databuddy_otel._runtime import exit_hooks, sigterm
from databuddy_otel.context import bind_ids

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _scope_headers(scope: Scope) -> dict[str, str]:
    """The headers of an ASGI scope, by lower-case name; repeated ones joined."""
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers") or ():
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        sep = "; " if name == "cookie" else ", "  # a repeated header joined, as HTTP allows
        headers[name] = headers[name] + sep + value if name in headers else value
    return headers


def _describe_scope(scope: Scope) -> Request:
    route = scope.get(ROUTE_KEY)
    if route is None:
        # Starlette's (and so FastAPI's) router puts the route it matched in the scope.
        route = getattr(scope.get("route"), "path", None)
    return scope.get("method"), route, scope.get("root_path", "") + scope.get("path", "")


class DatabuddyASGIMiddleware(RequestEvents):
    """ASGI 3 middleware: bind the request's ids; with ``track_requests``, track the request;
    flush the client when the server shuts down.

    >>> app.add_middleware(DatabuddyASGIMiddleware, client=client)  # doctest: +SKIP

    ``http`` requests are handled; ``websocket`` passes through. On the ``lifespan``
    protocol, the client is flushed (within its ``shutdown_timeout``) after the app
    has run its own shutdown and before the server is told it is complete: uvicorn
    ends its workers by re-raising SIGTERM, so no exit hook would run after that.
    An app that does not speak the lifespan protocol (Django's ASGI handler) gets
    it answered for it, so the flush still happens.
    The status comes from ``http.response.start``; the event is tracked when the app
    returns, after the last body chunk. Its route is ``scope["databuddy.route"]`` if
    set, else Starlette's matched ``scope["route"].path``; failing both, the raw path
    with ``raw_path_fallback=True``, else no route.
    """

    app: ASGIApp

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope.get("type")
        if kind == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        if kind != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        ids = self.read_ids(lambda: _scope_headers(scope))
        if not self.track_requests:
            with bind_ids(*ids):
                await self.app(scope, receive, send)
            return
        status: list[int | None] = [None]

        async def send_and_watch(message: Message) -> None:
            if message.get("type") == "http.response.start":
                status[0] = status_code(message.get("status"))
            await send(message)

        failed = False
        try:
            with bind_ids(*ids):
                await self.app(scope, receive, send_and_watch)
        except Exception:
            failed = True
            raise
        finally:
            code = 500 if failed and status[0] is None else status[0]
            self.record(ids, code, started, lambda: _describe_scope(scope))

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        sigterm.lifespan_flush_ahead()  # so uvicorn's SIGTERM needs no flush of its own
        received: list[object] = []
        app_answered = False

        async def watch_receive() -> Message:
            message = await receive()
            received.append(message.get("type"))
            return message

        async def watch_send(message: Message) -> None:
            nonlocal app_answered
            app_answered = True
            if message.get("type") == "lifespan.shutdown.complete":
                await self._flush_client()
            await send(message)

        try:
            await self.app(scope, watch_receive, watch_send)
        except Exception:
            if app_answered:
                raise
            # The app does not speak lifespan: answer for it, and flush at shutdown.
            if "lifespan.startup" not in received:
                await receive()
            await send({"type": "lifespan.startup.complete"})
            while (await receive()).get("type") != "lifespan.shutdown":
                pass
            await self._flush_client()
            await send({"type": "lifespan.shutdown.complete"})

    async def _flush_client(self) -> None:
        """Flush the client without blocking the loop; never raises."""
        try:
            settings = getattr(self.client, "settings", None)
            timeout = getattr(settings, "shutdown_timeout", 5.0)
            aflush = getattr(self.client, "aflush", None)
            if aflush is not None:
                await aflush(timeout=timeout)
            # uvicorn ends the process by the re-raised SIGTERM next, past every exit hook.
            exit_hooks.release_settled()
        except Exception:
            self._internal_error("flushing at shutdown")

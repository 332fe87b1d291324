"""Web middleware: the browser's ids bound for each request, and one event per request.

The Databuddy web SDK keeps an anonymous id and a session id in the browser; the
front end sends them along, by default as the ``X-Databuddy-Anonymous-Id`` and
``X-Databuddy-Session-Id`` headers. The middleware reads them and binds them with
:func:`~databuddy_otel.context.bind_ids` while the request is served, so every
event tracked meanwhile carries them. With ``track_requests=True`` it also tracks
one ``http_request`` event per request (method, route template, status code,
duration in ms), like the Express middleware of the Node SDK's documentation.

Front doors: :class:`DatabuddyWSGIMiddleware`, :class:`DatabuddyASGIMiddleware` and
:func:`django_middleware`; no framework is imported. Nothing here may slow down or break
a response: each step of ours is guarded, logged once and skipped. See docs/web-frameworks.md.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, MutableMapping
from typing import Any, Optional, Protocol

from databuddy_otel.context import bind_ids
from databuddy_otel.limits import MAX_ID_LENGTH

__all__ = [
    "ANONYMOUS_ID_HEADER",
    "ROUTE_KEY",
    "SESSION_ID_HEADER",
    "DatabuddyASGIMiddleware",
    "DatabuddyWSGIMiddleware",
    "Tracker",
    "django_middleware",
    "ids_from_cookies",
    "ids_from_headers",
]

logger = logging.getLogger("databuddy")

#: The request header carrying the web SDK's anonymous id.
ANONYMOUS_ID_HEADER = "X-Databuddy-Anonymous-Id"
#: The request header carrying the web SDK's session id.
SESSION_ID_HEADER = "X-Databuddy-Session-Id"
#: WSGI environ / ASGI scope / Django ``request.META`` key an app may set to its route template.
ROUTE_KEY = "databuddy.route"

#: ``(anonymous_id, session_id)``; either may be ``None``.
Ids = tuple[Optional[str], Optional[str]]
#: Reads the ids from the request headers (a mapping with lower-case names).
IdsFrom = Callable[[Mapping[str, str]], Ids]
#: ``(method, route template or None, raw path)`` of one request.
Request = tuple[object, object, object]

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_NO_IDS: Ids = (None, None)


class Tracker(Protocol):
    """What the middleware needs of its client: a ``track()`` like ``Databuddy.track``."""

    def track(self, event: Any = None, /, **fields: Any) -> Any:
        """Track one event, as :meth:`databuddy_otel.Databuddy.track` does."""
        ...


def ids_from_headers(headers: Mapping[str, str]) -> Ids:
    """The default reader: the ``X-Databuddy-Anonymous-Id`` and ``-Session-Id`` headers."""
    return headers.get("x-databuddy-anonymous-id"), headers.get("x-databuddy-session-id")


def ids_from_cookies(*, anonymous: str, session: str) -> IdsFrom:
    """A reader for ids kept in the cookies named ``anonymous`` and ``session``.

    The documented headers still win when a request has them: they carry the
    web SDK's live values, while a cookie may be older.
    """

    def read(headers: Mapping[str, str]) -> Ids:
        anonymous_id, session_id = ids_from_headers(headers)
        if anonymous_id and session_id:
            return anonymous_id, session_id
        jar: dict[str, str] = {}
        # By hand, not http.cookies: SimpleCookie drops every cookie after one it dislikes.
        for part in headers.get("cookie", "").split(";"):
            name, sep, value = part.partition("=")
            if sep:
                jar.setdefault(name.strip(), value.strip().strip('"'))
        return anonymous_id or jar.get(anonymous), session_id or jar.get(session)

    return read


def _clean(value: object) -> str | None:
    """An id fit to send, else ``None``: an id the server would refuse must not cost the event."""
    value = value.strip() if isinstance(value, str) else ""
    return value if 0 < len(value) <= MAX_ID_LENGTH and value.isprintable() else None


def _status_code(status: object) -> int | None:
    try:
        return int(str(status).split(None, 1)[0])
    except (ValueError, IndexError):
        return None


class _RequestEvents:
    """The core the front doors share: options, reading the ids, tracking the request."""

    def __init__(
        self,
        app: Any,
        client: Tracker,
        *,
        track_requests: bool = False,
        ids_from: IdsFrom | None = None,
        event_name: str = "http_request",
        raw_path_fallback: bool = False,
    ) -> None:
        if not callable(getattr(client, "track", None)):
            raise TypeError(f"client must be a databuddy_otel.Databuddy, not {client!r}")
        if ids_from is not None and not callable(ids_from):
            raise TypeError(f"ids_from must be callable(headers) -> (anon, sess): {ids_from!r}")
        if not isinstance(event_name, str) or not event_name:
            raise ValueError(f"event_name must be a non-empty string, not {event_name!r}")
        self.app = app
        self.client = client
        self.track_requests = bool(track_requests)
        self.ids_from: IdsFrom = ids_from or ids_from_headers
        self.event_name = event_name
        self.raw_path_fallback = bool(raw_path_fallback)
        self._warned = False

    def read_ids(self, headers: Callable[[], Mapping[str, str]]) -> Ids:
        """The request's usable ids, via ``ids_from(headers())``; never raises."""
        try:
            anonymous_id, session_id = self.ids_from(headers())
            return _clean(anonymous_id), _clean(session_id)
        except Exception:
            self._internal_error("reading the request's ids")
            return _NO_IDS

    def record(
        self, ids: Ids, status: int | None, started: float, describe: Callable[[], Request]
    ) -> None:
        """Track the request's event (``describe()`` gives method, route, path); never raises."""
        try:
            duration_ms = round((time.perf_counter() - started) * 1000, 2)
            method, route, path = describe()
            properties: dict[str, Any] = {"method": method}
            if not isinstance(route, str) and self.raw_path_fallback:
                route = path
            if isinstance(route, str):
                properties["route"] = route
            properties["status_code"] = 500 if status is None else status
            properties["duration_ms"] = duration_ms
            self.client.track(
                name=self.event_name,
                properties=properties,
                anonymous_id=ids[0],
                session_id=ids[1],
            )
        except Exception:
            self._internal_error("tracking the request")

    def _internal_error(self, doing: str) -> None:
        # A warning the first time, then debug: a broken hook must not flood the logs.
        level = logging.DEBUG if self._warned else logging.WARNING
        self._warned = True
        logger.log(level, "Databuddy middleware failed %s; skipped", doing, exc_info=True)


def _environ_headers(environ: Mapping[str, Any]) -> dict[str, str]:
    """The headers of a WSGI environ (or Django ``request.META``), by lower-case name."""
    return {
        key[5:].replace("_", "-").lower(): value
        for key, value in environ.items()
        if key.startswith("HTTP_") and isinstance(value, str)
    }


class DatabuddyWSGIMiddleware(_RequestEvents):
    """WSGI middleware: bind the request's ids; with ``track_requests``, track the request.

    >>> app.wsgi_app = DatabuddyWSGIMiddleware(app.wsgi_app, client)  # doctest: +SKIP

    The ids stay bound while the body is produced, so a streaming body's events
    carry them too. The request's event is tracked when the server closes the
    response, so its duration covers the whole body. Its route is
    ``environ["databuddy.route"]`` if the app sets it, else the rule Flask matched;
    failing both, the raw path with ``raw_path_fallback=True``, else no route.
    """

    app: WSGIApp

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        ids = self.read_ids(lambda: _environ_headers(environ))
        if ids == _NO_IDS and not self.track_requests:
            return self.app(environ, start_response)
        response = _WSGIResponse(self, environ, start_response, ids, started)
        try:
            with bind_ids(*ids):
                response.body = self.app(environ, response.start_response)
        except Exception:
            response.finish(failed=True)
            raise
        return response


class _WSGIResponse:
    """The app's response iterable, bound to the request's ids and watched until ``close()``."""

    def __init__(
        self,
        middleware: DatabuddyWSGIMiddleware,
        environ: dict[str, Any],
        start_response: StartResponse,
        ids: Ids,
        started: float,
    ) -> None:
        self.middleware = middleware
        self.environ = environ
        self._start_response = start_response
        self.ids = ids
        self.started = started
        self.status: int | None = None
        self.rule: object = None
        self.body: Iterable[bytes] = ()
        self._failed = False
        self._finished = False

    def start_response(self, status: str, headers: Any, exc_info: Any = None) -> Any:
        self.status = _status_code(status)
        try:  # Flask's request object is in the environ, with the rule it matched, until it ends
            rule = getattr(self.environ.get("werkzeug.request"), "url_rule", None)
            self.rule = getattr(rule, "rule", None) or self.rule
        except Exception:
            pass
        if exc_info is None:
            return self._start_response(status, headers)
        return self._start_response(status, headers, exc_info)

    def __iter__(self) -> Iterator[bytes]:
        ids = self.ids
        try:
            with bind_ids(*ids):
                chunks = iter(self.body)
            while True:
                with bind_ids(*ids):  # around our call only: the server runs between chunks
                    try:
                        chunk = next(chunks)
                    except StopIteration:
                        return
                yield chunk
        except Exception:
            self._failed = True
            raise

    def close(self) -> None:
        try:
            close = getattr(self.body, "close", None)
            if close is not None:
                with bind_ids(*self.ids):
                    close()
        finally:
            self.finish(failed=self._failed)

    def finish(self, *, failed: bool) -> None:
        if self._finished or not self.middleware.track_requests:
            return
        self._finished = True
        status = 500 if failed and self.status is None else self.status
        self.middleware.record(self.ids, status, self.started, self._describe)

    def _describe(self) -> Request:
        env = self.environ
        path = env.get("SCRIPT_NAME", "") + env.get("PATH_INFO", "")
        return env.get("REQUEST_METHOD"), env.get(ROUTE_KEY, self.rule), path


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


class DatabuddyASGIMiddleware(_RequestEvents):
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
                status[0] = _status_code(message.get("status"))
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
        except Exception:
            self._internal_error("flushing at shutdown")


def _describe_django(request: Any) -> Request:
    route = request.META.get(ROUTE_KEY)
    if route is None:
        route = getattr(getattr(request, "resolver_match", None), "route", None)
        if isinstance(route, str) and not route.startswith("/"):
            route = "/" + route  # Django's patterns have no leading slash
    return request.method, route, request.path


def django_middleware(
    client: Tracker,
    *,
    track_requests: bool = False,
    ids_from: IdsFrom | None = None,
    event_name: str = "http_request",
    raw_path_fallback: bool = False,
) -> Callable[[Callable[[Any], Any]], Callable[[Any], Any]]:
    """A Django middleware factory: bind the request's ids; with ``track_requests``, track it.

    Give the result a module-level name and list its dotted path in ``MIDDLEWARE``::

        databuddy = django_middleware(client, track_requests=True)  # myproject/analytics.py
        MIDDLEWARE = ["myproject.analytics.databuddy", ...]          # settings.py

    The route is the URL pattern Django resolved (``request.resolver_match.route``); the
    duration ends when the view returns its response (a streamed body is not included).
    """
    events = _RequestEvents(
        None,
        client,
        track_requests=track_requests,
        ids_from=ids_from,
        event_name=event_name,
        raw_path_fallback=raw_path_fallback,
    )

    def factory(get_response: Callable[[Any], Any]) -> Callable[[Any], Any]:
        def middleware(request: Any) -> Any:
            started = time.perf_counter()
            ids = events.read_ids(lambda: _environ_headers(request.META))
            status: int | None = None
            try:
                with bind_ids(*ids):
                    response = get_response(request)
                status = getattr(response, "status_code", None)
                return response
            finally:
                if events.track_requests:
                    events.record(ids, status, started, lambda: _describe_django(request))

        return middleware

    return factory

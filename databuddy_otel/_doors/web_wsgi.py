"""WSGI and Django middleware: the request's ids bound while it is served.

See :mod:`databuddy_otel.web` for the overview and docs/web-frameworks.md.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from databuddy_otel._doors.web_request import (
    NO_IDS,
    ROUTE_KEY,
    Ids,
    IdsFrom,
    Request,
    RequestEvents,
    Tracker,
    status_code,
)
from databuddy_otel.context import bind_ids

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class _EnvironHeaders(Mapping[str, str]):
    """The headers of a WSGI environ (or Django ``request.META``), by lower-case name.

    A view, not a copy: the default reader looks up two headers, and building a
    dict of them all cost each request more than the rest of the middleware.
    """

    __slots__ = ("_environ",)

    def __init__(self, environ: Mapping[str, Any]) -> None:
        self._environ = environ

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value  # type: ignore[no-any-return]

    def get(self, name: str, default: Any = None) -> Any:  # the reader's one call, kept short
        value = self._environ.get("HTTP_" + name.upper().replace("-", "_"))
        return value if isinstance(value, str) else default

    def _names(self) -> list[str]:
        return [
            key[5:].replace("_", "-").lower()
            for key, value in self._environ.items()
            if key.startswith("HTTP_") and isinstance(value, str)
        ]

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())


class DatabuddyWSGIMiddleware(RequestEvents):
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
        ids = self.read_ids(lambda: _EnvironHeaders(environ))
        if ids == NO_IDS and not self.track_requests:
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
        self.status = status_code(status)
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
    events = RequestEvents(
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
            ids = events.read_ids(lambda: _EnvironHeaders(request.META))
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

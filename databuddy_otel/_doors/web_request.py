"""What the web middleware share: the request's ids, and one event per request.

The Databuddy web SDK keeps an anonymous id and a session id in the browser; the
front end sends them along, by default as the ``X-Databuddy-Anonymous-Id`` and
``X-Databuddy-Session-Id`` headers. :class:`RequestEvents` reads them (never
raising: a broken reader or an id the server would refuse costs nothing) and
tracks one ``http_request`` event per request when asked to.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Optional, Protocol

from typing_extensions import Unpack

from databuddy_otel._event.limits import MAX_ID_LENGTH
from databuddy_otel.models import TrackFields

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

NO_IDS: Ids = (None, None)


class Tracker(Protocol):
    """What the middleware needs of its client: a ``track()`` like ``Databuddy.track``."""

    def track(
        self, event: Any = None, properties: Any = None, /, **fields: Unpack[TrackFields]
    ) -> Any:
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


def status_code(status: object) -> int | None:
    try:
        return int(str(status).split(None, 1)[0])
    except (ValueError, IndexError):
        return None


class RequestEvents:
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
        self.track_requests: bool = bool(track_requests)
        self.ids_from: IdsFrom = ids_from or ids_from_headers
        self.event_name = event_name
        self.raw_path_fallback: bool = bool(raw_path_fallback)
        self._warned = False

    def read_ids(self, headers: Callable[[], Mapping[str, str]]) -> Ids:
        """The request's usable ids, via ``ids_from(headers())``; never raises."""
        try:
            anonymous_id, session_id = self.ids_from(headers())
            return _clean(anonymous_id), _clean(session_id)
        except Exception:
            self._internal_error("reading the request's ids")
            return NO_IDS

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

"""What the client adds to an event before it is checked: ids, defaults,
global properties and middleware.

Order, for every event: a generated ``eventId`` when absent, and the current
time as ``timestamp`` when absent (or ``0``); ids bound with
:func:`~databuddy_otel.bind_ids`; the client's ``namespace``, ``source`` and
``websiteId``; global properties (the event's own keys win); then each
middleware once, in order.

A middleware is a plain function that returns the event, a changed copy, or
``None`` to drop it; fields a returned copy leaves out keep the event's own
values. Privacy first: when a middleware raises or returns anything else, the
event is never sent (it is counted as ``middleware_error`` and reported). An
``async`` middleware is refused when it is added: ``track()`` does not await.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Iterable, Mapping
from typing import Any

from databuddy_otel._event.event import InvalidEvent, event_from_mapping
from databuddy_otel._runtime.config import Middleware
from databuddy_otel.context import UNBOUND, current_ids
from databuddy_otel.ids import uuid4_text


class MiddlewareFailed(Exception):
    """A middleware raised or returned something that is not an event."""


def check_middleware(middleware: object) -> Middleware:
    """``middleware`` if it can run inside ``track()``; ``TypeError`` otherwise."""
    call = getattr(middleware, "__call__", None)  # noqa: B004 - async __call__ counts too
    if inspect.iscoroutinefunction(middleware) or inspect.iscoroutinefunction(call):
        raise TypeError(
            f"middleware {middleware!r} is async; track() runs middleware synchronously and "
            "never awaits. Use a plain function, and do any async work before track()"
        )
    if not callable(middleware):
        raise TypeError(f"middleware must be callable(event) -> event | None, not {middleware!r}")
    return middleware


class Enricher:
    def __init__(self, defaults: Mapping[str, str], middleware: Iterable[Middleware] = ()) -> None:
        self.defaults = dict(defaults)
        self.globals: dict[str, Any] = {}
        self.middleware: list[Middleware] = [check_middleware(m) for m in middleware]

    def enrich(self, data: dict[str, Any]) -> tuple[dict[str, Any] | None, bool, int | None]:
        """Fill ``data`` in place and run middleware.

        Returns the event (``None`` when a middleware dropped it), whether the
        caller chose its ``eventId``, and the time used as its timestamp (``None``
        when the caller gave one). Raises :class:`MiddlewareFailed`.
        """
        get = data.get
        caller_id = get("eventId") is not None
        if not caller_id:
            data["eventId"] = uuid4_text()
        now = None
        timestamp = get("timestamp")
        if timestamp is None or (timestamp == 0 and type(timestamp) in (int, float)):
            now = data["timestamp"] = time.time_ns() // 1_000_000
        bound = current_ids()
        if bound is not UNBOUND:
            if get("anonymousId") is None and bound.anonymous_id is not None:
                data["anonymousId"] = bound.anonymous_id
            if get("sessionId") is None and bound.session_id is not None:
                data["sessionId"] = bound.session_id
        for key, value in self.defaults.items():
            if get(key) is None:
                data[key] = value
        if self.globals:
            props = data.get("properties")
            if props is None or isinstance(props, Mapping):
                data["properties"] = {**self.globals, **(props or {})}
        if self.middleware:
            return self._run_middleware(data), caller_id, now
        return data, caller_id, now

    def _run_middleware(self, data: dict[str, Any]) -> dict[str, Any] | None:
        for middleware in list(self.middleware):
            try:
                result = middleware(data)
            except Exception as exc:
                raise MiddlewareFailed(
                    f"middleware {_name(middleware)} raised {type(exc).__name__}: {exc}"
                ) from exc
            if result is None:
                return None
            if result is data:
                continue
            if inspect.iscoroutine(result):
                result.close()  # never awaited; closing it avoids a RuntimeWarning
            if not isinstance(result, Mapping):
                raise MiddlewareFailed(
                    f"middleware {_name(middleware)} returned {type(result).__name__}, "
                    "not the event (or None to drop it)"
                )
            try:
                data = {**data, **event_from_mapping(result)}
            except InvalidEvent as exc:
                raise MiddlewareFailed(f"middleware {_name(middleware)} returned {exc}") from None
        return data


def _name(middleware: object) -> str:
    return getattr(middleware, "__qualname__", None) or repr(middleware)

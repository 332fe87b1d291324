"""What the client adds to an event before it is checked: ids, defaults,
global properties and middleware.

Order, for every event: a generated ``eventId`` and ``timestamp`` when absent;
ids bound with :func:`~databuddy_otel.bind_ids`; the client's ``namespace``,
``source`` and ``websiteId``; global properties (the event's own keys win);
then each middleware once, in order. A middleware returns the event, a changed
copy, or ``None`` to drop it; one that raises is logged and skipped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any

from databuddy_otel.config import Middleware
from databuddy_otel.context import UNBOUND, current_ids
from databuddy_otel.ids import uuid4_text


class Enricher:
    def __init__(
        self,
        defaults: Mapping[str, str],
        middleware: Iterable[Middleware] = (),
        log: logging.Logger | None = None,
    ) -> None:
        self.defaults = dict(defaults)
        self.globals: dict[str, Any] = {}
        self.middleware: list[Middleware] = list(middleware)
        self._log = log or logging.getLogger("databuddy")

    def enrich(self, data: dict[str, Any]) -> tuple[dict[str, Any] | None, bool, int | None]:
        """Fill ``data`` in place and run middleware.

        Returns the event (``None`` when a middleware dropped it), whether the
        caller chose its ``eventId``, and the time used as its timestamp (``None``
        when the caller gave one).
        """
        get = data.get
        caller_id = get("eventId") is not None
        if not caller_id:
            data["eventId"] = uuid4_text()
        now = None
        if get("timestamp") is None:
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
            except Exception:
                self._log.exception("Databuddy middleware %r raised; skipped", middleware)
                continue
            if result is None:
                return None
            if isinstance(result, Mapping):
                data = dict(result)
            else:
                self._log.warning(
                    "Databuddy middleware %r returned %s; ignored",
                    middleware,
                    type(result).__name__,
                )
        return data

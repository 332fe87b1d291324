"""Preparation: one event dict enriched, checked and serialized, or the answer why not.

What ``track()``, ``batch()`` and the front doors' port share between taking a
call and offering it to the queue: the enrichment (ids, defaults, bound ids,
global properties, middleware), the server's checks and the serialization, and
the counting and reporting of an event that goes no further (invalid, dropped by
a middleware, a middleware that failed).
"""

from __future__ import annotations

from typing import Any

from databuddy_otel._event.enrichment import Enricher, MiddlewareFailed
from databuddy_otel._event.event import (
    InvalidEvent,
    Prepared,
    serialize,
    session_id_kept,
    text_or_none,
)
from databuddy_otel._queue.ledger import Ledger
from databuddy_otel._runtime.sdk_log import Log
from databuddy_otel._wire.protocol import Protocol
from databuddy_otel.models import INVALID, MIDDLEWARE_ERROR, EventResponse, Undelivered


class Preparation:
    """A client's way from an event dict to a serialized body; thread-safe."""

    def __init__(self, enricher: Enricher, protocol: Protocol, ledger: Ledger, log: Log) -> None:
        self.enricher = enricher
        self.protocol = protocol
        self.ledger = ledger
        self.log = log
        self._warned_session = False

    def prepare(self, data: dict[str, Any]) -> Prepared | EventResponse:
        """Enrich, check and serialize one event; an answer when it goes no further.

        The hot path: a plain tuple stands in for the :class:`Prepared` it returns.
        """
        try:
            event, caller_id, now = self.enricher.enrich(data)
        except MiddlewareFailed as exc:
            event_id, name = text_or_none(data.get("eventId")), text_or_none(data.get("name"))
            self.log.error("Databuddy event %r not sent: %s", name, exc)
            self.ledger.count(
                MIDDLEWARE_ERROR, [Undelivered(event_id, name, MIDDLEWARE_ERROR, str(exc))]
            )
            return EventResponse(False, event_id, str(exc))
        if event is None:
            self.ledger.count_filtered()
            return EventResponse(True, text_or_none(data.get("eventId")), None)
        own_id = not caller_id and not self.enricher.middleware  # a UUID of ours
        try:
            body = serialize(event, protocol=self.protocol, now_ms=now, own_id=own_id)
        except InvalidEvent as exc:
            return self.invalid(text_or_none(event.get("eventId")), event.get("name"), str(exc))
        if "sessionId" in event and not session_id_kept(event["sessionId"]):
            self._session_id_dropped(event["sessionId"])
        return (body, event["name"], str(event["eventId"]), caller_id)  # type: ignore[return-value]

    def invalid(self, event_id: str | None, name: object, message: str) -> EventResponse:
        """Count and report an event the checks refused; the caller's answer."""
        self.log.warning("Databuddy event not tracked: %s", message)
        name = text_or_none(name)
        self.ledger.count(INVALID, [Undelivered(event_id, name, INVALID, message)])
        return EventResponse(False, event_id, message)

    def _session_id_dropped(self, session_id: str) -> None:
        self.ledger.count_session_id_dropped()
        if not self._warned_session:
            self._warned_session = True
            self.log.warning(
                "Databuddy: session id %r will be stored as absent: the server keeps only "
                "ids of letters, digits, '_' and '-', at most 128 long (sess_<uuid4> fits)",
                session_id[:40],
            )

"""The shapes the public API takes and returns, named as the Node SDK names them."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Optional, Union

if sys.version_info >= (3, 11):
    from typing import NotRequired, TypedDict
else:  # pragma: no cover - exercised on older interpreters only
    from typing_extensions import NotRequired, TypedDict

__all__ = [
    "BatchEventInput",
    "BatchEventResponse",
    "CustomEventInput",
    "EventResponse",
    "Undelivered",
]


class CustomEventInput(TypedDict):
    """One custom event, as ``track()`` takes it (camelCase keys as documented)."""

    name: str
    properties: NotRequired[Optional[dict[str, Any]]]
    anonymousId: NotRequired[Optional[str]]
    sessionId: NotRequired[Optional[str]]
    eventId: NotRequired[Optional[str]]
    #: Integer milliseconds since the epoch (a ``datetime`` is converted).
    timestamp: NotRequired[Optional[Union[int, float, Any]]]
    namespace: NotRequired[Optional[str]]
    source: NotRequired[Optional[str]]
    websiteId: NotRequired[Optional[str]]


class BatchEventInput(CustomEventInput):
    """One event of ``batch()``; ``type`` is ``"custom"`` (the only kind sent server-side)."""

    type: NotRequired[str]


class EventResponse(NamedTuple):
    """What ``track()`` returns: it never raises, it reports."""

    success: bool
    event_id: Optional[str] = None
    error: Optional[str] = None


@dataclass(frozen=True)
class BatchEventResponse:
    """What ``batch()`` and ``flush()`` return.

    ``processed`` counts the events the server accepted; ``results`` has one
    :class:`EventResponse` per event handled by the call.
    """

    success: bool
    processed: int = 0
    results: list[EventResponse] = field(default_factory=list)
    error: Optional[str] = None

    @classmethod
    def of(cls, results: list[EventResponse]) -> BatchEventResponse:
        """Success when every event succeeded; ``error`` is the first failure's."""
        processed = sum(1 for r in results if r.success)
        failed = next((r.error for r in results if not r.success), None)
        return cls(failed is None, processed, results, failed)


class Undelivered(NamedTuple):
    """An event that will not reach the server, as given to ``on_undelivered``."""

    event_id: Optional[str]
    name: Optional[str]
    reason: str
    error: str

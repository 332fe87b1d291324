"""The shapes the public API takes and returns, named as the Node SDK names them."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, NamedTuple, Optional, Protocol, Union

if sys.version_info >= (3, 11):
    from typing import NotRequired, TypedDict
else:  # pragma: no cover - exercised on older interpreters only
    from typing_extensions import NotRequired, TypedDict

__all__ = [
    "EXPORT_ERROR",
    "INVALID",
    "LOSS_REASONS",
    "MIDDLEWARE_ERROR",
    "QUEUE_FULL",
    "REJECTED",
    "RETRIES_EXHAUSTED",
    "SHUTDOWN",
    "SPOOL_CORRUPT",
    "SPOOL_FULL",
    "BatchEventInput",
    "BatchEventResponse",
    "CustomEventInput",
    "EventResponse",
    "Stats",
    "Undelivered",
]

# Why an event will not reach the server: the keys of ``Stats.undelivered`` and
# the ``reason`` of each ``Undelivered`` given to ``on_undelivered``.
#: The memory queue was full (and no spool could take the event).
QUEUE_FULL = "queue_full"
#: The server refused the event for good (a 4xx other than 408, 425 and 429).
REJECTED = "rejected"
#: Retryable failures until the retry deadline passed (only without a spool).
RETRIES_EXHAUSTED = "retries_exhausted"
#: The client shut down before the event could be delivered (only without a spool).
SHUTDOWN = "shutdown"
#: The event breaks a server limit; it was never sent.
INVALID = "invalid"
#: An unexpected failure inside the SDK while queuing or exporting the event.
EXPORT_ERROR = "export_error"
#: A middleware raised or returned something that is not an event; never sent.
MIDDLEWARE_ERROR = "middleware_error"
#: The spool reached ``spool_max_bytes``.
SPOOL_FULL = "spool_full"
#: A spool record that could not be read back (a crash mid-write, a damaged file).
SPOOL_CORRUPT = "spool_corrupt"

LOSS_REASONS = (
    QUEUE_FULL,
    REJECTED,
    RETRIES_EXHAUSTED,
    SHUTDOWN,
    INVALID,
    EXPORT_ERROR,
    MIDDLEWARE_ERROR,
    SPOOL_FULL,
    SPOOL_CORRUPT,
)


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
    #: SDK 2.6, ``/track`` only.
    profileId: NotRequired[Optional[str]]
    #: ``True``, ``False`` or ``"auto"``; SDK 2.6, ``/track`` only.
    anonymizeVisitorIds: NotRequired[Optional[Union[bool, str]]]


class TrackFields(TypedDict, total=False):
    """The keyword form of ``track()``: ``client.track(name="signup", properties={...})``."""

    name: str
    properties: Optional[Mapping[str, Any]]
    anonymous_id: Optional[str]
    session_id: Optional[str]
    event_id: Optional[str]
    #: Integer milliseconds since the epoch, or a ``datetime``.
    timestamp: Optional[Union[int, float, datetime]]
    namespace: Optional[str]
    source: Optional[str]
    website_id: Optional[str]
    profile_id: Optional[str]
    anonymize_visitor_ids: Optional[Union[bool, Literal["auto"]]]


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
    def of(cls, results: list[EventResponse], processed: int | None = None) -> BatchEventResponse:
        """Success when every event succeeded; ``error`` is the first failure's.

        ``processed`` defaults to the successes: pass it when some of them were
        never sent (a duplicate skipped, an event a middleware dropped).
        """
        if processed is None:
            processed = sum(1 for r in results if r.success)
        failed = next((r.error for r in results if not r.success), None)
        return cls(failed is None, processed, results, failed)


@dataclass(frozen=True)
class Stats:
    """A snapshot of a client's counters (``client.stats()``).

    ``queued`` events are in memory, waiting or being sent; ``spooled`` wait in the
    spool on disk only (with ``spool_dir``); ``delivered`` were accepted by the
    server; ``undelivered`` counts, by reason (:data:`LOSS_REASONS`), every event
    that never will be; ``deduplicated`` counts events skipped because their
    ``eventId`` was already delivered or on its way; ``filtered`` those a
    middleware dropped on purpose; ``reachable`` is ``False`` while attempts to
    reach the server fail without any HTTP answer; ``unspooled`` counts events
    accepted while the spool could not be written (they lived in memory only);
    ``invalid_session_ids`` counts events sent with a ``sessionId`` the server
    stores as absent.
    """

    queued: int
    delivered: int
    undelivered: dict[str, int] = field(default_factory=dict)
    deduplicated: int = 0
    filtered: int = 0
    reachable: bool = True
    spooled: int = 0
    unspooled: int = 0
    invalid_session_ids: int = 0


class Undelivered(NamedTuple):
    """An event that will not reach the server, as given to ``on_undelivered``."""

    event_id: Optional[str]
    name: Optional[str]
    reason: str
    error: str


# -- the transport seam (``transport=``) ---------------------------------------------

#: ``verify`` as ``requests`` takes it: True, False, or a CA bundle path.
Verify = Union[bool, str]


@dataclass(frozen=True)
class HttpAnswer:
    """A response as far as delivery needs it (header names lower-cased)."""

    status: int
    text: str
    headers: dict[str, str]


class TransportError(Exception):
    """The request got no HTTP answer (refused, reset, timed out, DNS).

    ``certain``: the cause is plain at once (the connection was refused, the name did
    not resolve, TLS failed), so the outage is announced at this first attempt rather
    than after a grace that lets a blip pass unannounced.
    """

    def __init__(self, message: str = "", *, certain: bool = False) -> None:
        super().__init__(message)
        self.certain = certain


class Transport(Protocol):
    """What ``transport=`` takes: POST one body, within ``timeout`` seconds in all.

    The default sends through ``requests``; tests and other HTTP stacks plug in here.
    """

    def post(self, url: str, body: bytes, headers: dict[str, str], timeout: float) -> HttpAnswer:
        """Send ``body``; the answer, or :class:`TransportError` when none came in time."""
        ...

    def close(self) -> None:
        """Let go of connections; called once, when the client or exporter shuts down."""
        ...

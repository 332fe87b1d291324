"""What the ingest server's handler threads share: the store, the credentials, the
armed faults, the request counter, the kept refusals and the live activity feed.

Storing events and publishing them happen under one lock, and so do a viewer's
subscription and its first snapshot, so a viewer sees every event exactly once.
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from databuddy_otel.devserver._feed import Feed, Message, Subscription
from databuddy_otel.devserver._refusals import Refusals
from databuddy_otel.devserver._staged import CannedReply, Trickle
from databuddy_otel.devserver._store import Store, record
from databuddy_otel.devserver._validation import ValidEvent

#: Message kinds of the activity feed: stored events, a refusal, a cleared store
#: (what the viewer shows), and one summary per ingest request (the terminal's log).
VIEWER_KINDS = frozenset({"events", "refusal", "cleared"})
REQUEST_KINDS = frozenset({"request", "cleared"})


@dataclass(frozen=True)
class Fault:
    """What to do to one ingest request instead of (or on top of) answering it."""

    kind: Literal["fail", "delay", "drop", "reply", "trickle"]
    #: The DevServer control that armed it (``"fail_next"``, ``"set_outage"``, ...),
    #: as the refusal it causes names it.
    source: str
    status: int = 503
    retry_after: str | None = None
    seconds: float = 0.0
    #: For "drop" and "trickle": store the events first, then misbehave.
    after_processing: bool = False
    #: For "reply" and "trickle": the answer written instead of the usual one.
    answer: CannedReply | Trickle | None = None

    @property
    def processes(self) -> bool:
        """Whether the request is answered as usual (events stored) before the fault."""
        return self.kind == "delay" or (self.kind in ("drop", "trickle") and self.after_processing)


#: What a flaky server answers instead (DevServer.set_flaky): busy, failing, or silent.
_FLAKY_FAULTS = (
    Fault("fail", source="set_flaky", status=503),
    Fault("fail", source="set_flaky", status=429, retry_after="1"),
    Fault("fail", source="set_flaky", status=500),
    Fault("drop", source="set_flaky"),
)


class IngestState:
    """What the handler threads share with ``DevServer``: store, credentials, faults."""

    def __init__(
        self, store: Store, *, client_ids: frozenset[str] | None, api_keys: frozenset[str] | None
    ) -> None:
        self.store = store
        self.client_ids = client_ids
        self.api_keys = api_keys
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._armed: deque[Fault] = deque()  # one entry per request to fault
        self._outage: Fault | None = None
        self._flaky: tuple[float, random.Random] | None = None
        self._request_count = 0
        self._first_request_id = store.max_request_id() + 1
        self._faulted: set[int] = set()
        self.feed = Feed()
        self.refusals = Refusals()
        # Store-then-publish and subscribe-then-snapshot are each atomic under it.
        self._publishing = threading.Lock()

    def arm(self, fault: Fault, n: int) -> None:
        with self._lock:
            self._armed.extend([fault] * n)

    def set_outage(self, fault: Fault | None) -> None:
        with self._lock:
            self._outage = fault

    def set_flaky(self, rate: float, seed: int | None) -> None:
        with self._lock:
            self._flaky = (rate, random.Random(seed)) if rate > 0 else None

    def clear_faults(self) -> None:
        with self._lock:
            self._armed.clear()
            self._outage = None
            self._flaky = None

    def begin_ingest(self) -> tuple[int, Fault | None]:
        """Count one ingest request; return its id and the fault that applies to it."""
        with self._lock:
            request_id = self._first_request_id + self._request_count
            self._request_count += 1
            if self._outage is not None:
                return request_id, self._outage
            if self._armed:
                return request_id, self._armed.popleft()
            if self._flaky is not None:
                rate, rng = self._flaky
                if rng.random() < rate:
                    return request_id, rng.choice(_FLAKY_FAULTS)
            return request_id, None

    def count_request(self) -> int:
        """Count one ingest request refused before any fault applies; return its id."""
        with self._lock:
            request_id = self._first_request_id + self._request_count
            self._request_count += 1
            return request_id

    def mark_faulted(self, request_id: int) -> None:
        with self._lock:
            self._faulted.add(request_id)

    def faulted_request_ids(self) -> set[int]:
        with self._lock:
            return set(self._faulted)

    @property
    def request_count(self) -> int:
        with self._lock:
            return self._request_count

    # -- what the feed and the viewer see ---------------------------------------------

    def store_events(
        self,
        events: Sequence[ValidEvent],
        *,
        protocol: str,
        request_id: int,
        received_at: int,
        dedup: bool = False,
    ) -> list[bool]:
        """Store ``events`` (see :meth:`Store.add`) and show the stored ones to viewers."""
        with self._publishing:
            stored = self.store.add(
                events,
                protocol=protocol,
                request_id=request_id,
                received_at=received_at,
                dedup=dedup,
            )
            if any(stored) and self.feed.wants("events"):
                kept = [event for event, ok in zip(events, stored) if ok]
                records = [
                    record(event, protocol=protocol, request_id=request_id, received_at=received_at)
                    for event in reversed(kept)
                ]
                self.feed.publish({"kind": "events", "events": records})
        return stored

    def refuse(self, refusal: dict[str, Any]) -> None:
        """Keep a refusal (see ``_refusals.refusal``) and show it to viewers."""
        with self._publishing:
            kept = self.refusals.add(refusal)
            self.feed.publish({"kind": "refusal", "refusal": kept})

    def note_request(self, summary: Message) -> None:
        """Publish one ingest request's summary (the terminal's log line)."""
        self.feed.publish({"kind": "request", **summary})

    def clear(self) -> int:
        """Delete every stored event and kept refusal; every viewer empties. Returns
        how many events went."""
        with self._publishing:
            deleted = self.store.clear()
            self.refusals.clear()
            at = int(time.time() * 1000)
            self.feed.publish({"kind": "cleared", "deleted": deleted, "at": at})
        return deleted

    def open_viewer(self, *, latest: int) -> tuple[Subscription, Message]:
        """Subscribe a viewer; return the subscription and what it shows first.

        The snapshot holds the newest ``latest`` events (newest first), the count of
        events per name, and the kept refusals. The caller closes the subscription.
        """
        with self._publishing:
            subscription = self.feed.subscribe(VIEWER_KINDS)
            try:
                snapshot: Message = {
                    "kind": "snapshot",
                    "events": self.store.latest(latest),
                    "counts": self.store.counts(),
                    "refusals": self.refusals.newest_first(),
                }
            except BaseException:
                subscription.close()
                raise
        return subscription, snapshot

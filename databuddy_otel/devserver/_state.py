"""What the ingest server's handler threads share: the store, the credentials, the
armed faults and the request counter (the fault-injection controls of ``DevServer``)."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from typing import Literal

from databuddy_otel.devserver._store import Store


@dataclass(frozen=True)
class Fault:
    """What to do to one ingest request instead of (or on top of) answering it."""

    kind: Literal["fail", "delay", "drop"]
    status: int = 503
    retry_after: str | None = None
    seconds: float = 0.0
    after_processing: bool = False


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
        self._request_count = 0
        self._first_request_id = store.max_request_id() + 1
        self._faulted: set[int] = set()

    def arm(self, fault: Fault, n: int) -> None:
        with self._lock:
            self._armed.extend([fault] * n)

    def set_outage(self, fault: Fault | None) -> None:
        with self._lock:
            self._outage = fault

    def clear_faults(self) -> None:
        with self._lock:
            self._armed.clear()
            self._outage = None

    def begin_ingest(self) -> tuple[int, Fault | None]:
        """Count one ingest request; return its id and the fault that applies to it."""
        with self._lock:
            request_id = self._first_request_id + self._request_count
            self._request_count += 1
            if self._outage is not None:
                return request_id, self._outage
            return request_id, self._armed.popleft() if self._armed else None

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

"""Delivering serialized events: chunking, retries, backoff and deadlines.

The middle layer between the exporters (which map data to events) and the
transport (which moves bytes). A chunk is retried on connection errors,
timeouts, 408, 425, 429 and 5xx with exponential backoff and full jitter,
honouring ``Retry-After`` (clamped), until its deadline; a 413 splits it in
halves; other refusals are final. Shutdown interrupts every wait.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple, Optional, Protocol

from databuddy_otel._sending import sending
from databuddy_otel.limits import MAX_BODY_BYTES, MAX_EVENTS_PER_REQUEST
from databuddy_otel.protocol import FAIL, RETRY, SPLIT, SUCCESS, Outcome, Wire
from databuddy_otel.transport import Transport, TransportError

logger = logging.getLogger("databuddy")

SHUTDOWN_MESSAGE = "client shut down before the event could be delivered"

# Why an event did not reach the server (the keys of ``Stats.undelivered``).
QUEUE_FULL = "queue_full"
REJECTED = "rejected"
RETRIES_EXHAUSTED = "retries_exhausted"
SHUTDOWN = "shutdown"
INVALID = "invalid"
EXPORT_ERROR = "export_error"


class Failure(NamedTuple):
    """Why one event was not delivered: a reason (counter name) and a message."""

    reason: str
    message: str


@dataclass(frozen=True)
class RetryPolicy:
    """How long and how often to retry one chunk of events (seconds)."""

    deadline: float = 30.0
    initial_backoff: float = 0.1
    max_backoff: float = 5.0
    max_retry_after: float = 30.0

    def backoff(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.max_retry_after)
        ceiling = min(self.max_backoff, self.initial_backoff * (2**attempt))
        return random.uniform(ceiling / 2, ceiling)


def chunk(bodies: Sequence[str], max_events: int = MAX_EVENTS_PER_REQUEST) -> list[list[str]]:
    """Split serialized events into request-sized groups (count and bytes)."""
    chunks: list[list[str]] = []
    current: list[str] = []
    size = 2  # the brackets
    for body in bodies:
        extra = len(body) + 1
        if current and (len(current) >= max_events or size + extra > MAX_BODY_BYTES):
            chunks.append(current)
            current, size = [], 2
        current.append(body)
        size += extra
    if current:
        chunks.append(current)
    return chunks


class Health(Protocol):
    """Told when each attempt starts and whether it reached the server."""

    def attempt_started(self) -> None: ...

    def attempt_finished(self, reached: bool) -> None: ...


class Delivery:
    """Sends serialized events for one :class:`Wire` through one :class:`Transport`.

    ``health`` hears of every attempt (:class:`Health`), so the client can
    tell an outage from a merely busy worker.
    """

    def __init__(
        self,
        wire: Wire,
        transport: Transport,
        *,
        timeout: float = 10.0,
        policy: RetryPolicy | None = None,
        health: Health | None = None,
        log: logging.Logger | None = None,
    ) -> None:
        self.wire = wire
        self.transport = transport
        self.timeout = timeout
        self.policy = policy or RetryPolicy()
        self._health = health
        self._log = log or logger
        self._headers = wire.headers()
        self._stopped = threading.Event()

    def stop(self) -> None:
        """Interrupt backoff waits; chunks still retrying fail with a shutdown message."""
        self._stopped.set()

    def send(
        self, bodies: Sequence[str], *, single: bool = False, deadline: float | None = None
    ) -> list[Optional[Failure]]:
        """Deliver ``bodies``; return one entry per event, ``None`` when accepted.

        ``single`` sends one event as a JSON object instead of an array (the
        un-batched ``track()``). ``deadline`` is a ``time.monotonic()`` value;
        by default each chunk gets the policy's deadline from its first attempt.
        """
        results: list[Optional[Failure]] = []
        with sending():
            for group in chunk(bodies):
                end = deadline if deadline is not None else time.monotonic() + self.policy.deadline
                batch = not (single and len(group) == 1)
                results.extend(self._send_chunk(group, end, batch=batch))
        return results

    def _send_chunk(
        self, group: list[str], deadline: float, *, batch: bool
    ) -> list[Optional[Failure]]:
        if self._stopped.is_set():
            return [Failure(SHUTDOWN, SHUTDOWN_MESSAGE)] * len(group)
        attempt = 0
        while True:
            outcome = self._attempt(group, deadline, batch=batch)
            if self._health is not None:
                # Any answer but a retryable one shows the server is reachable.
                self._health.attempt_finished(outcome.verdict != RETRY)
            if outcome.verdict == SUCCESS:
                return [None if e is None else Failure(REJECTED, e) for e in outcome.errors] or [
                    None
                ] * len(group)
            if outcome.verdict == SPLIT and len(group) > 1:
                half = len(group) // 2
                return self._send_chunk(group[:half], deadline, batch=True) + self._send_chunk(
                    group[half:], deadline, batch=True
                )
            message = outcome.message or "Unknown error from server"
            if outcome.verdict in (FAIL, SPLIT):
                self._log.warning("Databuddy refused %d event(s): %s", len(group), message)
                return [Failure(REJECTED, message)] * len(group)
            wait = self.policy.backoff(attempt, outcome.retry_after)
            attempt += 1
            if time.monotonic() + wait >= deadline:
                self._log.warning(
                    "Giving up on %d event(s) after %d attempt(s): %s", len(group), attempt, message
                )
                failure = Failure(
                    RETRIES_EXHAUSTED, f"{message} (gave up after {attempt} attempts)"
                )
                return [failure] * len(group)
            self._log.debug("Attempt %d failed (%s); retrying in %.2fs", attempt, message, wait)
            if self._stopped.wait(wait):
                return [Failure(SHUTDOWN, SHUTDOWN_MESSAGE)] * len(group)

    def _attempt(self, group: list[str], deadline: float, *, batch: bool) -> Outcome:
        timeout = max(0.05, min(self.timeout, deadline - time.monotonic()))
        if self._health is not None:
            self._health.attempt_started()
        try:
            answer = self.transport.post(
                self.wire.url(batch=batch),
                Wire.body(group, batch=batch),
                self._headers,
                timeout,
            )
        except TransportError as exc:
            return Outcome(RETRY, str(exc))
        except Exception as exc:  # a third-party transport misbehaving
            return Outcome(RETRY, f"Network request failed: {type(exc).__name__}")
        return self.wire.interpret(
            answer.status, answer.text, answer.headers, len(group), batch=batch
        )

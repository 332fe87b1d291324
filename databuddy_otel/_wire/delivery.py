"""Delivering serialized events: chunking, retries, backoff and deadlines.

The middle layer between those who have events (the queue's senders, the
exporters) and the transport (which moves bytes). A chunk is retried on
connection errors, timeouts, 408, 425, 429, 5xx and answers that are not the
server's (a redirect, a proxy's page) with exponential backoff (each wait drawn
between half and all of a ceiling that doubles per attempt, up to
``max_backoff``), and never sooner than ``Retry-After`` asks (clamped to
``max_retry_after``), until its deadline; a 413 splits it in halves; the
server's refusals are final. :meth:`Delivery.stop` interrupts every wait.

A server that says "retry now" (``Retry-After: 0``, a negative value, a past
date) still gets the backoff: at most 17 attempts per chunk in the default 30 s
deadline, and past the first 3 s no more than one every 2.5 s.

:class:`Reachability` is the outage rule: the server counts as down once
attempts have gone :data:`OUTAGE_GRACE` seconds without *any* HTTP answer. A
server that answers, even with 429 or 503, is reachable and merely busy.
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional, TypeVar

from databuddy_otel._event.limits import MAX_BODY_BYTES, MAX_EVENTS_PER_REQUEST
from databuddy_otel._runtime.sdk_log import Log
from databuddy_otel._runtime.thread_roles import sending
from databuddy_otel._wire.failure import Failure
from databuddy_otel._wire.protocol import FAIL, RETRY, SPLIT, SUCCESS, Outcome, Wire
from databuddy_otel._wire.transport import RequestsTransport
from databuddy_otel.models import (
    REJECTED,
    RETRIES_EXHAUSTED,
    SHUTDOWN,
    Transport,
    TransportError,
)

if TYPE_CHECKING:
    from databuddy_otel._runtime.config import Settings

T = TypeVar("T")

SHUTDOWN_MESSAGE = "client shut down before the event could be delivered"

#: Seconds of attempts without any HTTP answer after which the server counts as down.
OUTAGE_GRACE = 1.0


@dataclass(frozen=True)
class RetryPolicy:
    """How long and how often to retry one chunk of events (seconds)."""

    deadline: float = 30.0
    initial_backoff: float = 0.1
    max_backoff: float = 5.0
    max_retry_after: float = 30.0

    def backoff(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait before attempt ``attempt + 1``: the backoff's draw, or longer
        when the server asked for longer (at most ``max_retry_after``)."""
        # The exponent is capped before the power is taken: 2 ** 1100 is a float overflow.
        ceiling = min(self.max_backoff, self.initial_backoff * 2.0 ** min(attempt, 32))
        wait = random.uniform(ceiling / 2, ceiling)
        if retry_after is not None and retry_after > wait:
            wait = min(retry_after, self.max_retry_after)
        return wait


def take_chunk(ready: deque[T], body_of: Callable[[T], str]) -> list[T]:
    """Take the oldest items of ``ready`` that fit one request: at most
    ``MAX_EVENTS_PER_REQUEST`` events and ``MAX_BODY_BYTES`` (brackets and commas
    counted); always at least one."""
    chunk: list[T] = []
    size = 2  # the brackets
    while ready and len(chunk) < MAX_EVENTS_PER_REQUEST:
        extra = len(body_of(ready[0])) + 1
        if chunk and size + extra > MAX_BODY_BYTES:
            break
        chunk.append(ready.popleft())
        size += extra
    return chunk


def chunk(bodies: Sequence[str]) -> list[list[str]]:
    """Split serialized events into request-sized groups, as the senders take them."""
    ready = deque(bodies)
    chunks: list[list[str]] = []
    while ready:
        chunks.append(take_chunk(ready, str))
    return chunks


class Reachability:
    """The outage rule, fed by every attempt of every delivery that shares it.

    Sender and exporter threads report attempts concurrently: the one field they
    share, when attempts without an answer began, is read and written under
    ``_lock``.
    """

    def __init__(self, log: Log) -> None:
        self._log = log
        self._lock = threading.Lock()
        self._trying_since: float | None = None
        self._warned = False  # this outage was announced

    def attempt_started(self) -> None:
        with self._lock:
            if self._trying_since is None:
                self._trying_since = time.monotonic()

    def attempt_finished(
        self, answered: bool, problem: str = "", url: str = "", *, certain: bool = False
    ) -> None:
        """``answered``: the attempt got an HTTP answer, whatever its status.

        When attempts have gone unanswered long enough to call it an outage, or at
        once when the cause is ``certain`` (refused, DNS, TLS), one WARNING says so,
        with the address and the last attempt's ``problem``; the end of the outage is
        logged at INFO.
        """
        with self._lock:
            if answered:
                was_down, self._warned = self._warned, False
                self._trying_since = None
                announce = False
            else:
                was_down = False
                announce = not self._warned and (certain or self._down(time.monotonic()))
                self._warned = self._warned or announce
        if was_down:
            self._log.info("Databuddy server reachable again")
        if announce:
            self._log.warning(
                "Databuddy cannot reach %s (%s); events wait and are retried: check api_url,"
                " the network and any proxy in between",
                url or "the server",
                problem or "no answer",
            )

    def down(self, now: float | None = None) -> bool:
        """True once attempts have gone :data:`OUTAGE_GRACE` s without an answer."""
        return self._down(time.monotonic() if now is None else now)

    def _down(self, now: float) -> bool:
        since = self._trying_since  # one read: a reader needs no lock
        return since is not None and now - since >= OUTAGE_GRACE

    def reset(self) -> None:
        with self._lock:
            self._trying_since = None
            self._warned = False


class Delivery:
    """Sends serialized events for one :class:`Wire` through one :class:`Transport`.

    Every attempt is reported to ``reachability``. :func:`build_delivery` makes one from
    the settings.
    """

    def __init__(
        self,
        wire: Wire,
        transport: Transport,
        *,
        log: Log,
        timeout: float = 10.0,
        policy: RetryPolicy | None = None,
        reachability: Reachability | None = None,
    ) -> None:
        self.wire = wire
        self.transport = transport
        self.timeout = timeout
        self.policy = policy or RetryPolicy()
        self.reachability = reachability or Reachability(log)
        self._log = log
        self._headers = wire.headers()
        self._stopped = threading.Event()

    def stop(self) -> None:
        """Interrupt backoff waits; chunks still retrying fail with a shutdown message."""
        self._stopped.set()

    @property
    def stopped(self) -> bool:
        return self._stopped.is_set()

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

    def send_chunk(
        self, group: list[str], *, deadline: float | None = None
    ) -> list[Optional[Failure]]:
        """Deliver one request's worth (at most 100 events and 1 MiB) as a batch."""
        end = deadline if deadline is not None else time.monotonic() + self.policy.deadline
        with sending():
            return self._send_chunk(group, end, batch=True)

    def _send_chunk(
        self, group: list[str], deadline: float, *, batch: bool
    ) -> list[Optional[Failure]]:
        if self._stopped.is_set():
            return [Failure(SHUTDOWN, SHUTDOWN_MESSAGE)] * len(group)
        attempt = 0
        stretched = False
        while True:
            outcome, answered, certain = self._attempt(group, deadline, batch=batch)
            self.reachability.attempt_finished(
                answered, outcome.message or "", self.wire.api_url, certain=certain
            )
            if outcome.verdict == SUCCESS:
                self._log.debug(
                    "Databuddy delivered %d event(s) to %s", len(group), self.wire.api_url
                )
                errors = outcome.errors or [None] * len(group)
                return [None if e is None else Failure(REJECTED, e) for e in errors]
            if outcome.verdict == SPLIT and len(group) > 1:
                half = len(group) // 2
                first = self._send_chunk(group[:half], deadline, batch=True)
                return first + self._send_chunk(group[half:], deadline, batch=True)
            message = outcome.message or "Unknown error from server"
            if outcome.verdict in (FAIL, SPLIT):
                self._log.warning("Databuddy refused %d event(s): %s", len(group), message)
                return [Failure(REJECTED, message)] * len(group)
            wait = self.policy.backoff(attempt, outcome.retry_after)
            attempt += 1
            remaining = deadline - time.monotonic()
            if wait >= remaining:
                asked = outcome.retry_after is not None and outcome.retry_after > remaining
                budget = min(self.timeout, remaining / 2)
                if not asked or stretched or remaining - budget <= 0:
                    return self._give_up(group, attempt, message, outcome.retry_after)
                # The server asked for longer than the deadline allows: wait as long as
                # it does allow, then try once more before giving up.
                wait, stretched = remaining - budget, True
            self._log.debug("Attempt %d failed (%s); retrying in %.2fs", attempt, message, wait)
            if self._stopped.wait(wait):
                return [Failure(SHUTDOWN, SHUTDOWN_MESSAGE)] * len(group)

    def _give_up(
        self, group: list[str], attempts: int, message: str, retry_after: float | None
    ) -> list[Optional[Failure]]:
        text = f"{message} (gave up after {attempts} attempt{'s' if attempts > 1 else ''}"
        if retry_after is not None:
            text += f"; the server asked to retry after {retry_after:g}s"
        text += ")"
        # Whoever settles these says whether they are lost or wait in the spool.
        self._log.info("Databuddy stopped retrying %d event(s): %s", len(group), text)
        return [Failure(RETRIES_EXHAUSTED, text)] * len(group)

    def _attempt(
        self, group: list[str], deadline: float, *, batch: bool
    ) -> tuple[Outcome, bool, bool]:
        """One request; the outcome, whether the server answered at all, and whether a
        missing answer has a certain cause (:attr:`TransportError.certain`)."""
        timeout = max(0.05, min(self.timeout, deadline - time.monotonic()))
        self.reachability.attempt_started()
        try:
            answer = self.transport.post(
                self.wire.url(batch=batch),
                self.wire.body(group, batch=batch),
                self._headers,
                timeout,
            )
        except TransportError as exc:
            return Outcome(RETRY, str(exc)), False, getattr(exc, "certain", False)
        except Exception as exc:  # a third-party transport misbehaving
            message = f"Network request failed: {type(exc).__name__}: {exc}"
            return Outcome(RETRY, message), False, False
        try:
            outcome = self.wire.interpret(
                answer.status, answer.text, answer.headers, len(group), batch=batch
            )
        except Exception as exc:  # an answer this SDK cannot read: not delivered yet
            message = f"HTTP {answer.status}: unreadable answer ({type(exc).__name__}: {exc})"
            return Outcome(RETRY, message, foreign=True), False, False
        return outcome, not outcome.foreign, False


def build_delivery(settings: Settings, *, log: Log, pool_size: int | None = None) -> Delivery:
    """The delivery of one client or standalone exporter: the settings' transport (else
    ``requests`` with ``verify``, ``pool_size`` connections), wire, timeout and retry
    deadline, and an outage state of its own."""
    transport = settings.transport
    if transport is None:
        if pool_size is None:
            transport = RequestsTransport(verify=settings.verify)
        else:
            transport = RequestsTransport(verify=settings.verify, pool_size=pool_size)
    return Delivery(
        settings.wire(),
        transport,
        log=log,
        timeout=settings.timeout,
        policy=RetryPolicy(deadline=settings.retry_deadline),
        reachability=Reachability(log),
    )

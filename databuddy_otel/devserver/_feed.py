"""Live activity of the ingest server, pushed to whoever watches it: the event
viewer's streams and the terminal's request log.

Publishing never blocks the ingest request that publishes: each subscription has a
bounded buffer, and a subscriber that lets it fill up is dropped (it can subscribe
again) rather than making ingest wait for it. A subscriber waits on a socket pair, so
its thread can wait on its own socket at the same time (the viewer's stream notices a
browser that went away at once, instead of at its next write).
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
from collections import deque
from collections.abc import Iterable
from typing import Any

#: One activity message: a JSON object whose ``kind`` says what happened.
Message = dict[str, Any]

#: Messages a subscriber may have waiting before it is dropped as too slow.
DEFAULT_BUFFER = 1000


class Subscription:
    """One subscriber's bounded buffer and wake-up socket; its consumer must :meth:`close` it."""

    def __init__(self, feed: Feed, kinds: frozenset[str], limit: int) -> None:
        self.kinds = kinds
        self._feed = feed
        self._limit = limit
        self._pending: deque[Message] = deque()
        self._receiving = True
        self.overflowed = False
        self._reader, self._writer = socket.socketpair()
        self._reader.setblocking(False)
        self._writer.setblocking(False)

    def fileno(self) -> int:
        """The socket that becomes readable when there is news (for ``select``)."""
        return self._reader.fileno()

    @property
    def ended(self) -> bool:
        """True once the feed stopped delivering here (server stopping, or too slow)."""
        return not self._receiving

    def _offer(self, message: Message) -> None:
        # Called with the feed's lock held.
        if len(self._pending) >= self._limit:
            self.overflowed = True
            self._end()
            return
        self._pending.append(message)
        self._wake()

    def _end(self) -> None:
        # Called with the feed's lock held.
        self._receiving = False
        self._wake()

    def _wake(self) -> None:
        # A full socket buffer already holds a wake-up; a closed one has no reader left.
        with contextlib.suppress(OSError):
            self._writer.send(b"\0")

    def take(self) -> list[Message]:
        """The messages waiting, oldest first (possibly none); never blocks."""
        with contextlib.suppress(OSError):
            while self._reader.recv(4096):
                pass
        with self._feed.lock:
            taken = list(self._pending)
            self._pending.clear()
        return taken

    def wait(self, timeout: float | None) -> list[Message]:
        """Wait up to ``timeout`` seconds for news; return the messages waiting."""
        if not self._pending and self._receiving:
            with contextlib.suppress(OSError, ValueError):
                select.select([self._reader], [], [], timeout)
        return self.take()

    def close(self) -> None:
        """Stop receiving and release the sockets; idempotent."""
        self._feed._release(self)
        self._reader.close()
        self._writer.close()


class Feed:
    """Fans activity messages out to subscriptions, each filtered by message kind."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._receiving: set[Subscription] = set()
        self._open: set[Subscription] = set()  # not yet closed by their consumer
        self._released = threading.Condition(self.lock)
        self._closed = False

    def subscribe(self, kinds: Iterable[str], *, limit: int = DEFAULT_BUFFER) -> Subscription:
        """A new subscription to messages of ``kinds``; already ended if the feed is closed."""
        subscription = Subscription(self, frozenset(kinds), limit)
        with self.lock:
            self._open.add(subscription)
            if self._closed:
                subscription._end()
            else:
                self._receiving.add(subscription)
        return subscription

    def wants(self, kind: str) -> bool:
        """Whether anyone listens to ``kind`` (so a costly message can be skipped)."""
        with self.lock:
            return any(kind in subscription.kinds for subscription in self._receiving)

    def publish(self, message: Message) -> None:
        """Hand ``message`` to every subscription of its kind; never blocks on them."""
        kind = message["kind"]
        with self.lock:
            for subscription in list(self._receiving):
                if kind in subscription.kinds:
                    subscription._offer(message)
                    if subscription.ended:
                        self._receiving.discard(subscription)

    @property
    def subscriber_count(self) -> int:
        """Subscriptions not yet closed by their consumers."""
        with self.lock:
            return len(self._open)

    def close(self) -> None:
        """End every subscription (their consumers wake up and finish); no new ones."""
        with self.lock:
            self._closed = True
            for subscription in self._receiving:
                subscription._end()
            self._receiving.clear()

    def wait_released(self, timeout: float) -> bool:
        """Wait until every consumer closed its subscription; False on timeout."""
        with self._released:
            return self._released.wait_for(lambda: not self._open, timeout)

    def _release(self, subscription: Subscription) -> None:
        with self.lock:
            self._receiving.discard(subscription)
            self._open.discard(subscription)
            subscription._receiving = False
            self._released.notify_all()

"""The listening socket and its connections: how many may be open at once, how long
one may take to send a request, and cutting them all when the server stops.

- **A cap.** Each connection holds one thread. Past ``max_connections`` open ones, a new
  connection gets a canned ``503`` (``Retry-After: 1``, ``Connection: close``) written by
  the accepting thread itself, and no thread. The socket then lingers, half-closed, on
  the accepting thread's poll loop until the client has read the answer and closed
  (or :data:`LINGER_SECONDS` pass), because closing a socket with unread input resets
  the connection, and a reset can destroy the answer before the client reads it
  (RFC 9112 §9.6, "Tear-down").
- **A deadline.** From the moment a connection is ready for a request (accepted, or its
  previous answer sent) the whole request, line, headers and body, must arrive within
  ``request_timeout`` seconds; :class:`DeadlineReader` enforces it on every read, so a
  client that sends a byte now and then cannot hold a thread for ever. Answers are not
  bounded by it: the viewer's stream and staged slow answers run as long as they like.
"""

from __future__ import annotations

import contextlib
import io
import logging
import socket
import socketserver
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

logger = logging.getLogger("databuddy.devserver")

#: How long a turned-away connection may stay half-closed before it is closed anyway.
LINGER_SECONDS = 2.0
#: At most this many turned-away connections linger; older ones are closed first.
MAX_LINGERING = 256


class RequestTimeout(socket.timeout):
    """The client did not finish sending its request within the deadline."""


class DeadlineReader(io.RawIOBase):
    """A socket's read side where a whole request must arrive before a deadline.

    The handler's buffered ``rfile`` reads through it. :meth:`start` sets the deadline,
    :meth:`finish` lifts it once the request is read. Each read waits at most until the
    deadline (and at most the socket's own timeout), and restores that timeout after,
    so writes keep theirs.
    """

    def __init__(self, sock: socket.socket) -> None:
        super().__init__()
        self._sock = sock
        self._deadline: float | None = None
        #: Whether a byte arrived since :meth:`start` (a partial request, not an idle one).
        self.received = False
        #: Whether the deadline passed while a request was being read.
        self.expired = False

    def readable(self) -> bool:
        return True

    def start(self, seconds: float) -> None:
        self._deadline = time.monotonic() + seconds
        self.received = self.expired = False

    def finish(self) -> None:
        self._deadline = None

    def readinto(self, buffer: Any) -> int:
        previous = self._sock.gettimeout()
        deadline = self._deadline
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.expired = True
                raise RequestTimeout("the request did not arrive in time")
            self._sock.settimeout(remaining if previous is None else min(previous, remaining))
        try:
            count = self._sock.recv_into(buffer)
        except socket.timeout:
            if deadline is not None and time.monotonic() >= deadline:
                self.expired = True
                raise RequestTimeout("the request did not arrive in time") from None
            raise
        finally:
            if deadline is not None:
                self._sock.settimeout(previous)
        if count:
            self.received = True
        return count


def canned_answer(status: str, body: bytes, headers: dict[str, str]) -> bytes:
    """A complete HTTP/1.1 answer (``status`` such as ``"503 Service Unavailable"``)."""
    lines = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class CappedHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server with a cap on open connections, cut when stopping.

    ``busy_answer`` is what a connection past ``max_connections`` gets, verbatim.
    """

    daemon_threads = True
    # The socketserver default (5) drops connections when several clients, each with
    # a few requests in flight, connect at once; they would retry a second later.
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        *,
        max_connections: int,
        busy_answer: bytes,
    ) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.max_connections = max_connections
        self._busy_answer = busy_answer
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        # Touched by the accepting thread only (and by close_connections once it ended).
        self._lingering: deque[tuple[float, socket.socket]] = deque()
        super().__init__(address, handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse DNS lookup (getfqdn) we don't need.
        socketserver.TCPServer.server_bind(self)
        self.server_name = str(self.server_address[0])
        self.server_port = int(self.server_address[1])

    def process_request(self, request: Any, client_address: Any) -> None:
        if isinstance(request, socket.socket):
            with self._connections_lock:
                full = len(self._connections) >= self.max_connections
                if not full:
                    self._connections.add(request)
            if full:
                self._turn_away(request, client_address)
                return
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.debug("connection from %s ended with an error", client_address, exc_info=True)

    def _turn_away(self, sock: socket.socket, client_address: Any) -> None:
        """Answer ``busy_answer`` without a thread, then let the socket linger."""
        logger.debug("turned away %s: %d connections open", client_address, self.max_connections)
        try:
            sock.setblocking(False)
            sock.send(self._busy_answer)  # a fresh socket's send buffer takes it whole
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            sock.close()
            return
        self._lingering.append((time.monotonic() + LINGER_SECONDS, sock))
        while len(self._lingering) > MAX_LINGERING:
            self._lingering.popleft()[1].close()

    def service_actions(self) -> None:
        """Close the turned-away connections whose clients are done (serve_forever's poll)."""
        super().service_actions()
        if not self._lingering:
            return
        now = time.monotonic()
        waiting: deque[tuple[float, socket.socket]] = deque()
        for deadline, sock in self._lingering:
            if _drained(sock) or deadline <= now:
                sock.close()
            else:
                waiting.append((deadline, sock))
        self._lingering = waiting

    def close_connections(self) -> None:
        """Shut down every open connection so idle keep-alive threads end."""
        with self._connections_lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        while self._lingering:
            self._lingering.popleft()[1].close()


def _drained(sock: socket.socket) -> bool:
    """Read what a non-blocking socket has; True once the client closed (or it failed)."""
    try:
        for _ in range(16):
            if not sock.recv(65536):
                return True
    except BlockingIOError:
        return False
    except OSError:
        return True
    return False

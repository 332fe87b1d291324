"""Hostile answers staged on purpose, as proxies and bad networks give them, written
straight to the connection:

- a **canned reply** (``DevServer.reply_next``): any status, body and headers, such as
  a captive portal's HTML 200, an empty 200 or a redirect. A body of ``size`` bytes is
  streamed out in :data:`CHUNK_BYTES` pieces, so a 400 MB answer costs 64 KiB of memory;
- a **trickle** (``DevServer.trickle_next``): a JSON answer declaring a long body, sent
  one byte every ``interval`` seconds (the head at once, or byte by byte too), until the
  client goes away or the server stops.

Both give up quietly on a connection the client closed; the caller closes it after.
"""

from __future__ import annotations

import itertools
import select
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from email.utils import formatdate
from http import HTTPStatus
from io import BufferedIOBase

#: Size of the pieces a sized canned body is written in.
CHUNK_BYTES = 65536
#: What a sized canned body with an empty ``body`` is made of.
FILLER = b" "
#: The Content-Length a trickled answer declares: the answer's JSON, then spaces.
TRICKLE_BODY_BYTES = 1_048_576
#: Statuses whose answers have no body (RFC 9110 §6.4.1).
NO_BODY_STATUSES = frozenset({204, 304})
SERVER_HEADER = "DatabuddyDevServer/1"


@dataclass(frozen=True)
class CannedReply:
    """What ``reply_next`` answers: checked by ``DevServer``, written by :func:`write_reply`."""

    status: int
    body: bytes
    content_type: str | None
    headers: tuple[tuple[str, str], ...]
    size: int | None

    @property
    def length(self) -> int:
        """How many body bytes go out."""
        return len(self.body) if self.size is None else self.size

    @property
    def closes(self) -> bool:
        """Whether the reply's own headers ask for the connection to close."""
        return any(
            name.lower() == "connection" and "close" in value.lower()
            for name, value in self.headers
        )

    def describe(self) -> str:
        """The refusal message for the request it answered."""
        kind = self.content_type or "no Content-Type"
        return f"Staged answer {self.status} {_phrase(self.status)}: {self.length} bytes of {kind}"

    def head(self) -> bytes:
        headers: list[tuple[str, str]] = []
        if self.content_type is not None:
            headers.append(("Content-Type", self.content_type))
        if self.status not in NO_BODY_STATUSES:
            headers.append(("Content-Length", str(self.length)))
        return head(self.status, [*headers, *self.headers])

    def chunks(self) -> Iterator[bytes]:
        """The body in pieces of about :data:`CHUNK_BYTES`, ``body`` repeated to ``size``."""
        if self.size is None:
            if self.body:
                yield self.body
            return
        unit = self.body or FILLER
        block = unit * max(1, CHUNK_BYTES // len(unit))
        left = self.size
        while left > 0:
            piece = block[:left]
            left -= len(piece)
            yield piece


def write_reply(reply: CannedReply, wfile: BufferedIOBase, stopping: threading.Event) -> bool:
    """Write ``reply`` to ``wfile``; False if the server began stopping before the end."""
    wfile.write(reply.head())
    for piece in reply.chunks():
        if stopping.is_set():
            return False
        wfile.write(piece)
    wfile.flush()
    return True


@dataclass(frozen=True)
class Trickle:
    """What ``trickle_next`` answers: one byte every ``interval`` seconds."""

    interval: float
    headers_too: bool = False

    def describe(self, *, stored: bool) -> str:
        what = "head and body" if self.headers_too else "body"
        done = "after storing the events" if stored else "nothing stored"
        return f"Answer {what} trickled one byte every {self.interval:g}s, {done}"


def trickle(
    trickled: Trickle,
    status: int,
    answer: bytes,
    connection: socket.socket,
    stopping: threading.Event,
) -> None:
    """Send ``answer`` (padded to :data:`TRICKLE_BODY_BYTES`) as ``trickled`` says.

    Returns when the client closes, the server stops (it cuts the connection, which
    wakes the wait), or, after weeks, the body is out.
    """
    headers = [
        ("Content-Type", "application/json"),
        ("Content-Length", str(max(TRICKLE_BODY_BYTES, len(answer)))),
        ("Connection", "close"),
    ]
    body = itertools.chain(answer, itertools.repeat(0x20, TRICKLE_BODY_BYTES - len(answer)))
    data = head(status, headers)
    if trickled.headers_too:
        slow: Iterator[int] = itertools.chain(data, body)
    else:
        connection.sendall(data)
        slow = body
    for byte in slow:
        connection.sendall(bytes((byte,)))
        if stopping.is_set() or _client_left(connection, trickled.interval):
            return


def _client_left(connection: socket.socket, seconds: float) -> bool:
    """Wait ``seconds``; True as soon as the client closes the connection."""
    ready, _, _ = select.select([connection], [], [], seconds)
    if not ready:
        return False
    try:
        return not connection.recv(4096)  # anything else it sends is ignored
    except OSError:
        return True


def head(status: int, headers: list[tuple[str, str]]) -> bytes:
    """Status line and headers of an answer, with Server and Date first."""
    lines = [
        f"HTTP/1.1 {status} {_phrase(status)}",
        f"Server: {SERVER_HEADER}",
        f"Date: {formatdate(usegmt=True)}",
    ]
    lines += [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"

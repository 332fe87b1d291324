"""Reading request bodies without trusting them: never more than ``MAX_BODY_BYTES``
kept in memory, chunked or not, and a bounded drain of what is refused so the client
gets to read the answer instead of a connection reset."""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import Message
from io import BufferedIOBase
from typing import Literal

from databuddy_otel.devserver._limits import MAX_BODY_BYTES

_DIGITS = re.compile(r"[0-9]{1,18}")
_CHUNK_SIZE = re.compile(rb"[0-9a-fA-F]{1,8}")
#: After refusing an oversized body, read and discard at most this much of it.
DRAIN_LIMIT = 16 * MAX_BODY_BYTES


@dataclass(frozen=True)
class Body:
    """A request body as read: the bytes, or why there are none."""

    data: bytes | None  # None when unusable, see problem
    problem: Literal["too_large", "bad_framing", None] = None
    unread: int = 0  # declared body bytes still on the socket


def read_body(rfile: BufferedIOBase, headers: Message) -> Body:
    """Read the request body, never more than MAX_BODY_BYTES + a chunk header."""
    if "chunked" in (headers.get("Transfer-Encoding") or "").lower():
        return _read_chunked(rfile)
    lengths = {value.strip() for value in headers.get_all("Content-Length") or ()}
    if not lengths:
        return Body(b"")
    length_text = lengths.pop()
    if lengths or not length_text.isascii() or not length_text.isdigit():
        return Body(None, "bad_framing")
    if not _DIGITS.fullmatch(length_text) or int(length_text) > MAX_BODY_BYTES:
        return Body(None, "too_large", unread=min(int(length_text[:18]), DRAIN_LIMIT))
    length = int(length_text)
    data = rfile.read(length)
    return Body(data) if len(data) == length else Body(None, "bad_framing")


def _read_chunked(rfile: BufferedIOBase) -> Body:
    """Read a chunked body; past the limit, keep only discarding (bounded) to the end."""
    parts: list[bytes] = []
    total = 0
    while True:
        line = rfile.readline(1024)
        size_text = line.split(b";", 1)[0].strip()
        if not line.endswith(b"\n") or not _CHUNK_SIZE.fullmatch(size_text):
            return Body(None, "bad_framing")
        size = int(size_text, 16)
        if size == 0:
            break
        total += size
        if total > DRAIN_LIMIT:
            return Body(None, "too_large")
        if total > MAX_BODY_BYTES:
            parts.clear()
            received = discard(rfile, size)
        else:
            chunk = rfile.read(size)
            parts.append(chunk)
            received = len(chunk)
        if received != size or rfile.readline(3).strip():
            return Body(None, "bad_framing")
    for _ in range(64):  # trailer fields, up to the empty line
        if rfile.readline(8192).strip() == b"":
            break
    return Body(None, "too_large") if total > MAX_BODY_BYTES else Body(b"".join(parts))


def discard(rfile: BufferedIOBase, n: int) -> int:
    """Read and drop up to ``n`` body bytes; return how many came."""
    dropped = 0
    try:
        while dropped < n:
            chunk = rfile.read(min(n - dropped, 65536))
            if not chunk:
                break
            dropped += len(chunk)
    except OSError:
        pass
    return dropped

"""A fast local HTTP sink that accepts every SDK's batches and counts their events.

Run as its own process (``python bench/sink.py --port 0``); it prints
``READY <port>`` once listening. One asyncio protocol per connection parses
HTTP/1.1 keep-alive requests straight off the socket and answers each with a
single write, so the sink is never the bottleneck of a benchmark.

Endpoints:

* ``POST <any path>``: gunzips when ``Content-Encoding: gzip``, parses the JSON and
  counts its events under the path (query string dropped): a JSON array counts its
  length, an object with a ``batch`` array counts that, any other object counts 1.
  The answer is the success body the SDK posting to that path expects. OTLP paths
  (``/v1/...``, protobuf) and Sentry envelopes (``.../envelope/``) are answered 200 and
  counted as one event per request, unparsed.
* ``GET /count``: ``{"total", "paths", "requests", "errors", "reached_ns", "last_ns"}``
  where ``reached_ns`` is the ``time.monotonic_ns()`` at which ``total`` first reached
  the target set by the last reset, and ``last_ns`` when the last events arrived
  (CLOCK_MONOTONIC is shared by every process on Linux).
* ``POST /reset?target=N&delay_ms=D``: zero the counters, set the target, and answer
  every later upload ``D`` ms late (an emulated network round trip; events are counted
  on arrival, the answer leaves ``D`` ms later; several uploads wait in parallel).

"Down" mode needs no code: point an SDK at a port nobody listens on
(:func:`free_port`) and every connection is refused.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import socket
import sys
import time
from collections import Counter
from urllib.parse import parse_qs, urlsplit


def _success_body(path: str, count: int) -> bytes:
    if path == "/track":  # databuddy_otel
        payload: object = {"status": "success", "type": "custom_event", "count": count}
    elif path in ("/batch", "/batch/"):  # posthog reads only the status code
        payload = {"status": 1}
    elif path == "/v1/batch":  # segment
        payload = {"success": True}
    else:
        payload = {"status": "success", "count": count}
    return json.dumps(payload).encode()


def count_events(payload: object) -> int:
    """Events carried by one request body (see the module docstring)."""
    if isinstance(payload, list):
        return len(payload)
    if isinstance(payload, dict):
        batch = payload.get("batch")
        return len(batch) if isinstance(batch, list) else 1
    return 0


class Counts:
    def __init__(self) -> None:
        self.reset(0)

    def reset(self, target: int, delay_ms: float = 0.0) -> None:
        self.delay = delay_ms / 1000
        self.paths: Counter[str] = Counter()
        self.total = 0
        self.requests = 0
        self.errors = 0
        self.target = target
        self.reached_ns: int | None = None
        self.last_ns: int | None = None

    def add(self, path: str, events: int) -> None:
        self.paths[path] += events
        self.total += events
        self.requests += 1
        self.last_ns = time.monotonic_ns()
        if self.reached_ns is None and self.target and self.total >= self.target:
            self.reached_ns = time.monotonic_ns()

    def as_json(self) -> bytes:
        return json.dumps(
            {
                "total": self.total,
                "paths": dict(self.paths),
                "requests": self.requests,
                "errors": self.errors,
                "reached_ns": self.reached_ns,
                "last_ns": self.last_ns,
            }
        ).encode()


def _response(status: str, body: bytes) -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: keep-alive\r\n\r\n"
    )
    return head.encode("ascii") + body


class SinkProtocol(asyncio.Protocol):
    """One keep-alive connection: parse requests from a buffer, answer each in one write."""

    def __init__(self, counts: Counts) -> None:
        self.counts = counts
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self._open_transport: asyncio.Transport | None = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self.transport is not None:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            lines = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length", "0") or 0)
            if len(self.buffer) < end + 4 + length:
                return
            body = bytes(self.buffer[end + 4 : end + 4 + length])
            del self.buffer[: end + 4 + length]
            method, target = [*lines[0].split(" "), "", ""][:2]
            answer = self.handle(method, target, headers, body)
            close = headers.get("connection", "").lower() == "close"
            delay = self.counts.delay if method == "POST" and "/reset" not in target else 0
            if delay:  # the round trip: the answer leaves later, in order per connection
                asyncio.get_running_loop().call_later(delay, self._answer, answer, close)
            else:
                self._answer(answer, close)
            if close:
                self.transport = None

    def _answer(self, answer: bytes, close: bool) -> None:
        transport = self._open_transport
        if transport is None or transport.is_closing():
            return
        transport.write(answer)
        if close:
            transport.close()

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> bytes:
        url = urlsplit(target)
        counts = self.counts
        if method == "GET" and url.path == "/count":
            return _response("200 OK", counts.as_json())
        if method == "POST" and url.path == "/reset":
            query = parse_qs(url.query)
            counts.reset(int(query.get("target", ["0"])[0]), float(query.get("delay_ms", ["0"])[0]))
            return _response("200 OK", b"{}")
        if method != "POST":
            return _response("404 Not Found", b'{"error":"not found"}')
        if url.path.startswith("/v1/") or url.path.endswith("/envelope/"):
            # OTLP (protobuf) and Sentry envelopes: answered, counted as one request each
            counts.add(url.path, 1)
            return _response("200 OK", b"{}")
        try:
            if headers.get("content-encoding", "").lower() == "gzip":
                body = gzip.decompress(body)
            events = count_events(json.loads(body))
        except (ValueError, OSError, EOFError):
            counts.errors += 1
            return _response("400 Bad Request", b'{"status":"error","message":"bad body"}')
        counts.add(url.path, events)
        return _response("200 OK", _success_body(url.path, events))


def free_port() -> int:
    """A port nothing listens on right now (connections to it are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def serve(port: int) -> None:
    counts = Counts()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SinkProtocol(counts), "127.0.0.1", port, backlog=256, reuse_address=True
    )
    bound = server.sockets[0].getsockname()[1]
    print(f"READY {bound}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    try:
        asyncio.run(serve(args.port))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()

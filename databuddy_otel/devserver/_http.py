"""HTTP side of the local ingest server: routing, bounded body reading, both wire
generations' answers, and fault injection (docs/protocol.md for the wire facts).

Every ingest request (``POST /track``, ``POST /``, ``POST /batch``) gets a request id
and first asks :class:`~databuddy_otel.devserver._state.IngestState` whether a fault
is armed for it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import socket
import socketserver
import threading
import time
import uuid
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal, Union
from urllib.parse import parse_qs, urlsplit

from databuddy_otel.devserver._limits import MAX_BODY_BYTES, MAX_EVENTS_PER_REQUEST
from databuddy_otel.devserver._state import IngestState
from databuddy_otel.devserver._store import StoreClosed
from databuddy_otel.devserver._validation import (
    MalformedJSON,
    ValidEvent,
    parse_json,
    validate_legacy_event,
    validate_track,
)

logger = logging.getLogger("databuddy.devserver")

#: Path -> allowed methods. POST on the first three is an ingest request.
_ROUTES: dict[str, tuple[str, ...]] = {
    "/track": ("POST",),
    "/": ("POST",),
    "/batch": ("POST",),
    "/events": ("DELETE", "GET"),
    "/health": ("GET",),
}
#: The ``code`` of /track error bodies; other statuses use their HTTPStatus name.
_CODES = {
    400: "INVALID_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    413: "PAYLOAD_TOO_LARGE",
    429: "RATE_LIMITED",
    500: "INTERNAL_SERVER_ERROR",
}
_DIGITS = re.compile(r"[0-9]{1,18}")
_CHUNK_SIZE = re.compile(rb"[0-9a-fA-F]{1,8}")
#: After refusing an oversized body, read and discard at most this much of it so the
#: client gets to read our answer instead of a connection reset.
_DRAIN_LIMIT = 16 * MAX_BODY_BYTES
_Json = Union[dict[str, Any], list[Any]]
_Query = dict[str, list[str]]


def track_error(status: int, message: str, **extra: Any) -> dict[str, Any]:
    """The ``/track`` error body: ``{"success":false,"status":"error",...,"code":...}``."""
    code = _CODES.get(status)
    if code is None:
        try:
            code = HTTPStatus(status).name
        except ValueError:
            code = f"HTTP_{status}"
    body = {"success": False, "status": "error", "error": message, "message": message}
    body.update(code=code, **extra)
    return body


def status_message(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP {status}"


@dataclass(frozen=True)
class _Body:
    data: bytes | None  # None when unusable, see problem
    problem: Literal["too_large", "bad_framing", None] = None
    unread: int = 0  # declared body bytes still on the socket


@dataclass(frozen=True)
class _Reply:
    status: int
    payload: _Json
    stored: int = 0
    close: bool = False


class IngestHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server that can cut its open connections when stopping."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], state: IngestState) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.state = state
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, IngestHandler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse DNS lookup (getfqdn) we don't need.
        socketserver.TCPServer.server_bind(self)
        self.server_name = str(self.server_address[0])
        self.server_port = int(self.server_address[1])

    def process_request(self, request: Any, client_address: Any) -> None:
        if isinstance(request, socket.socket):
            with self._connections_lock:
                self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.debug("connection from %s ended with an error", client_address, exc_info=True)

    def close_connections(self) -> None:
        """Shut down every open connection so idle keep-alive threads end."""
        with self._connections_lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class IngestHandler(BaseHTTPRequestHandler):
    """Routes one HTTP/1.1 request; keeps the connection alive when it safely can."""

    protocol_version = "HTTP/1.1"
    server_version = "DatabuddyDevServer/1"
    timeout = 60  # seconds a connection may stay idle or stall mid-body
    # Buffered, flushed once per answer: headers and body leave in one segment, so
    # Nagle plus the client's delayed ACK cannot add 40 ms to every keep-alive request.
    wbufsize = -1
    server: IngestHTTPServer

    def setup(self) -> None:
        super().setup()
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def handle_expect_100(self) -> bool:
        # The stdlib writes "100 Continue" without flushing; our wfile is buffered.
        proceed = super().handle_expect_100()
        self.wfile.flush()
        return proceed

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s - %s", self.address_string(), format % args)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # Called by the stdlib for unparseable requests: answer JSON, like everything else.
        self.log_error("code %d, message %s", code, message)
        self._send(code, track_error(code, message or status_message(code)), close=True)

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    def _handle(self) -> None:
        url = urlsplit(self.path)
        path = url.path.rstrip("/") or "/"
        query = parse_qs(url.query)
        allowed = _ROUTES.get(path)
        if allowed is not None and self.command == "POST" and "POST" in allowed:
            self._ingest(path, query)
            return
        self._skip_body()
        if allowed is None:
            self._send(404, track_error(404, "Not found"))
        elif self.command not in allowed:
            headers = {"Allow": ", ".join(allowed)}
            self._send(405, track_error(405, "Method not allowed"), headers=headers)
        else:
            self._inspect(path, query)

    def _inspect(self, path: str, query: _Query) -> None:
        store = self.server.state.store
        try:
            if path == "/health":
                payload: _Json = {"status": "ok"}
            elif self.command == "GET":
                payload = store.events(_first(query, "name"))
            else:
                payload = {"status": "success", "deleted": store.clear()}
        except StoreClosed:
            self._send(503, track_error(503, "Server is stopping"), close=True)
            return
        self._send(200, payload)

    def _ingest(self, path: str, query: _Query) -> None:
        state = self.server.state
        request_id, fault = state.begin_ingest()
        body = self._read_body()
        if fault is not None and fault.kind == "drop" and not fault.after_processing:
            self.close_connection = True
            return
        if fault is not None and fault.kind == "fail":
            headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
            payload = track_error(fault.status, status_message(fault.status))
            self._send(fault.status, payload, close=body.data is None, headers=headers)
            self._discard(body.unread, timeout=1.0)
            return
        try:
            reply = self._process(path, query, body, request_id)
        except StoreClosed:
            reply = _Reply(503, track_error(503, "Server is stopping"), close=True)
        except Exception:
            logger.exception("the dev server failed to process request %d", request_id)
            reply = _Reply(500, track_error(500, "Internal server error"), close=True)
        if fault is not None:
            if reply.stored:
                state.mark_faulted(request_id)
            if fault.kind == "drop":
                self.close_connection = True
                return
            state.stopping.wait(fault.seconds)
        self._send(reply.status, reply.payload, close=reply.close or body.data is None)
        self._discard(body.unread, timeout=1.0)

    def _process(self, path: str, query: _Query, body: _Body, request_id: int) -> _Reply:
        now_ms = int(time.time() * 1000)
        if path == "/track":
            return self._track(query, body, request_id, now_ms)
        return self._legacy(path, query, body, request_id, now_ms)

    def _track(self, query: _Query, body: _Body, request_id: int, now_ms: int) -> _Reply:
        state = self.server.state
        if body.problem == "too_large":
            return _Reply(413, track_error(413, "Payload too large"))
        try:
            if body.data is None:
                raise MalformedJSON("the body is not framed correctly")
            parsed = parse_json(body.data)
        except MalformedJSON as exc:
            invalid = track_error(400, "Invalid request body", details=[f"Malformed JSON: {exc}"])
            return _Reply(400, invalid)
        query_website_id = _first(query, "website_id")
        api_key = self._api_key()
        if api_key is not None:
            if state.api_keys is not None and api_key not in state.api_keys:
                return _Reply(403, track_error(403, "API key missing track:events scope"))
        else:
            website_ids = _track_website_ids(parsed, query_website_id)
            if website_ids is None:
                return _Reply(401, track_error(401, "API key or website_id required"))
            if state.client_ids is not None and not website_ids <= state.client_ids:
                return _Reply(404, track_error(404, "Website not found"))
        events, errors = validate_track(parsed, now_ms=now_ms, default_website_id=query_website_id)
        if errors:
            return _Reply(400, track_error(400, "Invalid request body", details=errors))
        state.store.add(events, protocol="track", request_id=request_id, received_at=now_ms)
        success = {"status": "success", "type": "custom_event", "count": len(events)}
        return _Reply(200, success, stored=len(events))

    def _legacy(
        self, path: str, query: _Query, body: _Body, request_id: int, now_ms: int
    ) -> _Reply:
        state = self.server.state
        if body.problem == "too_large":
            return _Reply(200, _legacy_error("Payload too large"))
        client_id = _first(query, "client_id") or self.headers.get("databuddy-client-id") or None
        if client_id is None:
            return _Reply(200, _legacy_error("Missing client ID"))
        if state.client_ids is not None and client_id not in state.client_ids:
            return _Reply(200, _legacy_error("Invalid or inactive client ID"))
        try:
            if body.data is None:
                raise MalformedJSON("the body is not framed correctly")
            parsed = parse_json(body.data)
        except MalformedJSON:
            return _Reply(400, _legacy_error("Invalid JSON"))
        if path == "/":
            raw_events = [parsed]
        elif not isinstance(parsed, list):
            return _Reply(200, _legacy_error("Batch endpoint expects array of events"))
        elif len(parsed) > MAX_EVENTS_PER_REQUEST:
            return _Reply(200, _legacy_error("Batch too large"))
        else:
            raw_events = parsed
        results: list[dict[str, Any]] = []
        valid: list[ValidEvent] = []
        for raw in raw_events:
            event, errors = validate_legacy_event(
                raw, now_ms=now_ms, client_id=client_id, new_event_id=lambda: str(uuid.uuid4())
            )
            if event is None:
                results.append(_legacy_error("Invalid event schema", errors=errors))
            else:
                valid.append(event)
                results.append({"status": "success", "type": "custom", "eventId": event.event_id})
        stored = state.store.add(
            valid, protocol="legacy", request_id=request_id, received_at=now_ms, dedup=True
        )
        if path == "/":
            return _Reply(200, results[0], stored=sum(stored))
        batch = {"status": "success", "batch": True, "processed": len(results), "results": results}
        return _Reply(200, batch, stored=sum(stored))

    def _api_key(self) -> str | None:
        authorization = self.headers.get("Authorization") or ""
        scheme, _, key = authorization.strip().partition(" ")
        if scheme.lower() == "bearer" and key.strip():
            return key.strip()
        return (self.headers.get("x-api-key") or "").strip() or None

    def _read_body(self) -> _Body:
        """Read the request body, never more than MAX_BODY_BYTES + a chunk header."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked()
        lengths = {value.strip() for value in self.headers.get_all("Content-Length") or ()}
        if not lengths:
            return _Body(b"")
        length_text = lengths.pop()
        if lengths or not length_text.isascii() or not length_text.isdigit():
            return _Body(None, "bad_framing")
        if not _DIGITS.fullmatch(length_text) or int(length_text) > MAX_BODY_BYTES:
            return _Body(None, "too_large", unread=min(int(length_text[:18]), _DRAIN_LIMIT))
        length = int(length_text)
        data = self.rfile.read(length)
        return _Body(data) if len(data) == length else _Body(None, "bad_framing")

    def _read_chunked(self) -> _Body:
        """Read a chunked body; past the limit, keep only discarding (bounded) to the end."""
        parts: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024)
            size_text = line.split(b";", 1)[0].strip()
            if not line.endswith(b"\n") or not _CHUNK_SIZE.fullmatch(size_text):
                return _Body(None, "bad_framing")
            size = int(size_text, 16)
            if size == 0:
                break
            total += size
            if total > _DRAIN_LIMIT:
                return _Body(None, "too_large")
            if total > MAX_BODY_BYTES:
                parts.clear()
                received = self._discard(size)
            else:
                chunk = self.rfile.read(size)
                parts.append(chunk)
                received = len(chunk)
            if received != size or self.rfile.readline(3).strip():
                return _Body(None, "bad_framing")
        for _ in range(64):  # trailer fields, up to the empty line
            if self.rfile.readline(8192).strip() == b"":
                break
        return _Body(None, "too_large") if total > MAX_BODY_BYTES else _Body(b"".join(parts))

    def _skip_body(self) -> None:
        """Consume a body nobody needs, or give up on keeping the connection."""
        body = self._read_body()
        if body.data is None:
            self.close_connection = True

    def _discard(self, n: int, *, timeout: float | None = None) -> int:
        """Read and drop up to ``n`` body bytes (so the client can read our answer)."""
        dropped = 0
        try:
            if timeout is not None and n > 0:
                self.connection.settimeout(timeout)
            while dropped < n:
                chunk = self.rfile.read(min(n - dropped, 65536))
                if not chunk:
                    break
                dropped += len(chunk)
        except OSError:
            pass
        return dropped

    def _send(
        self,
        status: int,
        payload: _Json,
        *,
        close: bool = False,
        headers: dict[str, str] | None = None,
    ) -> None:
        data = json.dumps(payload, separators=(",", ":")).encode("ascii")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if close:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        self.wfile.flush()


def _first(query: _Query, key: str) -> str | None:
    values = query.get(key)
    return values[0] if values and values[0] else None


def _track_website_ids(parsed: object, query_website_id: str | None) -> frozenset[str] | None:
    """The website ids a keyless ``/track`` request names, or None if an event names none."""
    events = parsed if isinstance(parsed, list) and parsed else [parsed]
    ids: set[str] = set()
    for event in events:
        website_id = event.get("websiteId") if isinstance(event, dict) else None
        if isinstance(website_id, str) and website_id:
            ids.add(website_id)
        elif query_website_id is not None:
            ids.add(query_website_id)
        else:
            return None
    return frozenset(ids)


def _legacy_error(message: str, **extra: Any) -> dict[str, Any]:
    return {"status": "error", "message": message, **extra}

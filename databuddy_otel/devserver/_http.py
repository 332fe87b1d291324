"""HTTP side of the local ingest server: routing, who may ask (the Host and Origin
rules of :mod:`~databuddy_otel.devserver._guard`), inspection endpoints, the viewer's
page and stream, and fault injection.

Every ingest request (``POST /track``, ``POST /``, ``POST /batch``) is read whole, gets
a request id and asks :class:`~databuddy_otel.devserver._state.IngestState` whether a
fault is armed for it; :mod:`~databuddy_otel.devserver._ingest` answers the rest, and
:mod:`~databuddy_otel.devserver._staged` writes the hostile answers. Before the answer
goes out, what it refused is kept (``GET /rejections``) and the request's summary is
published for the terminal (:mod:`~databuddy_otel.devserver._traffic`); stored events
were published as they were stored. An event stream (``GET /stream``) holds its handler
thread until the viewer or the server goes (:mod:`~databuddy_otel.devserver._viewer`).
The connection cap and the request deadline live in
:mod:`~databuddy_otel.devserver._connections`.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import socket
import time
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from databuddy_otel.devserver._body import Body, discard, read_body
from databuddy_otel.devserver._connections import CappedHTTPServer, DeadlineReader, canned_answer
from databuddy_otel.devserver._guard import Denial, Guard
from databuddy_otel.devserver._ingest import (
    IngestRequest,
    Json,
    Query,
    Reply,
    answer,
    first,
    status_message,
    track_error,
)
from databuddy_otel.devserver._staged import (
    SERVER_HEADER,
    CannedReply,
    Trickle,
    trickle,
    write_reply,
)
from databuddy_otel.devserver._state import Fault, IngestState
from databuddy_otel.devserver._store import StoreClosed
from databuddy_otel.devserver._traffic import record_answer, record_staged
from databuddy_otel.devserver._viewer import SNAPSHOT_EVENTS, page, serve_stream

logger = logging.getLogger("databuddy.devserver")

#: Path -> allowed methods. POST on the first three is an ingest request; GET and
#: HEAD on ``/`` serve the event viewer's page.
_ROUTES: dict[str, tuple[str, ...]] = {
    "/track": ("POST",),
    "/": ("GET", "HEAD", "POST"),
    "/batch": ("POST",),
    "/events": ("DELETE", "GET"),
    "/rejections": ("GET",),
    "/stream": ("GET",),
    "/health": ("GET",),
}


class IngestHTTPServer(CappedHTTPServer):
    """The ingest server: the state, the guard and the request deadline its handlers share."""

    def __init__(
        self,
        address: tuple[str, int],
        state: IngestState,
        *,
        allowed_hosts: Iterable[str] = (),
        max_connections: int,
        request_timeout: float,
    ) -> None:
        self.state = state
        self.request_timeout = request_timeout
        message = (
            f"Too many connections: this dev server serves at most {max_connections} at once"
            " (DevServer(max_connections=...)); retry in a second"
        )
        body = json.dumps(track_error(503, message), separators=(",", ":")).encode("ascii")
        headers = {"Content-Type": "application/json", "Retry-After": "1", "Connection": "close"}
        busy = canned_answer("503 Service Unavailable", body, headers)
        super().__init__(address, IngestHandler, max_connections=max_connections, busy_answer=busy)
        self.guard = Guard(
            bound_host=address[0], port=self.server_port, allowed_hosts=allowed_hosts
        )


class IngestHandler(BaseHTTPRequestHandler):
    """Routes one HTTP/1.1 request; keeps the connection alive when it safely can."""

    protocol_version = "HTTP/1.1"
    server_version = SERVER_HEADER
    # Seconds one read or write may stall; a whole request must also arrive within
    # the server's request_timeout (the DeadlineReader below).
    timeout = 60
    # Buffered, flushed once per answer: headers and body leave in one segment, so
    # Nagle plus the client's delayed ACK cannot add 40 ms to every keep-alive request.
    wbufsize = -1
    server: IngestHTTPServer

    def setup(self) -> None:
        super().setup()
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        plain, self._reader = self.rfile, DeadlineReader(self.connection)
        self.rfile = io.BufferedReader(self._reader)
        plain.close()  # it holds a reference that would keep the socket open

    def handle_one_request(self) -> None:
        self._reader.start(self.server.request_timeout)
        super().handle_one_request()  # a RequestTimeout ends it and marks the connection closed
        self._reader.finish()
        if self._reader.expired and self._reader.received:
            # Half a request came: say why it is cut. (An idle connection just closes.)
            self.close_connection = True
            # Whatever part of the request came, the 408 answers none of it (not a HEAD).
            self.command, self.request_version = "", self.protocol_version
            vars(self).setdefault("requestline", "")
            seconds = self.server.request_timeout
            message = f"Request not complete within {seconds:g}s"
            with contextlib.suppress(OSError):
                self._send(408, track_error(408, message), close=True)

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
        ingest = allowed is not None and self.command == "POST" and "POST" in allowed
        guard = self.server.guard
        denial = guard.check_host(self.headers)
        if denial is None and (ingest or (path == "/events" and self.command == "DELETE")):
            denial = guard.check_write(self.headers)
        if ingest:
            self._ingest(path, query, denial)
            return
        self._skip_body()
        if denial is not None:
            self._send(denial.status, track_error(denial.status, denial.message))
        elif allowed is None:
            self._send(404, track_error(404, "Not found"))
        elif self.command not in allowed:
            headers = {"Allow": ", ".join(allowed)}
            self._send(405, track_error(405, "Method not allowed"), headers=headers)
        else:
            self._inspect(path, query)

    def _inspect(self, path: str, query: Query) -> None:
        state = self.server.state
        if path == "/":
            data, headers = page()
            self._send_bytes(200, data, "text/html; charset=utf-8", headers=headers)
            return
        if path == "/stream":
            self._stream()
            return
        try:
            if path == "/health":
                payload: Json = {"status": "ok"}
            elif path == "/rejections":
                payload = state.refusals.newest_first()
            elif self.command == "GET":
                payload = state.store.events(first(query, "name"))
            else:
                payload = {"status": "success", "deleted": state.clear()}
        except StoreClosed:
            self._send(503, track_error(503, "Server is stopping"), close=True)
            return
        self._send(200, payload)

    def _stream(self) -> None:
        """Answer ``GET /stream`` with the viewer's event stream, until it ends."""
        try:
            subscription, snapshot = self.server.state.open_viewer(latest=SNAPSHOT_EVENTS)
        except StoreClosed:
            self._send(503, track_error(503, "Server is stopping"), close=True)
            return
        try:
            self.close_connection = True  # the stream ends with the connection
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream; charset=utf-8")
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Accel-Buffering", "no")
            self.send_header("Connection", "close")
            self.end_headers()
            serve_stream(subscription, snapshot, self.connection, self.wfile)
        finally:
            subscription.close()

    def _ingest(self, path: str, query: Query, denial: Denial | None) -> None:
        state = self.server.state
        # Read first: a request that never arrives whole is not counted and trips no fault.
        body = self._read_body()
        received_at = int(time.time() * 1000)
        if denial is not None:
            request = IngestRequest(
                path, query, self.headers, body, state.count_request(), received_at
            )
            reply = Reply(denial.status, track_error(denial.status, denial.message))
            record_answer(state, request, reply, None, dropped=False)
            self._send(reply.status, reply.payload, close=body.data is None)
            self._discard(body.unread, timeout=1.0)
            return
        request_id, fault = state.begin_ingest()
        request = IngestRequest(path, query, self.headers, body, request_id, received_at)
        if fault is not None and not fault.processes:
            self._stage(request, fault)
            return
        try:
            reply = answer(state, request)
        except StoreClosed:
            reply = Reply(503, track_error(503, "Server is stopping"), close=True)
        except Exception:
            logger.exception("the dev server failed to process request %d", request_id)
            reply = Reply(500, track_error(500, "Internal server error"), close=True)
        dropped = fault is not None and fault.kind == "drop"
        record_answer(state, request, reply, fault, dropped=dropped)
        if fault is not None:
            if reply.stored:
                state.mark_faulted(request_id)
            if dropped:
                self.close_connection = True
                return
            if isinstance(fault.answer, Trickle):
                self._trickle(fault.answer, reply.status, reply.payload)
                return
            state.stopping.wait(fault.seconds)
        self._send(reply.status, reply.payload, close=reply.close or body.data is None)
        self._discard(body.unread, timeout=1.0)

    def _stage(self, request: IngestRequest, fault: Fault) -> None:
        """Answer with ``fault`` instead of processing ``request`` (nothing is stored)."""
        state, unread = self.server.state, request.body.unread
        if fault.kind == "drop":
            record_staged(state, request, fault, None, "Connection closed without an answer")
            self.close_connection = True
        elif isinstance(fault.answer, CannedReply):
            canned = fault.answer
            record_staged(state, request, fault, canned.status, canned.describe())
            self.close_connection = canned.closes or request.body.data is None
            try:
                complete = write_reply(canned, self.wfile, state.stopping)
            except OSError:
                complete = False  # the client went away mid-body
            if not complete:
                self.close_connection = True
                return
            self._discard(unread, timeout=1.0)
        elif isinstance(fault.answer, Trickle):
            message = fault.answer.describe(stored=False)
            record_staged(state, request, fault, 200, message)
            self._trickle(fault.answer, 200, {})
        else:
            record_staged(state, request, fault, fault.status, status_message(fault.status))
            headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
            payload = track_error(fault.status, status_message(fault.status))
            self._send(fault.status, payload, close=request.body.data is None, headers=headers)
            self._discard(unread, timeout=1.0)

    def _trickle(self, trickled: Trickle, status: int, payload: Json) -> None:
        """Send ``payload`` a byte at a time until the client or the server goes."""
        self.close_connection = True
        data = json.dumps(payload, separators=(",", ":")).encode("ascii")
        with contextlib.suppress(OSError):
            self.wfile.flush()
            trickle(trickled, status, data, self.connection, self.server.state.stopping)

    def _read_body(self) -> Body:
        """The request's body; with it the request is complete and its deadline lifted."""
        body = read_body(self.rfile, self.headers)
        self._reader.finish()
        return body

    def _skip_body(self) -> None:
        """Consume a body nobody needs, or give up on keeping the connection."""
        if self._read_body().data is None:
            self.close_connection = True

    def _discard(self, n: int, *, timeout: float) -> int:
        """Read and drop up to ``n`` body bytes (so the client can read our answer)."""
        if n > 0:
            with contextlib.suppress(OSError):
                self.connection.settimeout(timeout)
        return discard(self.rfile, n)

    def _send(
        self,
        status: int,
        payload: Json,
        *,
        close: bool = False,
        headers: dict[str, str] | None = None,
    ) -> None:
        data = json.dumps(payload, separators=(",", ":")).encode("ascii")
        self._send_bytes(status, data, "application/json", close=close, headers=headers)

    def _send_bytes(
        self,
        status: int,
        data: bytes,
        content_type: str,
        *,
        close: bool = False,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if close:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        self.wfile.flush()

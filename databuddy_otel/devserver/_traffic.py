"""The request log: what each ingest request did (its refusals kept, its summary on
the activity feed), and a thread that writes each summary as one line to a text
stream (the terminal of ``databuddy-devserver``), after the banner, for example::

    Databuddy dev server listening on http://127.0.0.1:8910 (events: http://127.0.0.1:8910/)
    14:02:07.315  track   POST /track  200  stored 3 events: signup, page_view x2
    14:02:08.020  track   POST /track  400  refused: Invalid request body (name: String must ...)
    14:02:09.101  legacy  POST /batch  503  refused, injected by fail_next: Service Unavailable
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any, TextIO

from databuddy_otel.devserver._feed import Feed, Message, Subscription
from databuddy_otel.devserver._ingest import IngestRequest, Reply, refusals_of
from databuddy_otel.devserver._refusals import refusal
from databuddy_otel.devserver._state import REQUEST_KINDS, Fault, IngestState

#: How many refusal reasons one line spells out, and how long each may be.
_MAX_REASONS = 3
_MAX_REASON_CHARS = 160


def banner(url: str) -> str:
    """The first line: where the server listens and where its event viewer is."""
    return f"Databuddy dev server listening on {url} (events: {url}/)"


def summary(
    *,
    request_id: int,
    received_at: int,
    path: str,
    status: int | None,
    stored: int = 0,
    accepted: int = 0,
    names: Sequence[str] = (),
    refusals: Sequence[dict[str, Any]] = (),
    fault: Fault | None = None,
) -> Message:
    """What one ingest request did, as the ``request`` message of the feed carries it."""
    return {
        "requestId": request_id,
        "receivedAt": received_at,
        "protocol": "track" if path == "/track" else "legacy",
        "path": path,
        "status": status,
        "stored": stored,
        "accepted": accepted,
        "names": list(names),
        "refusals": [_reason(refusal) for refusal in refusals],
        "fault": None if fault is None else _fault(fault),
        "delay": fault.seconds if fault is not None and fault.kind == "delay" else None,
    }


def record_answer(
    state: IngestState, request: IngestRequest, reply: Reply, fault: Fault | None, *, dropped: bool
) -> None:
    """Keep what ``reply`` refused and log the request (for the viewer and terminal)."""
    refusals = refusals_of(request, reply)
    for refused in refusals:
        state.refuse(refused)
    if fault is not None and dropped:
        message = f"Connection closed without an answer, after storing {reply.stored} event(s)"
        state.refuse(_staged_refusal(request, fault, None, message))
    if state.feed.wants("request"):
        state.note_request(
            summary(
                request_id=request.request_id,
                received_at=request.received_at,
                path=request.path,
                status=None if dropped else reply.status,
                stored=reply.stored,
                accepted=reply.accepted,
                names=reply.names,
                refusals=refusals,
                fault=fault,
            )
        )


def record_staged(
    state: IngestState, request: IngestRequest, fault: Fault, status: int | None, message: str
) -> None:
    """Keep and log a refusal staged on purpose (nothing was processed)."""
    refused = _staged_refusal(request, fault, status, message)
    state.refuse(refused)
    if state.feed.wants("request"):
        state.note_request(
            summary(
                request_id=request.request_id,
                received_at=request.received_at,
                path=request.path,
                status=status,
                refusals=[refused],
                fault=fault,
            )
        )


def _staged_refusal(
    request: IngestRequest, fault: Fault, status: int | None, message: str
) -> dict[str, Any]:
    return refusal(
        request_id=request.request_id,
        received_at=request.received_at,
        path=request.path,
        status=status,
        message=message,
        offending=request.body.data or b"",
        injected=fault.source,
    )


def _fault(fault: Fault) -> dict[str, Any]:
    described: dict[str, Any] = {"kind": fault.kind, "source": fault.source}
    described["staged"] = not fault.processes  # the refusals are the fault's own
    if fault.kind == "trickle":
        described["interval"] = fault.seconds
    return described


def _reason(refusal: dict[str, Any]) -> str:
    errors = "; ".join(refusal["errors"][:2])
    where = f"event {refusal['index']}: " if refusal.get("index") is not None else ""
    reason = f"{where}{refusal['message']}" + (f" ({errors})" if errors else "")
    return reason if len(reason) <= _MAX_REASON_CHARS else reason[: _MAX_REASON_CHARS - 3] + "..."


def format_line(message: Message) -> str:
    """One log line for a ``request`` or ``cleared`` message of the feed."""
    if message["kind"] == "cleared":
        deleted = message["deleted"]
        plural = "s" if deleted != 1 else ""
        return f"{_clock(message['at'])}  store cleared: {deleted} event{plural} deleted"
    clock = _clock(message["receivedAt"])
    status = "---" if message["status"] is None else str(message["status"])
    head = f"{clock}  {message['protocol']:<6}  POST {message['path']:<6}  {status}"
    return f"{head}  {_outcome(message)}"


def _clock(millis: int) -> str:
    seconds, millis = divmod(int(millis), 1000)
    return f"{time.strftime('%H:%M:%S', time.localtime(seconds))}.{millis:03d}"


def _outcome(message: Message) -> str:
    parts: list[str] = []
    fault = message["fault"]
    if message["stored"]:
        counts: Counter[str] = Counter(message["names"])
        names = ", ".join(f"{name} x{n}" if n > 1 else name for name, n in counts.items())
        plural = "s" if message["stored"] != 1 else ""
        parts.append(f"stored {message['stored']} event{plural}: {names}")
    duplicates = message["accepted"] - message["stored"]
    if duplicates > 0:
        parts.append(f"{duplicates} duplicate eventId{'s' if duplicates != 1 else ''} not stored")
    reasons = message["refusals"]
    if reasons:
        shown = " | ".join(reasons[:_MAX_REASONS])
        more = f" | and {len(reasons) - _MAX_REASONS} more" if len(reasons) > _MAX_REASONS else ""
        injected = f", injected by {fault['source']}" if fault and fault["staged"] else ""
        count = f" {len(reasons)}" if len(reasons) > 1 else ""
        parts.append(f"refused{count}{injected}: {shown}{more}")
    if fault is not None and fault["kind"] == "drop" and not fault["staged"]:
        parts.append(f"answer dropped, injected by {fault['source']}")
    if fault is not None and fault["kind"] == "trickle" and not fault["staged"]:
        parts.append(f"answer trickled a byte every {fault['interval']:g}s by {fault['source']}")
    if message["delay"] is not None:
        parts.append(f"answer delayed {message['delay']:g}s by {fault['source']}")
    return "; ".join(parts) or "nothing stored"


class RequestLog:
    """Writes ``first_line``, then one line per ingest request, to ``stream`` from a
    thread of its own (so nothing can come before ``first_line``).

    It never slows ingest down: when ``stream`` cannot keep up (a full pipe nobody
    reads), the feed drops this subscriber; the log then notes that lines were
    skipped and subscribes again.
    """

    def __init__(self, feed: Feed, stream: TextIO, *, first_line: str) -> None:
        self._feed = feed
        self._stream = stream
        self._first_line = first_line
        self._subscription: Subscription = feed.subscribe(REQUEST_KINDS)
        self._thread = threading.Thread(
            target=self._run, name="databuddy-devserver-log", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        subscription = self._subscription
        self._write(self._first_line)
        try:
            while True:
                for message in subscription.wait(None):
                    self._write(format_line(message))
                if not subscription.ended:
                    continue
                if not subscription.overflowed:
                    return  # the server is stopping and every line is out
                subscription.close()
                self._write("... request lines skipped: the terminal was not keeping up")
                subscription = self._subscription = self._feed.subscribe(REQUEST_KINDS)
        finally:
            subscription.close()

    def _write(self, line: str) -> None:
        with contextlib.suppress(OSError, ValueError):
            self._stream.write(line + "\n")
            self._stream.flush()

    def join(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for the last lines (after the feed closed)."""
        self._thread.join(timeout)

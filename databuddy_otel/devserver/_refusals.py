"""Refused ingest requests, kept in memory so a person or a test can ask why.

A refusal is any ingest request the server refuses: a ``/track`` answer of 4xx or
5xx, a legacy answer whose body says ``"status":"error"`` (HTTP 200 on that wire
generation), each failing event inside a legacy batch (which answers 200 with
per-event results), a request refused for its ``Host`` or ``Origin``, and the faults
staged on purpose that store nothing (``fail_next``, ``set_outage``, ``drop_next``,
``reply_next``, ``trickle_next(store=False)``; marked ``injected``). Refusals are never
stored as events; the newest :data:`MAX_KEPT` are kept.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections import deque
from typing import Any

#: How many refusals are kept (the oldest go first).
MAX_KEPT = 300
#: How much of an offending body a refusal keeps, in characters.
MAX_BODY_CHARS = 4096
#: Fields copied from the offending event(s) so the viewer can filter refusals like
#: events; each cut to this many characters.
_ID_FIELDS = ("name", "anonymousId", "sessionId")
_MAX_FIELD_CHARS = 512


def refusal(
    *,
    request_id: int,
    received_at: int,
    path: str,
    status: int | None,
    message: str,
    errors: list[str] | None = None,
    offending: bytes | object = b"",
    index: int | None = None,
    injected: str | None = None,
) -> dict[str, Any]:
    """One refusal as ``GET /rejections`` shows it.

    ``offending`` is the raw body (bytes) or, for one event of a legacy batch, that
    event as parsed; ``index`` is its position in the batch. ``status`` is None when no
    answer was sent (a dropped connection). ``injected`` names the fault control that
    staged it (``"fail_next"``, ``"set_outage"``, ``"drop_next"``, ``"reply_next"``,
    ``"trickle_next"``).
    """
    if isinstance(offending, bytes):
        text = offending.decode("utf-8", "replace")
        parsed = _parse(text) if len(offending) <= MAX_BODY_CHARS * 4 else None
    else:
        text = json.dumps(offending, ensure_ascii=False, default=repr)
        parsed = offending
    record: dict[str, Any] = {
        "requestId": request_id,
        "receivedAt": received_at,
        "protocol": "track" if path == "/track" else "legacy",
        "path": path,
        "status": status,
        "message": message,
        "errors": [str(error) for error in errors or ()],
        "index": index,
        "injected": injected,
        "body": text[:MAX_BODY_CHARS],
        "bodyTruncated": len(text) > MAX_BODY_CHARS,
    }
    record.update(_id_fields(parsed))
    return record


def _id_fields(parsed: object) -> dict[str, str]:
    """``name``, ``anonymousId``, ``sessionId`` of the offending event(s), when strings.

    For an array of events, the distinct values joined with ``", "``.
    """
    events = parsed[:100] if isinstance(parsed, list) else [parsed]
    found: dict[str, str] = {}
    for field in _ID_FIELDS:
        values = [e.get(field) for e in events if isinstance(e, dict)]
        distinct = list(dict.fromkeys(v for v in values if isinstance(v, str) and v))
        if distinct:
            found[field] = ", ".join(distinct)[:_MAX_FIELD_CHARS]
    return found


def _parse(text: str) -> object:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


class Refusals:
    """The last :data:`MAX_KEPT` refusals, each numbered (``id``) as it arrives."""

    def __init__(self, limit: int = MAX_KEPT) -> None:
        self._lock = threading.Lock()
        self._kept: deque[dict[str, Any]] = deque(maxlen=limit)
        self._ids = itertools.count(1)

    def add(self, record: dict[str, Any]) -> dict[str, Any]:
        """Keep ``record`` with the next ``id``; return it."""
        with self._lock:
            kept = {"id": next(self._ids), **record}
            self._kept.append(kept)
        return kept

    def newest_first(self) -> list[dict[str, Any]]:
        """The kept refusals, newest first."""
        with self._lock:
            return list(reversed(self._kept))

    def clear(self) -> int:
        """Forget every refusal; return how many there were."""
        with self._lock:
            count = len(self._kept)
            self._kept.clear()
        return count

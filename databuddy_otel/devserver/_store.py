"""SQLite storage of the local ingest server.

One connection shared by the handler threads, guarded by a lock: the server is
for tests and development, where simplicity beats write throughput. File
databases use WAL so a second process (``sqlite3 events.db``) can read while the
server writes.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Sequence
from typing import Any

from databuddy_otel.devserver._validation import ValidEvent

#: How long the legacy path remembers an ``eventId`` (the basket server's 24 h).
LEGACY_DEDUP_WINDOW_MS = 24 * 60 * 60 * 1000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    event_id TEXT,
    anonymous_id TEXT,
    session_id TEXT,
    timestamp INTEGER NOT NULL,
    properties TEXT NOT NULL,
    website_id TEXT,
    namespace TEXT,
    source TEXT,
    protocol TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    request_id INTEGER NOT NULL,
    profile_id TEXT,
    anonymize_visitor_ids TEXT
);
CREATE INDEX IF NOT EXISTS events_by_name ON events (name);
CREATE TABLE IF NOT EXISTS legacy_seen (
    website_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    seen_at INTEGER NOT NULL,
    PRIMARY KEY (website_id, event_id)
);
"""
_COLUMNS = (
    "name, event_id, anonymous_id, session_id, timestamp, properties, website_id,"
    " namespace, source, protocol, received_at, request_id, profile_id, anonymize_visitor_ids"
)
_INSERT = f"INSERT INTO events ({_COLUMNS}) VALUES ({', '.join('?' * 14)})"
#: Columns added after the first release; a database file made before gets them added.
_ADDED_COLUMNS = ("profile_id", "anonymize_visitor_ids")


class StoreClosed(RuntimeError):
    """The store was used after :meth:`Store.close` (the server is stopping)."""


class Store:
    """The stored events, oldest first, plus the legacy path's dedup memory."""

    def __init__(self, path: str) -> None:
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = sqlite3.connect(path, check_same_thread=False)
        try:
            if path != ":memory:":
                self._conn.execute("PRAGMA journal_mode=WAL")
                self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.executescript(_SCHEMA)
            have = {row[1] for row in self._conn.execute("PRAGMA table_info(events)")}
            for column in _ADDED_COLUMNS:
                if column not in have:
                    self._conn.execute(f"ALTER TABLE events ADD COLUMN {column} TEXT")
        except BaseException:
            self._conn.close()
            raise

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreClosed("the dev server's store is closed")
        return self._conn

    def add(
        self,
        events: Sequence[ValidEvent],
        *,
        protocol: str,
        request_id: int,
        received_at: int,
        dedup: bool = False,
    ) -> list[bool]:
        """Store ``events`` in one transaction; return which ones were stored.

        With ``dedup`` (the legacy path) an event whose ``(websiteId, eventId)`` was
        seen in the last 24 h is skipped, including a repeat inside ``events``.
        """
        stored: list[bool] = []
        with self._lock:
            conn = self._connection()
            with conn:
                for event in events:
                    if dedup and self._seen(conn, event, received_at):
                        stored.append(False)
                        continue
                    conn.execute(_INSERT, _row(event, protocol, request_id, received_at))
                    stored.append(True)
        return stored

    @staticmethod
    def _seen(conn: sqlite3.Connection, event: ValidEvent, now_ms: int) -> bool:
        if event.event_id is None:
            return False
        website_id, event_id = _text(event.website_id or ""), _text(event.event_id or "")
        row = conn.execute(
            "SELECT seen_at FROM legacy_seen WHERE website_id = ? AND event_id = ?",
            (website_id, event_id),
        ).fetchone()
        if row is not None and row[0] > now_ms - LEGACY_DEDUP_WINDOW_MS:
            return True
        conn.execute(
            "INSERT OR REPLACE INTO legacy_seen (website_id, event_id, seen_at) VALUES (?, ?, ?)",
            (website_id, event_id, now_ms),
        )
        return False

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        """The stored events, oldest first, optionally only those named ``name``."""
        query = f"SELECT {_COLUMNS} FROM events"
        params: tuple[str, ...] = ()
        if name is not None:
            query += " WHERE name = ?"
            params = (name,)
        with self._lock:
            rows = self._connection().execute(query + " ORDER BY seq", params).fetchall()
        return [_record(row) for row in rows]

    def latest(self, limit: int) -> list[dict[str, Any]]:
        """The newest ``limit`` stored events, newest first."""
        query = f"SELECT {_COLUMNS} FROM events ORDER BY seq DESC LIMIT ?"
        with self._lock:
            rows = self._connection().execute(query, (limit,)).fetchall()
        return [_record(row) for row in rows]

    def counts(self) -> dict[str, int]:
        """How many events are stored under each name."""
        with self._lock:
            rows = (
                self._connection()
                .execute("SELECT name, COUNT(*) FROM events GROUP BY name")
                .fetchall()
            )
        return {str(name): int(count) for name, count in rows}

    def count(self, name: str | None = None) -> int:
        """How many events are stored (named ``name``, if given)."""
        with self._lock:
            conn = self._connection()
            if name is None:
                row = conn.execute("SELECT COUNT(*) FROM events").fetchone()
            else:
                row = conn.execute("SELECT COUNT(*) FROM events WHERE name = ?", (name,)).fetchone()
        return int(row[0])

    def clear(self) -> int:
        """Delete every event and the dedup memory; return how many events went."""
        with self._lock:
            conn = self._connection()
            with conn:
                deleted = conn.execute("DELETE FROM events").rowcount
                conn.execute("DELETE FROM legacy_seen")
        return int(deleted)

    def max_request_id(self) -> int:
        """The highest ``requestId`` stored so far (0 when empty)."""
        with self._lock:
            row = self._connection().execute("SELECT MAX(request_id) FROM events").fetchone()
        return int(row[0] or 0)

    def close(self) -> None:
        """Close the connection; idempotent. Later calls raise :class:`StoreClosed`."""
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


def record(
    event: ValidEvent, *, protocol: str, request_id: int, received_at: int
) -> dict[str, Any]:
    """``event`` as :meth:`Store.events` returns it once stored."""
    return _record(_row(event, protocol, request_id, received_at))


def _record(row: Sequence[Any]) -> dict[str, Any]:
    return {
        "name": row[0],
        "eventId": row[1],
        "anonymousId": row[2],
        "sessionId": row[3],
        "timestamp": row[4],
        "properties": json.loads(row[5]),
        "websiteId": row[6],
        "namespace": row[7],
        "source": row[8],
        "protocol": row[9],
        "receivedAt": row[10],
        "requestId": row[11],
        "profileId": row[12],
        "anonymizeVisitorIds": None if row[13] is None else json.loads(row[13]),
    }


def _row(event: ValidEvent, protocol: str, request_id: int, received_at: int) -> tuple[Any, ...]:
    return (
        _text(event.name),
        _opt_text(event.event_id),
        _opt_text(event.anonymous_id),
        _opt_text(event.session_id),
        event.timestamp,
        # ASCII-escaped: lone surrogates (legal in JSON) cannot be encoded to UTF-8.
        json.dumps(event.properties, separators=(",", ":")),
        _opt_text(event.website_id),
        _opt_text(event.namespace),
        _opt_text(event.source),
        protocol,
        received_at,
        request_id,
        _opt_text(event.profile_id),
        None if event.anonymize_visitor_ids is None else json.dumps(event.anonymize_visitor_ids),
    )


def _opt_text(value: str | None) -> str | None:
    return None if value is None else _text(value)


def _text(value: str) -> str:
    """``value`` with lone surrogates (which SQLite cannot store) replaced by U+FFFD."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return value

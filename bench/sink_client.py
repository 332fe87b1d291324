"""Talking to the counting sink from a worker: reset, read counts, wait for a total."""

from __future__ import annotations

import http.client
import json
import time
from typing import Any
from urllib.parse import urlsplit


class SinkClient:
    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80

    def _request(self, method: str, path: str) -> dict[str, Any]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
        try:
            conn.request(method, path, body=b"" if method == "POST" else None)
            result: dict[str, Any] = json.loads(conn.getresponse().read())
            return result
        finally:
            conn.close()

    def reset(self, target: int = 0, delay_ms: float = 0) -> None:
        self._request("POST", f"/reset?target={target}&delay_ms={delay_ms}")

    def counts(self) -> dict[str, Any]:
        return self._request("GET", "/count")

    def wait_for(
        self, total: int, timeout: float, poll: float = 0.02, stall: float | None = None
    ) -> dict[str, Any]:
        """Poll until the sink has counted ``total`` events or ``timeout`` s passed.

        With ``stall``, give up sooner once the count has not moved for ``stall`` s
        (an SDK that dropped events will never reach ``total``).
        """
        now = time.monotonic()
        end, moved = now + timeout, now
        counts = self.counts()
        while counts["total"] < total and now < end:
            time.sleep(poll)
            later = self.counts()
            now = time.monotonic()
            if later["total"] != counts["total"]:
                moved = now
            elif stall is not None and now - moved > stall:
                return later
            counts = later
        return counts

    def settle(self, quiet: float = 0.3, timeout: float = 30.0) -> dict[str, Any]:
        """Wait until the count stops changing for ``quiet`` s (late requests landed)."""
        end = time.monotonic() + timeout
        counts = self.counts()
        while time.monotonic() < end:
            time.sleep(quiet)
            later = self.counts()
            if later["total"] == counts["total"]:
                return later
            counts = later
        return counts

"""The raw-OTel peer's exporter: log records as a JSON array, one POST per batch.

Deliberately minimal and idiomatic (what a user writes when no vendor exporter
exists): map each record to a dict, ``json.dumps`` the list, POST it over a
keep-alive ``requests.Session``, never raise.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import requests
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult


class JsonPostLogExporter(LogRecordExporter):
    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self._url = url
        self._timeout = timeout
        self._session = requests.Session()
        self._headers = {"Content-Type": "application/json"}

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        events = []
        for readable in batch:
            record = readable.log_record
            events.append(
                {
                    "name": record.event_name,
                    "timestamp": (record.timestamp or record.observed_timestamp or 0) // 1_000_000,
                    "properties": dict(record.attributes or {}),
                }
            )
        try:
            response = self._session.post(
                self._url, data=json.dumps(events), headers=self._headers, timeout=self._timeout
            )
        except requests.RequestException:
            return LogRecordExportResult.FAILURE
        with response:
            ok = response.status_code == 200
        return LogRecordExportResult.SUCCESS if ok else LogRecordExportResult.FAILURE

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True

    def shutdown(self) -> None:
        self._session.close()

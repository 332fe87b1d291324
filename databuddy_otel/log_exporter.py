"""``DatabuddyLogExporter``: OpenTelemetry log records in, Databuddy events out.

The :class:`~databuddy_otel.Databuddy` client runs behind this exporter: its
events arrive as :class:`~databuddy_otel.record.EventRecord` objects whose body
is already the wire JSON, so exporting them is a string join and one POST.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult

from databuddy_otel.delivery import EXPORT_ERROR, Delivery, Failure
from databuddy_otel.ledger import Ledger
from databuddy_otel.record import EventRecord

logger = logging.getLogger("databuddy")

#: Set on a thread while it exports: logging records it emits then are the
#: SDK's own (or its HTTP stack's) and must never become events.
exporting = threading.local()


class DatabuddyLogExporter(LogRecordExporter):
    """Export log records that carry Databuddy events; never raises."""

    def __init__(self, delivery: Delivery, ledger: Ledger) -> None:
        self._delivery = delivery
        self._ledger = ledger
        self._shut_down = False

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        exporting.active = True
        try:
            return self._export(batch)
        finally:
            exporting.active = False

    def _export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        bodies: list[str] = []
        meta: list[tuple[str | None, str | None, bool]] = []
        for readable in batch:
            record = readable.log_record
            if type(record) is EventRecord:
                bodies.append(record.body)
                meta.append((record.event_id, record.event_name, record.caller_id))
        if not bodies:
            return LogRecordExportResult.SUCCESS
        errors: list[Failure | None]
        try:
            errors = self._delivery.send(bodies)
        except Exception as exc:
            logger.exception("Exporting %d Databuddy event(s) failed", len(bodies))
            errors = [Failure(EXPORT_ERROR, f"export failed: {type(exc).__name__}")] * len(bodies)
        try:
            self._ledger.settle(meta, errors)
        except Exception:
            logger.exception("Recording the outcome of %d Databuddy event(s) failed", len(meta))
        if any(errors):
            return LogRecordExportResult.FAILURE
        return LogRecordExportResult.SUCCESS

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        # Nothing is buffered here: each export() sends before it returns.
        return True

    def shutdown(self) -> None:
        if self._shut_down:
            return
        self._shut_down = True
        self._delivery.stop()
        try:
            self._delivery.transport.close()
        except Exception:
            logger.debug("Closing the transport failed", exc_info=True)

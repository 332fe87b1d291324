"""``DatabuddyLogExporter``: OpenTelemetry log records in, Databuddy events out.

A log record (an OpenTelemetry *event*) becomes a Databuddy event when it has an
``event_name`` and the attribute ``databuddy.track=True``; the other attributes
become properties, and a mapping body contributes properties too (attributes
win). See :mod:`databuddy_otel.otel_events` for the reserved attributes and the
baggage fallback. Untagged records are skipped at the cost of one attribute lookup.

Standalone: ``DatabuddyLogExporter(client_id=..., ...)`` (or no arguments with
the ``DATABUDDY_*`` environment variables set, as ``OTEL_LOGS_EXPORTER=databuddy``
builds it) behind a ``BatchLogRecordProcessor``, or ``client=`` to share a
client's connection pool, counters and deduplication.
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping, Sequence
from typing import TYPE_CHECKING

from opentelemetry import baggage
from opentelemetry.sdk._logs import LogRecordProcessor, ReadableLogRecord, ReadWriteLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from typing_extensions import Unpack

from databuddy_otel import outlet
from databuddy_otel.otel_events import INHERITED, TRACK, log_event
from databuddy_otel.thread_roles import sending

if TYPE_CHECKING:
    from databuddy_otel.client import Databuddy

logger = logging.getLogger("databuddy")


class DatabuddyLogExporter(outlet.OutletExporter, LogRecordExporter):
    """Export tagged log records as Databuddy events; ``export()`` never raises.

    The keyword arguments are those of
    :class:`~databuddy_otel.span_exporter.DatabuddySpanExporter`.
    """

    def __init__(
        self,
        *,
        client: Databuddy | None = None,
        include_trace_ids: bool = True,
        **options: Unpack[outlet.ConnectionOptions],
    ) -> None:
        self._outlet = outlet.build(client, options, "DatabuddyLogExporter")
        self._trace_ids = include_trace_ids
        self._shut_down = False

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        """Send the tagged records of ``batch``; never raises.

        ``SUCCESS`` when every event was accepted (or there was none), ``FAILURE``
        when some were not (they are counted in :meth:`stats` and reported to
        ``on_undelivered``) or the exporter is shut down.
        """
        if self._shut_down:
            return LogRecordExportResult.FAILURE
        try:
            with sending():
                return self._export(batch)
        except Exception:
            logger.exception("Exporting %d Databuddy log record(s) failed", len(batch))
            return LogRecordExportResult.FAILURE

    def _export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        if self._outlet.disabled:
            return LogRecordExportResult.SUCCESS
        events = []
        for readable in batch:
            record = readable.log_record
            attributes = record.attributes
            if record.event_name and attributes and attributes.get(TRACK) is True:
                event = log_event(record, trace_ids=self._trace_ids)
                if event is not None:
                    events.append(event)
        if not events:
            return LogRecordExportResult.SUCCESS
        prepared = self._outlet.prepare(events)
        if prepared and not self._outlet.send(prepared):
            return LogRecordExportResult.FAILURE
        return LogRecordExportResult.SUCCESS


class DatabuddyBaggageLogProcessor(LogRecordProcessor):
    """Copy Databuddy ids from the baggage into tagged log records as they are emitted.

    A ``BatchLogRecordProcessor`` drops each record's context before export,
    and with it the baggage; this processor copies the entries
    ``databuddy.anonymous_id``, ``databuddy.session_id``, ``databuddy.namespace``
    and ``databuddy.source`` into the attributes of records that have an
    ``event_name`` and ``databuddy.track=True`` (attributes already set win).
    Register it *before* the exporter's processor::

        provider.add_log_record_processor(DatabuddyBaggageLogProcessor())
        provider.add_log_record_processor(BatchLogRecordProcessor(DatabuddyLogExporter()))
    """

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        """Copy missing Databuddy entries of the record's baggage into a tagged record."""
        try:
            record = log_record.log_record
            attributes = record.attributes
            if not record.event_name or not attributes or attributes.get(TRACK) is not True:
                return
            entries = baggage.get_all(record.context)
            missing = {
                key: value
                for key in INHERITED
                if key not in attributes and isinstance(value := entries.get(key), str) and value
            }
            if not missing:
                return
            if isinstance(attributes, MutableMapping):
                # In place: a batch processor registered earlier shares this mapping.
                attributes.update(missing)
            else:
                record.attributes = {**attributes, **missing}
        except Exception:
            logger.exception("Copying Databuddy baggage into a log record failed")

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Nothing is buffered here: ``True`` at once."""
        return True

    def shutdown(self) -> None:
        """Nothing to release."""

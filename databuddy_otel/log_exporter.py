"""``DatabuddyLogExporter``: OpenTelemetry log records in, Databuddy events out.

A log record (an OpenTelemetry *event*) becomes a Databuddy event when it is named
(its ``event_name``, or its ``event.name`` attribute on releases whose records have
no ``event_name``) and has the attribute ``databuddy.track=True``; the other attributes
become properties, and a mapping body contributes properties too (attributes
win). See :mod:`databuddy_otel._doors.otel_events` for the reserved attributes and the
baggage fallback. Untagged records are skipped at the cost of one attribute lookup.

Standalone: ``DatabuddyLogExporter(client_id=..., ...)`` (or no arguments with
the ``DATABUDDY_*`` environment variables set, as ``OTEL_LOGS_EXPORTER=databuddy``
builds it) behind a ``BatchLogRecordProcessor``, or ``client=`` to share a
client's connection pool, counters and deduplication.

**OpenTelemetry releases.** The SDK renamed the log types in 1.39: ``LogData``,
``LogExporter`` and ``LogExportResult`` became ``ReadableLogRecord`` (a processor
gets a ``ReadWriteLogRecord``), ``LogRecordExporter`` and ``LogRecordExportResult``.
The newer names are imported where they exist, the older ones before; both kinds of
record hold the API ``LogRecord`` as ``log_record``. Processors are called through
``on_emit`` from 1.35, ``emit`` before: the baggage processor answers to both.
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping, Sequence
from typing import TYPE_CHECKING, Any

from opentelemetry import baggage
from opentelemetry.sdk._logs import LogRecordProcessor
from typing_extensions import Unpack

from databuddy_otel._doors import outlet
from databuddy_otel._doors.otel_events import INHERITED, TRACK, log_event, log_event_name
from databuddy_otel._runtime import config

if TYPE_CHECKING:  # type checkers see the current names (opentelemetry-sdk 1.39 and later)
    from opentelemetry.sdk._logs import ReadableLogRecord, ReadWriteLogRecord
    from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
else:
    try:  # opentelemetry-sdk 1.39 and later
        from opentelemetry.sdk._logs import ReadableLogRecord, ReadWriteLogRecord
        from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
    except ImportError:  # before 1.39
        from opentelemetry.sdk._logs import LogData  # type: ignore[attr-defined,unused-ignore]
        from opentelemetry.sdk._logs.export import (  # type: ignore[assignment,unused-ignore]
            LogExporter as LogRecordExporter,
        )
        from opentelemetry.sdk._logs.export import (  # type: ignore[assignment,unused-ignore]
            LogExportResult as LogRecordExportResult,
        )

        ReadableLogRecord = ReadWriteLogRecord = LogData  # type: ignore[misc,unused-ignore]

if TYPE_CHECKING:
    from databuddy_otel.client import Databuddy

logger: logging.Logger = logging.getLogger("databuddy")


class DatabuddyLogExporter(outlet.OutletExporter, LogRecordExporter):
    """Export tagged log records as Databuddy events; ``export()`` never raises.

    The arguments are those of
    :class:`~databuddy_otel.span_exporter.DatabuddySpanExporter`:
    ``DatabuddyLogExporter(client)``, or connection settings.
    """

    _kind = "log record"

    def __init__(
        self,
        client: Databuddy | None = None,
        *,
        include_trace_ids: bool = True,
        **options: Unpack[config.ConnectionOptions],
    ) -> None:
        super().__init__(client, include_trace_ids=include_trace_ids, **options)
        self._warned_unnamed = False

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        """Hand on the tagged records of ``batch``; never raises.

        ``SUCCESS`` when every event was taken (or there was none), ``FAILURE``
        when some were not (they are counted in :meth:`stats` and reported to
        ``on_undelivered``) or the exporter is shut down.
        """
        if self._export(batch):
            return LogRecordExportResult.SUCCESS
        return LogRecordExportResult.FAILURE

    def _events(self, batch: Sequence[ReadableLogRecord]) -> list[dict[str, Any]]:
        events = []
        for readable in batch:
            record = readable.log_record
            attributes = record.attributes
            if attributes and attributes.get(TRACK) is True:
                event = log_event(record, trace_ids=self._trace_ids)
                if event is not None:
                    events.append(event)
                elif not self._warned_unnamed:
                    self._warned_unnamed = True
                    self._outlet.log.warning(UNNAMED_WARNING)
        return events


#: Said once per exporter, for the first tagged record it cannot name.
UNNAMED_WARNING = (
    "Databuddy: a log record tagged databuddy.track=True has no event name and is not sent;"
    " name it: LogRecord(event_name=...) with the Logs API, or extra={'event.name': ...}"
    " on a standard logging call (OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED)"
)


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
            if not attributes or attributes.get(TRACK) is not True:
                return
            if not log_event_name(record):
                return
            # Records carry their context from opentelemetry-api 1.35; before, the
            # current context is the emitter's (processors run in its thread).
            entries = baggage.get_all(getattr(record, "context", None))
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

    def emit(self, log_data: ReadWriteLogRecord) -> None:
        """:meth:`on_emit` under the name opentelemetry-sdk before 1.35 calls."""
        self.on_emit(log_data)

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Nothing is buffered here: ``True`` at once."""
        return True

    def shutdown(self) -> None:
        """Nothing to release."""

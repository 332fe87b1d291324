"""``DatabuddyLogExporter``: OpenTelemetry log records in, Databuddy events out.

The :class:`~databuddy_otel.Databuddy` client runs behind this exporter: its
events arrive as :class:`~databuddy_otel.record.EventRecord` objects whose body
is already the wire JSON, so exporting them is a string join and one POST.

Any other log record (an OpenTelemetry *event*) becomes a Databuddy event when
it has an ``event_name`` and the attribute ``databuddy.track=True``; the other
attributes become properties, and a mapping body contributes properties too
(attributes win). See :mod:`databuddy_otel.otel_events` for the reserved
attributes and the baggage fallback. Those records never took room in a
client's queue, so they are counted and reported but do not touch its queue
accounting. Untagged records are skipped at the cost of one attribute lookup.

Standalone: ``DatabuddyLogExporter(client_id=..., ...)`` (or no arguments with
the ``DATABUDDY_*`` environment variables set, as ``OTEL_LOGS_EXPORTER=databuddy``
builds it) behind a ``BatchLogRecordProcessor``, or ``client=`` to share a
client's transport, retries and counters.
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping, Sequence
from typing import TYPE_CHECKING

from opentelemetry import baggage
from opentelemetry._logs import LogRecord
from opentelemetry.sdk._logs import LogRecordProcessor, ReadableLogRecord, ReadWriteLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from typing_extensions import Unpack

from databuddy_otel import _components
from databuddy_otel._sending import sending
from databuddy_otel.delivery import EXPORT_ERROR, Delivery, Failure
from databuddy_otel.ledger import Ledger
from databuddy_otel.otel_events import INHERITED, TRACK, log_event
from databuddy_otel.record import EventRecord

if TYPE_CHECKING:
    from databuddy_otel.client import Databuddy

logger = logging.getLogger("databuddy")


class DatabuddyLogExporter(_components.OutletExporter, LogRecordExporter):
    """Export log records that carry Databuddy events; never raises.

    ``DatabuddyLogExporter(delivery, ledger)`` is how the client builds it; the
    keyword arguments are those of :class:`~databuddy_otel.span_exporter.DatabuddySpanExporter`.
    """

    def __init__(
        self,
        delivery: Delivery | None = None,
        ledger: Ledger | None = None,
        *,
        client: Databuddy | None = None,
        include_trace_ids: bool = True,
        **options: Unpack[_components.ConnectionOptions],
    ) -> None:
        if delivery is not None and ledger is not None:
            self._outlet = _components.Outlet(delivery, ledger, legacy=delivery.wire.legacy)
        elif delivery is not None or ledger is not None:
            raise ValueError("pass both delivery and ledger, or neither")
        else:
            self._outlet = _components.build(client, options, "DatabuddyLogExporter")
        self._delivery = self._outlet.delivery
        self._ledger = self._outlet.ledger
        self._trace_ids = include_trace_ids
        self._shut_down = False

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        try:
            with sending():
                return self._export(batch)
        except Exception:
            logger.exception("Exporting %d Databuddy log record(s) failed", len(batch))
            return LogRecordExportResult.FAILURE

    def _export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        bodies: list[str] = []
        meta: list[tuple[str | None, str | None, bool]] = []
        foreign: list[LogRecord] = []
        for readable in batch:
            record = readable.log_record
            if type(record) is EventRecord:
                bodies.append(record.body)
                meta.append((record.event_id, record.event_name, record.caller_id))
            elif record.event_name and record.attributes and record.attributes.get(TRACK) is True:
                foreign.append(record)
        prepared = self._prepare(foreign) if foreign else []
        if not bodies and not prepared:
            return LogRecordExportResult.SUCCESS
        own = len(bodies)
        bodies.extend(p.body for p in prepared)
        errors: list[Failure | None]
        try:
            errors = self._delivery.send(bodies)
        except Exception as exc:
            logger.exception("Exporting %d Databuddy event(s) failed", len(bodies))
            errors = [Failure(EXPORT_ERROR, f"export failed: {type(exc).__name__}")] * len(bodies)
        if meta:
            try:
                self._ledger.settle(meta, errors[:own])
            except Exception:
                logger.exception("Recording the outcome of %d Databuddy event(s) failed", len(meta))
        if prepared:
            self._outlet.settle(prepared, errors[own:])
        if any(errors):
            return LogRecordExportResult.FAILURE
        return LogRecordExportResult.SUCCESS

    def _prepare(self, records: list[LogRecord]) -> list[_components.Prepared]:
        if self._outlet.disabled:
            return []
        events = []
        for record in records:
            event = log_event(record, trace_ids=self._trace_ids)
            if event is not None:
                events.append(event)
        return self._outlet.prepare(events)


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
        return True

    def shutdown(self) -> None:
        pass

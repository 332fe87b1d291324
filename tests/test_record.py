"""Prepared events stay compatible with OpenTelemetry's classes and batch processor."""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry._logs import LogRecord
from opentelemetry.sdk._logs import LogRecordProcessor, ReadableLogRecord, ReadWriteLogRecord
from opentelemetry.sdk._logs.export import (
    BatchLogRecordProcessor,
    LogRecordExporter,
    LogRecordExportResult,
)

from databuddy_otel.record import EventRecord, QueuedEvent, enqueuer


def test_event_record_has_every_log_record_field() -> None:
    """EventRecord sets every attribute LogRecord.__init__ sets, so processors can read it."""
    reference = vars(LogRecord())
    ours = vars(EventRecord('{"name":"e"}', "e", "id", False))
    assert set(reference) <= set(ours)


def test_queued_event_has_every_read_write_field() -> None:
    """QueuedEvent carries every field of ReadWriteLogRecord."""
    reference = vars(ReadWriteLogRecord(LogRecord()))
    ours = vars(QueuedEvent(EventRecord("{}", "e", "id", False)))
    assert set(reference) <= set(ours)


class _Collect(LogRecordExporter):
    def __init__(self) -> None:
        self.bodies: list[object] = []

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        self.bodies.extend(r.log_record.body for r in batch)
        return LogRecordExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


def test_enqueuer_takes_the_batch_queue_of_the_installed_sdk() -> None:
    """On the pinned opentelemetry-sdk, prepared events skip on_emit's copy."""
    processor = BatchLogRecordProcessor(_Collect())
    try:
        assert getattr(enqueuer(processor), "__name__", "") == "emit"
    finally:
        processor.shutdown()


def test_enqueuer_falls_back_to_on_emit() -> None:
    """A processor without the shared batch queue is fed through on_emit."""

    class Plain(LogRecordProcessor):
        def on_emit(self, log_record: ReadWriteLogRecord) -> None:
            pass

        def shutdown(self) -> None:
            pass

        def force_flush(self, timeout_millis: int = 30_000) -> bool:
            return True

    seen: list[ReadWriteLogRecord] = []
    plain = Plain()
    plain.on_emit = seen.append  # type: ignore[method-assign]
    record = EventRecord("{}", "e", "1", False)
    enqueuer(plain)(record)  # type: ignore[arg-type]
    assert [r.log_record for r in seen] == [record]


def test_events_queued_either_way_reach_the_exporter() -> None:
    """The direct path and on_emit both deliver the prepared body to the exporter."""
    exporter = _Collect()
    processor = BatchLogRecordProcessor(exporter)
    enqueuer(processor)(EventRecord('{"name":"a"}', "a", "1", False))
    processor.on_emit(QueuedEvent(EventRecord('{"name":"b"}', "b", "2", False)))
    processor.force_flush()
    processor.shutdown()
    assert sorted(exporter.bodies) == ['{"name":"a"}', '{"name":"b"}']  # type: ignore[type-var]

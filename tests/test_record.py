"""The prepared-event record stays compatible with OpenTelemetry's own classes."""

from __future__ import annotations

from opentelemetry._logs import LogRecord
from opentelemetry.sdk._logs import ReadWriteLogRecord

from databuddy_otel.record import EventRecord, QueuedEvent


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

"""Prepared events as OpenTelemetry log records.

The client hands each event to OpenTelemetry's ``BatchLogRecordProcessor`` as a
log record whose body is the event's wire JSON, serialized once at ``track()``
time. The worker thread then only joins strings (see NOTES on GIL starvation).

Building a record through ``Logger.emit`` costs several microseconds of
attribute validation and copying that a pre-serialized event does not need, so
these two subclasses fill the public fields directly. ``tests/test_record.py``
checks that they carry every field the SDK's own classes have.
"""

from __future__ import annotations

from collections.abc import Callable

from opentelemetry._logs import LogRecord
from opentelemetry.context import Context
from opentelemetry.sdk._logs import LogRecordLimits, ReadWriteLogRecord
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.trace import TraceFlags

_EMPTY_CONTEXT = Context()
_NO_FLAGS = TraceFlags(0)
_LIMITS = LogRecordLimits()
_RESOURCE = Resource.get_empty()


class EventRecord(LogRecord):
    """A log record carrying one serialized Databuddy event.

    ``body`` is the event's JSON object for the client's wire generation;
    ``event_name`` its name; ``event_id`` its id; ``caller_id`` whether the
    caller chose that id (only those take part in deduplication).
    """

    body: str
    event_id: str
    caller_id: bool

    def __init__(self, body: str, event_name: str, event_id: str, caller_id: bool) -> None:
        # Every field LogRecord.__init__ sets, without its per-record work.
        self.body = body
        self.event_name = event_name
        self.event_id = event_id
        self.caller_id = caller_id
        self.timestamp = None
        self.observed_timestamp = 0
        self.context = _EMPTY_CONTEXT
        self.trace_id = 0
        self.span_id = 0
        self.trace_flags = _NO_FLAGS
        self.severity_text = None
        self.severity_number = None
        self.attributes = None
        self.exception = None

    @property
    def log_record(self) -> EventRecord:
        """A prepared event is its own read-only view: the exporter reads it as one."""
        return self

    def __copy__(self) -> EventRecord:
        # The batch processor copies each record it queues; ours are never
        # changed after creation, so the copy can be the record itself.
        return self


class QueuedEvent(ReadWriteLogRecord):
    """The processor's view of an :class:`EventRecord` (no attribute checks)."""

    def __init__(self, record: EventRecord) -> None:
        self.log_record = record
        self.resource = _RESOURCE
        self.instrumentation_scope = None
        self.limits = _LIMITS


def enqueuer(processor: BatchLogRecordProcessor) -> Callable[[EventRecord], None]:
    """The cheapest way into ``processor``'s queue for an :class:`EventRecord`.

    ``BatchLogRecordProcessor.on_emit`` copies each record and wraps it in a
    frozen read-only view before queuing it: about 3 µs of a ``track()`` call
    that costs 11 µs without them. Prepared events are never changed after
    creation and only our exporter reads them, so when the processor keeps its
    queue in the shared batch machinery (``_batch_processor``, as
    opentelemetry-sdk 1.33 and later do) the event, its own read-only view,
    goes straight to that queue's ``emit``, which still does the fork check, the shutdown check and
    the worker wake-up. Any other processor gets the public ``on_emit``.
    ``tests/test_record.py`` says which path the installed version takes.
    """
    queue = getattr(processor, "_batch_processor", None)
    emit = getattr(queue, "emit", None)
    if callable(emit):
        return emit  # type: ignore[no-any-return]
    on_emit = processor.on_emit
    return lambda record: on_emit(QueuedEvent(record))

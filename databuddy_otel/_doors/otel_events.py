"""Analytics events inside OpenTelemetry data: the conversion both exporters share.

A span event or a log record is a Databuddy event when its attribute
``databuddy.track`` is ``True`` (the boolean; ``"true"`` does not count), and a
log record only when it is named too. Everything else is ignored at the cost of
one dictionary lookup.

**Log record names.** A record's name is its ``event_name`` (the Logs API has
it from opentelemetry-api 1.35), else its attribute ``event.name``: the way the
Events API (``opentelemetry._events``, 1.27 to 1.43) names the records it
emits, and the way to name a record on a Logs API older than 1.35, where
``LogRecord`` takes no ``event_name``. An ``event.name`` used as the name is
not sent as a property.

=============================  ==========================================
attribute                      becomes
=============================  ==========================================
``databuddy.track``            the tag itself (never sent)
``databuddy.anonymous_id``     ``anonymousId``
``databuddy.session_id``       ``sessionId``
``databuddy.event_id``         ``eventId`` (otherwise a random UUID)
``databuddy.namespace``        ``namespace``
``databuddy.source``           ``source``
any other attribute            a property of the same name
=============================  ==========================================

The name is the span event's name (or the record's name); the
timestamp is the span event's time (or the record's ``timestamp``, else its
``observed_timestamp``) in milliseconds. The trace and span ids of the span are
added as the properties ``trace_id`` (32 hex digits) and ``span_id`` (16 hex
digits) unless the exporter is built with ``include_trace_ids=False``; an
attribute of the same name wins.

**Fallbacks.** When the event's own attributes lack an id, namespace or source,
it is taken from the span's attributes, then from the OpenTelemetry baggage of
the same name, so ids set once at the edge reach every downstream service.
Exported data carries no baggage (a ``BatchLogRecordProcessor`` even drops the
record's context before export), so the entries are copied while the span or
record is live: add :class:`~databuddy_otel.span_exporter.DatabuddyBaggageProcessor`
to the tracer provider (spans, at start) and
:class:`~databuddy_otel.log_exporter.DatabuddyBaggageLogProcessor` to the logger
provider *before* the exporter's processor (log records, at emit). A log record
exported with its context still attached (``SimpleLogRecordProcessor``, with
opentelemetry-api 1.35 or later, whose records carry their context) has its
baggage read directly. ``databuddy.event_id`` has no fallback: events sharing an
id would be deduplicated by the client (``/track`` itself does not deduplicate,
the legacy endpoint keeps one event per ``eventId`` for 24 hours).

**Log record bodies.** A mapping body contributes properties (attributes win
on a clash; keys starting with ``databuddy.`` are ignored); any other body,
such as a message string, is not sent.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

from opentelemetry import baggage
from opentelemetry._logs import LogRecord
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import format_span_id, format_trace_id

__all__ = [
    "ANONYMOUS_ID",
    "EVENT_ID",
    "EVENT_NAME",
    "FIELDS",
    "INHERITED",
    "NAMESPACE",
    "SESSION_ID",
    "SOURCE",
    "SPAN_ID_PROPERTY",
    "TRACE_ID_PROPERTY",
    "TRACK",
    "is_tracked",
    "log_event",
    "log_event_name",
    "span_events",
    "to_event",
]

TRACK = "databuddy.track"
ANONYMOUS_ID = "databuddy.anonymous_id"
SESSION_ID = "databuddy.session_id"
EVENT_ID = "databuddy.event_id"
NAMESPACE = "databuddy.namespace"
SOURCE = "databuddy.source"
#: The attribute naming a log record where it has no ``event_name``.
EVENT_NAME = "event.name"

#: Reserved attribute → the event field it fills.
FIELDS = {
    ANONYMOUS_ID: "anonymousId",
    SESSION_ID: "sessionId",
    EVENT_ID: "eventId",
    NAMESPACE: "namespace",
    SOURCE: "source",
}
#: Reserved attributes a span's attributes or the baggage may supply.
INHERITED = (ANONYMOUS_ID, SESSION_ID, NAMESPACE, SOURCE)

TRACE_ID_PROPERTY = "trace_id"
SPAN_ID_PROPERTY = "span_id"

_RESERVED_PREFIX = "databuddy."


def is_tracked(attributes: Mapping[str, Any] | None) -> bool:
    """True when ``attributes`` carry the ``databuddy.track = True`` tag."""
    return attributes is not None and attributes.get(TRACK) is True


def to_event(
    name: str,
    attributes: Mapping[str, Any],
    timestamp_ns: int,
    *,
    fallbacks: Iterable[Mapping[str, Any]] = (),
    body: Any = None,
    trace_id: int = 0,
    span_id: int = 0,
) -> dict[str, Any]:
    """The event dict (camelCase keys, as ``serialize`` takes it) for tagged ``attributes``.

    ``fallbacks`` are searched in order for the inherited fields the attributes
    lack; non-zero ``trace_id`` / ``span_id`` become properties.
    """
    properties: dict[str, Any] = {}
    if isinstance(body, Mapping):
        for key, value in body.items():
            if not (isinstance(key, str) and key.startswith(_RESERVED_PREFIX)):
                properties[key] = value
    for key, value in attributes.items():
        if key != TRACK and key not in FIELDS:
            properties[key] = value
    if trace_id:
        properties.setdefault(TRACE_ID_PROPERTY, format_trace_id(trace_id))
        if span_id:
            properties.setdefault(SPAN_ID_PROPERTY, format_span_id(span_id))
    event: dict[str, Any] = {
        "name": name,
        "properties": properties,
        "timestamp": timestamp_ns // 1_000_000,
    }
    sources = None
    for key, field in FIELDS.items():
        value = attributes.get(key)
        if value is None and key != EVENT_ID:
            if sources is None:
                sources = list(fallbacks)
            value = next((s[key] for s in sources if s.get(key) is not None), None)
        if value is not None:
            event[field] = value
    return event


def span_events(span: ReadableSpan, *, trace_ids: bool = True) -> list[dict[str, Any]]:
    """The tagged events of a finished span as event dicts (usually none)."""
    events = span.events
    if not events:
        return []
    found: list[dict[str, Any]] = []
    for event in events:
        attributes = event.attributes
        if not attributes or attributes.get(TRACK) is not True:
            continue
        context = span.context
        found.append(
            to_event(
                event.name,
                attributes,
                event.timestamp,
                fallbacks=(span.attributes or {},),
                trace_id=context.trace_id if trace_ids and context is not None else 0,
                span_id=context.span_id if trace_ids and context is not None else 0,
            )
        )
    return found


def log_event_name(record: LogRecord) -> str | None:
    """The record's ``event_name``, else its ``event.name`` attribute, else ``None``."""
    name = getattr(record, "event_name", None)  # no such attribute before opentelemetry-api 1.35
    if name:
        return str(name)
    attributes = record.attributes
    legacy = attributes.get(EVENT_NAME) if attributes else None
    return legacy if isinstance(legacy, str) and legacy else None


def log_event(record: LogRecord, *, trace_ids: bool = True) -> dict[str, Any] | None:
    """The event dict of a tagged, named log record, else ``None``."""
    attributes = record.attributes
    if not attributes or attributes.get(TRACK) is not True:
        return None
    name = getattr(record, "event_name", None)
    if not name:
        name = log_event_name(record)
        if not name:
            return None
        attributes = {k: v for k, v in attributes.items() if k != EVENT_NAME}  # the name
    timestamp = record.timestamp or record.observed_timestamp or time.time_ns()
    context = getattr(record, "context", None)  # no such attribute before opentelemetry-api 1.35
    fallbacks = (baggage.get_all(context),) if context is not None else ()
    return to_event(
        name,
        attributes,
        timestamp,
        fallbacks=fallbacks,
        body=record.body,
        trace_id=(record.trace_id or 0) if trace_ids else 0,
        span_id=(record.span_id or 0) if trace_ids else 0,
    )

"""DatabuddyLogExporter end to end: real LoggerProvider + BatchLogRecordProcessor + dev server."""

from __future__ import annotations

import logging

import pytest
from opentelemetry import baggage, context
from opentelemetry._logs import LogRecord
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.trace import TracerProvider

from databuddy_otel.devserver import DevServer
from databuddy_otel.log_exporter import (
    DatabuddyBaggageLogProcessor,
    DatabuddyLogExporter,
    LogRecordExportResult,
)
from tests.conftest import MakeClient
from tests.otel.conftest import MakeLogExporter, MakeLoggerProvider, wait_until
from tests.otel.records import HAS_CONTEXT, named_record, readable

TAG = {"databuddy.track": True}


def test_tagged_event_record_arrives_with_properties_and_timestamp(
    server: DevServer, make_log_exporter: MakeLogExporter, make_logger_provider: MakeLoggerProvider
) -> None:
    """A tagged log record with event_name arrives; attributes and a dict body are properties."""
    provider = make_logger_provider(BatchLogRecordProcessor(make_log_exporter()))
    provider.get_logger("t").emit(
        named_record(
            "signup",
            timestamp=1_700_000_000_123_456_789,
            attributes={**TAG, "plan": "pro", "seats": 2},
            body={"seats": 1, "referrer": "ad", "databuddy.session_id": "ignored"},
        )
    )
    provider.force_flush()
    [event] = server.events()
    assert event["name"] == "signup"
    assert event["timestamp"] == 1_700_000_000_123
    assert event["properties"] == {"plan": "pro", "seats": 2, "referrer": "ad"}
    assert event["sessionId"] is None


def test_untagged_or_unnamed_records_send_nothing(
    server: DevServer, make_log_exporter: MakeLogExporter, make_logger_provider: MakeLoggerProvider
) -> None:
    """Records without event_name, or without the tag, are skipped."""
    provider = make_logger_provider(BatchLogRecordProcessor(make_log_exporter()))
    logger = provider.get_logger("t")
    logger.emit(LogRecord(body="plain log line"))
    logger.emit(LogRecord(body="tagged but unnamed", attributes=TAG))
    logger.emit(named_record("named_but_untagged", attributes={"k": 1}))
    provider.force_flush()
    assert server.request_count == 0


def test_a_record_named_by_its_event_name_attribute_arrives(
    server: DevServer, make_log_exporter: MakeLogExporter, make_logger_provider: MakeLoggerProvider
) -> None:
    """Without event_name, the event.name attribute (the Events API's) names the record."""
    provider = make_logger_provider(BatchLogRecordProcessor(make_log_exporter()))
    provider.get_logger("t").emit(
        LogRecord(attributes={**TAG, "event.name": "legacy", "plan": "pro"}, body={"k": 1})
    )
    provider.force_flush()
    [event] = server.events()
    assert event["name"] == "legacy"
    assert event["properties"] == {"plan": "pro", "k": 1}


def test_trace_ids_of_the_active_span(
    server: DevServer, make_log_exporter: MakeLogExporter, make_logger_provider: MakeLoggerProvider
) -> None:
    """A record emitted inside a span carries that span's trace_id and span_id."""
    provider = make_logger_provider(BatchLogRecordProcessor(make_log_exporter()))
    tracer = TracerProvider(shutdown_on_exit=False).get_tracer("t")
    with tracer.start_as_current_span("s") as span:
        ids = span.get_span_context()
        # Before API 1.35 a LogRecord does not take the current span's ids by itself.
        own = {} if HAS_CONTEXT else {"trace_id": ids.trace_id, "span_id": ids.span_id}
        provider.get_logger("t").emit(named_record("e", attributes=TAG, **own))
    provider.force_flush()
    props = server.events()[0]["properties"]
    assert props == {"trace_id": f"{ids.trace_id:032x}", "span_id": f"{ids.span_id:016x}"}


def test_ids_from_attributes_then_baggage(
    server: DevServer, make_log_exporter: MakeLogExporter, make_logger_provider: MakeLoggerProvider
) -> None:
    """With the baggage processor first, ids fall back from attributes to the baggage."""
    provider = make_logger_provider(
        DatabuddyBaggageLogProcessor(), BatchLogRecordProcessor(make_log_exporter())
    )
    ctx = baggage.set_baggage("databuddy.anonymous_id", "anon_edge")
    ctx = baggage.set_baggage("databuddy.session_id", "sess_edge", ctx)
    token = context.attach(ctx)
    try:
        provider.get_logger("t").emit(
            named_record("e", attributes={**TAG, "databuddy.session_id": "sess_own"})
        )
    finally:
        context.detach(token)
    provider.force_flush()
    [event] = server.events()
    assert (event["anonymousId"], event["sessionId"]) == ("anon_edge", "sess_own")
    assert event["properties"] == {}


@pytest.mark.skipif(not HAS_CONTEXT, reason="log records carry their context from API 1.35")
def test_baggage_is_read_from_a_record_that_keeps_its_context(
    server: DevServer, make_log_exporter: MakeLogExporter
) -> None:
    """A record exported with its context (no batch processor in between) uses its baggage."""
    token = context.attach(baggage.set_baggage("databuddy.anonymous_id", "anon_ctx"))
    try:
        record = named_record("e", attributes=TAG)
    finally:
        context.detach(token)
    assert make_log_exporter().export([readable(record)]) is LogRecordExportResult.SUCCESS
    assert server.events()[0]["anonymousId"] == "anon_ctx"


def test_outage_during_export_loses_nothing(
    server: DevServer, make_log_exporter: MakeLogExporter, make_logger_provider: MakeLoggerProvider
) -> None:
    """Records exported while the server answers 503 arrive once it recovers."""
    exporter = make_log_exporter(retry_deadline=10)
    provider = make_logger_provider(BatchLogRecordProcessor(exporter, schedule_delay_millis=20))
    server.set_outage(503)
    logger = provider.get_logger("t")
    for i in range(30):
        logger.emit(named_record("e", attributes={**TAG, "i": i}))
    wait_until(lambda: server.request_count >= 2)
    server.set_outage(None)
    events = server.wait_for_events(30, timeout=15)
    assert sorted(e["properties"]["i"] for e in events) == list(range(30))


def test_records_exported_after_the_client_shut_down_are_counted_not_sent(
    server: DevServer, make_client: MakeClient, make_logger_provider: MakeLoggerProvider
) -> None:
    """A provider that flushes after its client shut down: the events are counted as shutdown."""
    client = make_client()
    provider = make_logger_provider(
        BatchLogRecordProcessor(DatabuddyLogExporter(client), schedule_delay_millis=60_000)
    )
    provider.get_logger("t").emit(named_record("late", attributes=TAG))
    assert client.shutdown().success
    provider.shutdown()
    assert server.events() == []
    assert client.stats().undelivered == {"shutdown": 1}


def test_client_reuse_queues_in_the_client(
    server: DevServer,
    make_client: MakeClient,
    make_logger_provider: MakeLoggerProvider,
) -> None:
    """With a client, records go to its queue with its defaults; its flush delivers them."""
    client = make_client(source="worker", batch_timeout=60_000)
    provider = make_logger_provider(BatchLogRecordProcessor(DatabuddyLogExporter(client)))
    for i in range(3):
        provider.get_logger("t").emit(named_record("otel", attributes={**TAG, "i": i}))
    provider.shutdown()
    assert client.stats().queued == 3
    assert client.track(name="after").success and client.flush().success
    assert client.stats().delivered == 4
    assert {e["source"] for e in server.events(name="otel")} == {"worker"}
    assert len(server.events()) == 4


def test_a_tagged_record_without_a_name_is_warned_about_once(
    server: DevServer,
    make_log_exporter: MakeLogExporter,
    make_logger_provider: MakeLoggerProvider,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A tagged record nobody named sends nothing and says once how to name it."""
    provider = make_logger_provider(BatchLogRecordProcessor(make_log_exporter()))
    with caplog.at_level(logging.WARNING, logger="databuddy"):
        for _ in range(3):
            provider.get_logger("t").emit(LogRecord(attributes={**TAG, "plan": "pro"}, body="hi"))
        provider.force_flush()
    warnings = [r.getMessage() for r in caplog.records if "no event name" in r.getMessage()]
    assert len(warnings) == 1 and "event.name" in warnings[0]
    assert server.request_count == 0

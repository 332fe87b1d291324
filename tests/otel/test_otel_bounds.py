"""The exporters' two routes: through a client's port, and standalone within one bound.

With a client, an OpenTelemetry event gets what a ``track()`` of it gets and waits in
the client's queue (and spool), so no processor call waits on the network. Standalone,
each ``export()`` ends within ``min(timeout, retry_deadline)``.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

from databuddy_otel.devserver import DevServer
from databuddy_otel.log_exporter import DatabuddyLogExporter
from databuddy_otel.span_exporter import DatabuddySpanExporter
from tests.conftest import MakeClient
from tests.otel.conftest import (
    MakeLoggerProvider,
    MakeSpanExporter,
    MakeTracerProvider,
    wait_until,
)
from tests.otel.records import named_record

TAG = {"databuddy.track": True}


def test_otel_events_take_the_clients_middleware_and_global_properties(
    server: DevServer,
    make_client: MakeClient,
    make_tracer_provider: MakeTracerProvider,
    make_logger_provider: MakeLoggerProvider,
) -> None:
    """A secret_* span event or log record never arrives; the others are scrubbed and enriched."""
    seen: list[str] = []

    def scrub(event: dict[str, Any]) -> dict[str, Any] | None:
        seen.append(event["name"])
        if event["name"].startswith("secret_"):
            return None
        return {**event, "properties": {**(event.get("properties") or {}), "scrubbed": True}}

    client = make_client(middleware=[scrub])
    client.set_global_properties({"app": "shop"})
    spans = make_tracer_provider(SimpleSpanProcessor(DatabuddySpanExporter(client)))
    tracer = spans.get_tracer("t")
    logs = make_logger_provider(SimpleLogRecordProcessor(DatabuddyLogExporter(client)))
    with tracer.start_as_current_span("s") as span:
        span.add_event("secret_x", {**TAG, "card": "4242"})
        span.add_event("visible", {**TAG, "via": "span"})
    logs.get_logger("t").emit(named_record("secret_x", attributes={**TAG, "card": "4242"}))
    logs.get_logger("t").emit(named_record("visible", attributes={**TAG, "via": "log"}))
    assert client.flush().success
    events = server.events()
    assert sorted(e["properties"]["via"] for e in events) == ["log", "span"]
    for event in events:
        assert event["name"] == "visible"
        assert event["properties"]["scrubbed"] is True
        assert event["properties"]["app"] == "shop"
    assert sorted(seen) == ["secret_x", "secret_x", "visible", "visible"]  # once each
    assert client.stats().filtered == 2


def _closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


#: outage name → what starts it on the dev server (``None``: nobody listens at all).
OUTAGES: dict[str, Callable[[DevServer], None] | None] = {
    "503": lambda s: s.set_outage(503),
    "dropped": lambda s: s.set_outage(0),
    "trickle": lambda s: s.trickle_next(10_000, interval=1.0, store=False),
    "refused": None,
}


@pytest.mark.parametrize("outage", list(OUTAGES))
def test_flush_and_shutdown_with_a_client_are_bounded_in_an_outage(
    server: DevServer, make_client: MakeClient, tmp_path: Path, outage: str
) -> None:
    """force_flush(2000) ends within 2.5 s and shutdown() at once; the spool keeps every event."""
    start_outage = OUTAGES[outage]
    url = server.url if start_outage is not None else _closed_port()
    client = make_client(api_url=url, spool_dir=str(tmp_path), timeout=5.0, retry_deadline=30.0)
    exporter = DatabuddySpanExporter(client)
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=60_000))
    if start_outage is not None:
        start_outage(server)
    tracer = provider.get_tracer("t")
    for i in range(5):
        with tracer.start_as_current_span("s") as span:
            for j in range(10):
                span.add_event("e", {**TAG, "n": i * 10 + j})
    client.track(name="e", properties={"n": 50})  # starts the client's sending at once
    started = time.monotonic()
    provider.force_flush(timeout_millis=2000)
    assert time.monotonic() - started <= 2.5
    started = time.monotonic()
    exporter.force_flush(timeout_millis=2000)  # flushes the client: bounded all the same
    assert time.monotonic() - started <= 2.5
    started = time.monotonic()
    provider.shutdown()
    assert time.monotonic() - started <= 0.5
    stats = client.stats()
    assert stats.undelivered == {}
    assert stats.queued + stats.spooled == 51
    if start_outage is None:
        return
    server.clear_faults()
    server.set_outage(None)
    assert client.flush(timeout=20).success
    assert sorted(e["properties"]["n"] for e in server.events()) == list(range(51))


@pytest.mark.parametrize("outage", ["503", "trickle"])
def test_a_standalone_export_under_a_simple_processor_is_bounded_by_its_timeout(
    server: DevServer,
    make_span_exporter: MakeSpanExporter,
    make_tracer_provider: MakeTracerProvider,
    caplog: pytest.LogCaptureFixture,
    outage: str,
) -> None:
    """span.end() holds the request thread at most timeout; the loss is counted and logged once."""
    exporter = make_span_exporter(timeout=1.0, retry_deadline=30.0)
    tracer = make_tracer_provider(SimpleSpanProcessor(exporter)).get_tracer("t")
    start_outage = OUTAGES[outage]
    assert start_outage is not None
    start_outage(server)
    span = tracer.start_span("request")
    span.add_event("a", TAG)
    span.add_event("b", TAG)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="databuddy"):
        span.end()
    assert time.monotonic() - started <= 1.5
    assert exporter.stats().undelivered == {"retries_exhausted": 2}
    warnings = [r.getMessage() for r in caplog.records if "could not deliver" in r.getMessage()]
    assert len(warnings) == 1 and "2 event(s)" in warnings[0]


def test_a_full_client_queue_refuses_an_otel_event_at_once(
    server: DevServer, make_client: MakeClient, make_tracer_provider: MakeTracerProvider
) -> None:
    """With a slow server and a full queue, span.end() does not wait for room: counted instead."""
    client = make_client(max_queue_size=5, batch_size=5, timeout=5.0, retry_deadline=30.0)
    spans = make_tracer_provider(SimpleSpanProcessor(DatabuddySpanExporter(client)))
    tracer = spans.get_tracer("t")
    server.trickle_next(10_000, interval=1.0, store=False)
    for i in range(5):
        client.track(name="filler", properties={"i": i})
    wait_until(lambda: server.request_count >= 1)
    span = tracer.start_span("request")
    for i in range(10):
        span.add_event("e", {**TAG, "i": i})
    started = time.monotonic()
    span.end()
    assert time.monotonic() - started <= 0.5
    assert client.stats().undelivered == {"queue_full": 10}

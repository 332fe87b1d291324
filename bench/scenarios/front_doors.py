"""Scenario 6: the logging front doors, per record, against their baselines.

Each variant runs in its own process with a client sized like scenario 1
(batches of 100, a queue that holds every event, sink up). Every call is
timed on its own with ``perf_counter_ns``; property dicts are built outside
the timed region; 100 warm-up calls are not timed.

* ``null-*``: a stdlib logger with only a ``logging.NullHandler`` (the baseline);
* ``handler-*``: the same logger with ``databuddy_logging.DatabuddyHandler``;
  untagged = ``logger.info("request handled")``, tagged =
  ``logger.info("user_signup", extra={"db_props": props})``;
* ``track``: ``client.track()`` measured the same way (the tagged target's base);
* ``otel-logging-tagged``: the same tagged record through OpenTelemetry's logging path
  (``LoggingHandler`` + ``BatchLogRecordProcessor`` + the OTLP/HTTP log exporter,
  batches of 100, a queue that holds every record), the way a service already on
  OpenTelemetry would ship it;
* ``structlog-*``: a typical structlog chain ending in ``JSONRenderer`` (output
  returned, not written) without / with ``DatabuddyProcessor(client)``; tagged =
  ``log.info("user_signup", db_props=props)`` (assumed to mirror the handler's key);
* ``span-export-*``: ``DatabuddySpanExporter.export()`` over finished spans, each
  with one span event (tagged: attribute ``databuddy.track=True``), per event.

A variant whose module does not exist yet returns ``skipped``.
"""

from __future__ import annotations

import logging
from array import array
from collections.abc import Callable
from time import perf_counter_ns
from typing import Any

from bench.scenarios._measure import percentile
from bench.sdks import EVENT, make_props

WARMUP = 100
MISSING = "n/a (module missing)"

VARIANTS = (
    "null-untagged",
    "handler-untagged",
    "null-tagged",
    "handler-tagged",
    "track",
    "otel-logging-tagged",
    "structlog-base",
    "structlog-untagged",
    "structlog-base-tagged",
    "structlog-tagged",
    "span-export-untagged",
    "span-export-tagged",
)


def _client(url: str, n: int) -> Any:
    from databuddy_otel import Databuddy

    return Databuddy(
        client_id="bench", api_url=url, batch_size=100, max_queue_size=max(1000, n + WARMUP)
    )


def _time_calls(call: Callable[[dict[str, Any]], object], n: int) -> dict[str, Any]:
    for i in range(WARMUP):
        call(make_props(i))
    took = array("q", bytes(8 * n))
    for i in range(n):
        props = make_props(i)
        start = perf_counter_ns()
        call(props)
        took[i] = perf_counter_ns() - start
    ordered = sorted(took)
    return {
        "n": n,
        "mean_us": sum(took) / n / 1000,
        "p50_us": percentile(ordered, 50) / 1000,
        "p99_us": percentile(ordered, 99) / 1000,
    }


def _stdlib(variant: str, url: str, n: int) -> Callable[[dict[str, Any]], object]:
    logger = logging.getLogger("bench.app")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    if variant.startswith("null"):
        logger.addHandler(logging.NullHandler())
    elif variant.startswith("otel-logging"):
        logger.addHandler(_otel_logging_handler(url, n))
    else:
        import databuddy_logging

        logger.addHandler(databuddy_logging.DatabuddyHandler(client=_client(url, n)))
    info = logger.info
    if variant.endswith("untagged"):
        return lambda props: info("request handled")
    return lambda props: info(EVENT, extra={"db_props": props})


def _otel_logging_handler(url: str, n: int) -> logging.Handler:
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor

    provider = LoggerProvider()
    provider.add_log_record_processor(
        BatchLogRecordProcessor(
            OTLPLogExporter(endpoint=url.rstrip("/") + "/v1/logs"),
            max_queue_size=max(2048, n + WARMUP),
            max_export_batch_size=100,
        )
    )
    return LoggingHandler(logger_provider=provider)


def _structlog(variant: str, url: str, n: int) -> Callable[[dict[str, Any]], object]:
    import structlog

    processors: list[Any] = [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso"),
        structlog.processors.JSONRenderer(),
    ]
    if "base" not in variant:
        from databuddy_logging.structlog import DatabuddyProcessor

        processors.insert(-1, DatabuddyProcessor(_client(url, n)))
    log = structlog.wrap_logger(
        structlog.ReturnLogger(),
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
    )
    if variant.endswith("tagged") and not variant.endswith("untagged"):
        return lambda props: log.info(EVENT, db_props=props)
    return lambda props: log.info("request handled", user="user-42")


def _span_export(variant: str, url: str, n: int) -> dict[str, Any]:
    from databuddy_otel.span_exporter import DatabuddySpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    count = min(n, 20_000)
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("bench")
    tagged = variant.endswith("-tagged")
    for i in range(count):
        with tracer.start_as_current_span("handle request") as span:
            attributes: dict[str, Any] = make_props(i)
            if tagged:
                attributes["databuddy.track"] = True
            span.add_event(EVENT, attributes)
    spans = memory.get_finished_spans()
    client = _client(url, count)
    exporter = DatabuddySpanExporter(client=client)
    start = perf_counter_ns()
    for first in range(0, len(spans), 100):
        exporter.export(spans[first : first + 100])
    elapsed = perf_counter_ns() - start
    return {"n": count, "mean_us": elapsed / count / 1000, "queued": client.stats().queued}


def run(sdk: str, params: dict[str, Any]) -> dict[str, Any]:
    url, n = params["url"], params["n"]
    try:
        if sdk.startswith("span-export"):
            return _span_export(sdk, url, n)
        if sdk == "track":
            client = _client(url, n)
            track = client.track
            return _time_calls(lambda props: track(name=EVENT, properties=props), n)
        if sdk.startswith("structlog"):
            return _time_calls(_structlog(sdk, url, n), n)
        return _time_calls(_stdlib(sdk, url, n), n)
    except (ImportError, AttributeError) as exc:
        return {"skipped": MISSING, "reason": f"{type(exc).__name__}: {exc}"}

"""Fixtures for the OpenTelemetry exporters: real providers, exporters aimed at the dev server."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from opentelemetry.sdk._logs import LoggerProvider, LogRecordProcessor
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider

from databuddy_otel.devserver import DevServer
from databuddy_otel.log_exporter import DatabuddyLogExporter
from databuddy_otel.span_exporter import DatabuddySpanExporter

MakeSpanExporter = Callable[..., DatabuddySpanExporter]
MakeLogExporter = Callable[..., DatabuddyLogExporter]
MakeTracerProvider = Callable[..., TracerProvider]
MakeLoggerProvider = Callable[..., LoggerProvider]


def _test_settings(server: DevServer, kwargs: dict[str, Any]) -> dict[str, Any]:
    if "client" not in kwargs:
        kwargs.setdefault("api_url", server.url)
        if "api_key" not in kwargs:
            kwargs.setdefault("client_id", "test-site")
        kwargs.setdefault("retry_deadline", 5.0)
        kwargs.setdefault("timeout", 2.0)
    return kwargs


@pytest.fixture
def make_span_exporter(server: DevServer) -> Iterator[MakeSpanExporter]:
    """Span exporters aimed at ``server`` with test-friendly timings; shut down after the test."""
    made: list[DatabuddySpanExporter] = []

    def make(**kwargs: Any) -> DatabuddySpanExporter:
        exporter = DatabuddySpanExporter(**_test_settings(server, kwargs))
        made.append(exporter)
        return exporter

    yield make
    for exporter in made:
        exporter.shutdown()


@pytest.fixture
def make_log_exporter(server: DevServer) -> Iterator[MakeLogExporter]:
    """Log exporters aimed at ``server`` with test-friendly timings; shut down after the test."""
    made: list[DatabuddyLogExporter] = []

    def make(**kwargs: Any) -> DatabuddyLogExporter:
        exporter = DatabuddyLogExporter(**_test_settings(server, kwargs))
        made.append(exporter)
        return exporter

    yield make
    for exporter in made:
        exporter.shutdown()


@pytest.fixture
def make_tracer_provider() -> Iterator[MakeTracerProvider]:
    """Real tracer providers (not the global one) with the given span processors."""
    made: list[TracerProvider] = []

    def make(*processors: SpanProcessor, **kwargs: Any) -> TracerProvider:
        provider = TracerProvider(shutdown_on_exit=False, **kwargs)
        for processor in processors:
            provider.add_span_processor(processor)
        made.append(provider)
        return provider

    yield make
    for provider in made:
        provider.shutdown()


@pytest.fixture
def make_logger_provider() -> Iterator[MakeLoggerProvider]:
    """Real logger providers (not the global one) with the given log record processors."""
    made: list[LoggerProvider] = []

    def make(*processors: LogRecordProcessor) -> LoggerProvider:
        provider = LoggerProvider(shutdown_on_exit=False)
        for processor in processors:
            provider.add_log_record_processor(processor)
        made.append(provider)
        return provider

    yield make
    for provider in made:
        provider.shutdown()


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll ``condition`` until it holds; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(0.01)

"""The OpenTelemetry exporter contract, for both exporters: never raise, bounded, idempotent."""

from __future__ import annotations

import logging
from typing import Any, Callable, Union

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry import context
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.trace import SpanContext, TraceFlags

from databuddy_otel._runtime import thread_roles
from databuddy_otel.devserver import DevServer
from databuddy_otel.log_exporter import DatabuddyLogExporter, LogRecordExportResult
from databuddy_otel.models import HttpAnswer
from databuddy_otel.span_exporter import DatabuddySpanExporter
from tests.otel.records import named_record, readable

try:
    from opentelemetry.instrumentation.utils import is_http_instrumentation_enabled
except ImportError:  # opentelemetry-instrumentation absent: check the plain key it honours

    def is_http_instrumentation_enabled() -> bool:
        return not context.get_value("suppress_instrumentation")


TAG = {"databuddy.track": True}
NOW_NS = 1_750_000_000_000_000_000
Exporter = Union[DatabuddySpanExporter, DatabuddyLogExporter]
OK = (SpanExportResult.SUCCESS, LogRecordExportResult.SUCCESS)


class FakeTransport:
    """Answers every POST with ``status``, or raises ``error``; records what it saw."""

    def __init__(self, status: int = 200, error: BaseException | None = None) -> None:
        self.status = status
        self.error = error
        self.posts = 0
        self.instrumented: list[bool] = []

    def post(self, url: str, body: bytes, headers: dict[str, str], timeout: float) -> HttpAnswer:
        self.posts += 1
        self.instrumented.append(is_http_instrumentation_enabled())
        if self.error is not None:
            raise self.error
        return HttpAnswer(self.status, '{"status":"success"}', {})

    def close(self) -> None:
        pass


def span_with(events: list[tuple[str, dict[str, Any]]], timestamp: int = NOW_NS) -> ReadableSpan:
    ctx = SpanContext(0x1234, 0x5678, is_remote=False, trace_flags=TraceFlags(1))
    return ReadableSpan(
        name="s",
        context=ctx,
        events=[Event(name, attributes, timestamp) for name, attributes in events],
    )


def record_with(name: str, attributes: dict[str, Any], body: Any = None) -> Any:
    return readable(named_record(name, attributes=attributes, body=body, timestamp=NOW_NS))


def export_one(exporter: Exporter, attributes: dict[str, Any]) -> object:
    if isinstance(exporter, DatabuddySpanExporter):
        return exporter.export([span_with([("e", attributes)])])
    return exporter.export([record_with("e", attributes)])


KINDS: list[Callable[..., Exporter]] = [DatabuddySpanExporter, DatabuddyLogExporter]


@pytest.fixture(params=KINDS, ids=["span", "log"])
def kind(request: pytest.FixtureRequest) -> Callable[..., Exporter]:
    """Each test runs once per exporter class."""
    return request.param  # type: ignore[no-any-return]


def test_export_never_raises_when_the_transport_does(kind: Callable[..., Exporter]) -> None:
    """A transport raising anything makes export() return FAILURE, never raise."""
    transport = FakeTransport(error=RuntimeError("boom"))
    exporter = kind(client_id="c", transport=transport, retry_deadline=0.3)
    assert export_one(exporter, TAG) not in OK
    assert transport.posts >= 1
    assert exporter.stats().undelivered == {"retries_exhausted": 1}


def test_rejected_events_fail_the_export(kind: Callable[..., Exporter]) -> None:
    """A 4xx answer is final: FAILURE, counted as rejected, one attempt."""
    transport = FakeTransport(status=401)
    exporter = kind(client_id="c", transport=transport)
    assert export_one(exporter, TAG) not in OK
    assert transport.posts == 1
    assert exporter.stats().undelivered == {"rejected": 1}


def test_shutdown_twice_force_flush_and_export_after(kind: Callable[..., Exporter]) -> None:
    """shutdown() is idempotent, force_flush() returns True, exports afterwards fail."""
    transport = FakeTransport()
    exporter = kind(client_id="c", transport=transport)
    assert exporter.force_flush(timeout_millis=10) is True
    exporter.shutdown()
    exporter.shutdown()
    assert export_one(exporter, TAG) not in OK
    assert transport.posts == 0


def test_direct_export_suppresses_instrumentation(kind: Callable[..., Exporter]) -> None:
    """export() called directly (no OTel processor) runs the HTTP call with instrumentation off."""
    transport = FakeTransport()
    exporter = kind(client_id="c", transport=transport)
    assert export_one(exporter, TAG) in OK
    assert transport.instrumented == [False]
    assert is_http_instrumentation_enabled()


def test_disabled_sends_nothing(kind: Callable[..., Exporter]) -> None:
    """disabled=True exports successfully without a request."""
    transport = FakeTransport()
    exporter = kind(client_id="c", transport=transport, disabled=True)
    assert export_one(exporter, TAG) in OK
    assert transport.posts == 0


def test_constructible_from_the_environment(
    kind: Callable[..., Exporter], server: DevServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With DATABUDDY_* set, the exporter needs no arguments (as OTEL_*_EXPORTER builds it)."""
    monkeypatch.setenv("DATABUDDY_CLIENT_ID", "env-site")
    monkeypatch.setenv("DATABUDDY_API_URL", server.url)
    exporter = kind()
    try:
        assert export_one(exporter, TAG) in OK
    finally:
        exporter.shutdown()
    assert server.events()[0]["websiteId"] == "env-site"


def test_missing_credentials_name_the_variable(
    kind: Callable[..., Exporter], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Without credentials anywhere, an exporter is disabled and says so naming the variable."""
    monkeypatch.delenv("DATABUDDY_CLIENT_ID", raising=False)
    monkeypatch.delenv("DATABUDDY_API_KEY", raising=False)
    monkeypatch.delenv("DATABUDDY_DISABLED", raising=False)
    monkeypatch.setattr("databuddy_otel._runtime.config._warned_no_credentials", False)
    with caplog.at_level(logging.WARNING, logger="databuddy"):
        exporter = kind()
    try:
        assert exporter._outlet.disabled
        assert "DATABUDDY_CLIENT_ID" in caplog.text
    finally:
        exporter.shutdown()


def test_exporters_refuse_unknown_options() -> None:
    """A misspelt option is a TypeError naming it and the options there are."""
    for kind in (DatabuddySpanExporter, DatabuddyLogExporter):
        with pytest.raises(TypeError, match=r"batch_sise.*client_id"):
            kind(client_id="c", batch_sise=10)  # type: ignore[call-arg]


scalars = st.one_of(
    st.text(max_size=20), st.booleans(), st.integers(-(2**63), 2**63 - 1), st.floats()
)
values = st.one_of(scalars, st.lists(st.text(max_size=5), max_size=3))
reserved = st.sampled_from(
    [
        "databuddy.anonymous_id",
        "databuddy.session_id",
        "databuddy.event_id",
        "databuddy.namespace",
        "databuddy.source",
    ]
)
attribute_sets = st.dictionaries(st.one_of(st.text(max_size=140), reserved), values, max_size=55)
events = st.tuples(st.text(max_size=300), attribute_sets, st.booleans())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=st.lists(events, max_size=8), timestamp=st.integers(0, 2**63 - 1))
def test_never_raises_and_accounts_for_every_tagged_event(
    batch: list[tuple[str, dict[str, Any], bool]], timestamp: int
) -> None:
    """Any attributes: export() returns a result and every tagged event is counted once."""
    transport = FakeTransport()
    tagged = 0
    for kind in KINDS:
        exporter = kind(client_id="c", transport=transport)
        items = [(n, {**a, **TAG} if t else a) for n, a, t in batch]
        if kind is DatabuddySpanExporter:
            result = exporter.export([span_with(items, timestamp)])
        else:
            result = exporter.export([record_with(n, a) for n, a in items])
        assert result in (*OK, SpanExportResult.FAILURE, LogRecordExportResult.FAILURE)
        tagged = sum(1 for n, _, t in batch if t and (n or kind is DatabuddySpanExporter))
        stats = exporter.stats()
        assert stats.delivered + sum(stats.undelivered.values()) + stats.deduplicated == tagged


def test_sending_sets_the_public_key_and_nests() -> None:
    """sending() sets the plain suppress key instrumentations honour, and nests."""
    with thread_roles.sending():
        with thread_roles.sending():
            assert context.get_value("suppress_instrumentation") is True
        assert thread_roles.is_sending()
    assert context.get_value("suppress_instrumentation") is None
    assert not thread_roles.is_sending()

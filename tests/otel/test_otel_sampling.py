"""Sampling: which analytics events arrive under TraceIdRatioBased, and the remedy."""

from __future__ import annotations

from opentelemetry import baggage, context
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_ON,
    Decision,
    ParentBased,
    TraceIdRatioBased,
)
from opentelemetry.trace import Tracer

from databuddy_otel.devserver import DevServer
from databuddy_otel.sampling import AlwaysRecordSampler, DatabuddySpanProcessor
from tests.conftest import MakeClient
from tests.otel.conftest import MakeSpanExporter, MakeTracerProvider

TAG = {"databuddy.track": True}
# TraceIdRatioBased(0.5) samples a trace when its low 64 bits are below 2**63.
SAMPLED_TRACE = (0xAB << 64) | 0x10
DROPPED_TRACE = (0xCD << 64) | (1 << 63) | 0x10


class AlternatingIds(IdGenerator):
    """Trace ids alternate sampled / dropped under a 0.5 ratio, so the test is deterministic."""

    def __init__(self) -> None:
        self._n = 0
        self._span = 0

    def generate_trace_id(self) -> int:
        self._n += 1
        return SAMPLED_TRACE + self._n if self._n % 2 else DROPPED_TRACE + self._n

    def generate_span_id(self) -> int:
        self._span += 1
        return self._span


def run_traces(tracer: Tracer, count: int = 6) -> None:
    """One trace per request, each with one tagged event numbered ``i``."""
    for i in range(count):
        with tracer.start_as_current_span(f"request-{i}") as span:
            span.add_event("visit", {**TAG, "i": i})


def test_ratio_sampler_sends_only_sampled_traces_events(
    server: DevServer,
    make_span_exporter: MakeSpanExporter,
    make_tracer_provider: MakeTracerProvider,
) -> None:
    """Behind TraceIdRatioBased(0.5), only events of sampled traces reach the exporter."""
    provider = make_tracer_provider(
        BatchSpanProcessor(make_span_exporter()),
        sampler=TraceIdRatioBased(0.5),
        id_generator=AlternatingIds(),
    )
    run_traces(provider.get_tracer("t"))
    provider.force_flush()
    assert sorted(e["properties"]["i"] for e in server.events()) == [0, 2, 4]


def test_record_only_spans_still_skip_the_batch_exporter(
    server: DevServer,
    make_span_exporter: MakeSpanExporter,
    make_tracer_provider: MakeTracerProvider,
) -> None:
    """AlwaysRecordSampler alone does not help an exporter behind BatchSpanProcessor."""
    provider = make_tracer_provider(
        BatchSpanProcessor(make_span_exporter()),
        sampler=AlwaysRecordSampler(TraceIdRatioBased(0.5)),
        id_generator=AlternatingIds(),
    )
    run_traces(provider.get_tracer("t"))
    provider.force_flush()
    assert sorted(e["properties"]["i"] for e in server.events()) == [0, 2, 4]


def test_remedy_delivers_every_event_and_keeps_trace_sampling(
    server: DevServer, make_client: MakeClient, make_tracer_provider: MakeTracerProvider
) -> None:
    """AlwaysRecordSampler + DatabuddySpanProcessor: all events arrive, traces stay sampled."""
    traces = InMemorySpanExporter()
    provider = make_tracer_provider(
        DatabuddySpanProcessor(make_client()),
        BatchSpanProcessor(traces),
        sampler=AlwaysRecordSampler(TraceIdRatioBased(0.5)),
        id_generator=AlternatingIds(),
    )
    run_traces(provider.get_tracer("t"))
    provider.force_flush()
    assert sorted(e["properties"]["i"] for e in server.events()) == list(range(6))
    assert sorted(s.name for s in traces.get_finished_spans()) == [
        "request-0",
        "request-2",
        "request-4",
    ]


def test_parent_based_always_on_keeps_every_event(
    server: DevServer,
    make_span_exporter: MakeSpanExporter,
    make_tracer_provider: MakeTracerProvider,
) -> None:
    """ParentBased(ALWAYS_ON), the SDK default, sends every tagged event."""
    provider = make_tracer_provider(
        BatchSpanProcessor(make_span_exporter()),
        sampler=ParentBased(ALWAYS_ON),
        id_generator=AlternatingIds(),
    )
    run_traces(provider.get_tracer("t"))
    provider.force_flush()
    assert len(server.events()) == 6


def test_processor_copies_baggage_and_tracks_through_the_client(
    server: DevServer, make_client: MakeClient, make_tracer_provider: MakeTracerProvider
) -> None:
    """DatabuddySpanProcessor copies baggage ids and applies the client's global properties."""
    client = make_client()
    client.set_global_properties({"app": "shop"})
    provider = make_tracer_provider(DatabuddySpanProcessor(client))
    token = context.attach(baggage.set_baggage("databuddy.anonymous_id", "anon_edge"))
    try:
        with provider.get_tracer("t").start_as_current_span("s") as span:
            span.add_event("e", {**TAG, "k": 1})
            span.add_event("untagged")
    finally:
        context.detach(token)
    provider.force_flush()
    [event] = server.events()
    assert event["anonymousId"] == "anon_edge"
    assert event["properties"]["app"] == "shop" and event["properties"]["k"] == 1
    assert event["properties"]["trace_id"] == f"{span.get_span_context().trace_id:032x}"


def test_processor_shuts_down_only_a_client_it_built(
    make_client: MakeClient, make_tracer_provider: MakeTracerProvider
) -> None:
    """A client passed in stays usable after the provider shuts down; shutdown is idempotent."""
    client = make_client()
    processor = DatabuddySpanProcessor(client)
    processor.shutdown()
    processor.shutdown()
    assert client.track(name="still_open").success


def test_always_record_sampler_turns_drop_into_record_only() -> None:
    """Where the delegate drops, the wrapper records without sampling; otherwise it agrees."""
    sampler = AlwaysRecordSampler(TraceIdRatioBased(0.5))
    assert sampler.should_sample(None, DROPPED_TRACE, "s").decision is Decision.RECORD_ONLY
    assert sampler.should_sample(None, SAMPLED_TRACE, "s").decision is Decision.RECORD_AND_SAMPLE
    assert sampler.get_description().startswith("AlwaysRecordSampler{TraceIdRatioBased")

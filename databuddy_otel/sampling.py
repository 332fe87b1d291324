"""Sampling versus analytics: why sampled-out spans lose their events, and the remedy.

A sampler decides when a span starts. A span it drops is never recording: its
events are discarded at once, and no processor or exporter ever sees them. A
``BatchSpanProcessor`` also hands its exporter only *sampled* spans. So behind
``TraceIdRatioBased(0.1)`` a :class:`~databuddy_otel.span_exporter.DatabuddySpanExporter`
receives about one analytics event in ten: the events are sampled with the traces.

Remedies, simplest first:

1. Sample everything that carries analytics: the SDK default,
   ``ParentBased(ALWAYS_ON)``, keeps every span; sample by ratio only in
   services that emit no tagged events.
2. Record every span, sample only what the trace backend gets: wrap the sampler
   in :class:`AlwaysRecordSampler` and add :class:`DatabuddySpanProcessor`
   (instead of ``BatchSpanProcessor(DatabuddySpanExporter())``; with both,
   events of sampled spans would be sent twice)::

       provider = TracerProvider(sampler=AlwaysRecordSampler(ParentBased(TraceIdRatioBased(0.1))))
       provider.add_span_processor(DatabuddySpanProcessor(Databuddy(client_id="...")))
       provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))  # still 10 %

   Spans the ratio drops become *record-only*: not sampled (the trace backend
   and downstream services see the same 10 %), but recording, so the processor
   gets every tagged event. Recording costs what a sampled span costs in
   memory and CPU, though nothing is exported for it.
3. Emit analytics as OpenTelemetry log events (``event_name`` plus
   ``databuddy.track=True``) through
   :class:`~databuddy_otel.log_exporter.DatabuddyLogExporter`: log records are
   never sampled.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

from databuddy_otel._doors.otel_events import span_events
from databuddy_otel._runtime.state import State
from databuddy_otel.client import Databuddy
from databuddy_otel.span_exporter import DatabuddyBaggageProcessor

__all__ = ["AlwaysRecordSampler", "DatabuddySpanProcessor"]

logger: logging.Logger = logging.getLogger("databuddy")


class AlwaysRecordSampler(Sampler):
    """Record every span; keep ``delegate``'s sampled flag.

    Where ``delegate`` drops a span, the span is recorded without being sampled
    (``RECORD_ONLY``), so span processors see it while exporters behind a
    ``BatchSpanProcessor`` and downstream services do not.
    """

    def __init__(self, delegate: Sampler) -> None:
        self._delegate = delegate

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        """The delegate's decision, with ``DROP`` turned into ``RECORD_ONLY``."""
        result = self._delegate.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )
        if result.decision is Decision.DROP:
            return SamplingResult(Decision.RECORD_ONLY, result.attributes, result.trace_state)
        return result

    def get_description(self) -> str:
        """``AlwaysRecordSampler{<the delegate's description>}``."""
        return f"AlwaysRecordSampler{{{self._delegate.get_description()}}}"


class DatabuddySpanProcessor(DatabuddyBaggageProcessor):
    """Track the tagged events of every recording span, sampled or not, through a client.

    When a span ends, each of its events tagged ``databuddy.track=True``
    becomes one ``client.track()`` call (converted as
    :mod:`databuddy_otel._doors.otel_events` describes), so the client's batching,
    retries, global properties, middleware and ids bound with
    :func:`~databuddy_otel.bind_ids` apply. It also copies Databuddy ids from
    the baggage onto each span as it starts, like
    :class:`~databuddy_otel.span_exporter.DatabuddyBaggageProcessor`.

    Without ``client`` it builds ``Databuddy()`` from the ``DATABUDDY_*``
    environment variables and shuts it down with the tracer provider; a client
    passed in is left for its owner to shut down. Spans without tagged events
    cost one check of their event list.
    """

    def __init__(
        self,
        client: Databuddy | None = None,
        *,
        include_trace_ids: bool = True,
        copy_baggage: bool = True,
    ) -> None:
        self._client = client if client is not None else Databuddy()
        self._owns_client = client is None
        self._trace_ids = include_trace_ids
        self._copy_baggage = copy_baggage
        self._state = State.OPEN

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Copy Databuddy ids from the baggage onto the span (unless ``copy_baggage=False``)."""
        if self._copy_baggage:
            super().on_start(span, parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        """Track each tagged event of the ended span through the client; never raises."""
        if not span.events or self._state is not State.OPEN:
            return
        try:
            for event in span_events(span, trace_ids=self._trace_ids):
                self._client.track(event)
        except Exception:
            logger.exception("Tracking Databuddy events of span %r failed", span.name)

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Send what the client has queued, within ``timeout_millis``."""
        return self._client.flush(timeout=timeout_millis / 1000).success

    def shutdown(self) -> None:
        """Stop tracking; shut the client down if this processor built it. Idempotent."""
        if self._state is not State.OPEN:
            return
        self._state = State.CLOSED
        if self._owns_client:
            self._client.shutdown()

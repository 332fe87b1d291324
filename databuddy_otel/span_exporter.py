"""``DatabuddySpanExporter``: tagged span events in, Databuddy events out.

Mark a span event as analytics with ``databuddy.track=True``; every other
attribute becomes a property (see :mod:`databuddy_otel.otel_events` for the
reserved attributes, the id fallbacks and the ``trace_id`` / ``span_id``
properties)::

    provider = TracerProvider()
    provider.add_span_processor(DatabuddyBaggageProcessor())  # ids from baggage
    provider.add_span_processor(BatchSpanProcessor(DatabuddySpanExporter(client_id="...")))
    with provider.get_tracer("shop").start_as_current_span("checkout") as span:
        span.add_event("purchase", {"databuddy.track": True, "plan": "pro"})

Spans without tagged events cost one scan of their (usually empty) event list
and send nothing. Zero-code: ``OTEL_TRACES_EXPORTER=databuddy`` with the
``DATABUDDY_*`` environment variables.

**Sampling.** A span that the sampler drops is never recording: its events are
discarded before any processor or exporter sees them, and this exporter (like
every exporter behind a ``BatchSpanProcessor``) only receives sampled spans.
With a ratio sampler, analytics events are sampled too. See
:mod:`databuddy_otel.sampling` for the remedy.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from opentelemetry import baggage
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from typing_extensions import Unpack

from databuddy_otel import outlet
from databuddy_otel.otel_events import INHERITED, span_events
from databuddy_otel.thread_roles import sending

if TYPE_CHECKING:
    from databuddy_otel.client import Databuddy

__all__ = ["DatabuddyBaggageProcessor", "DatabuddySpanExporter"]

logger = logging.getLogger("databuddy")


class DatabuddySpanExporter(outlet.OutletExporter, SpanExporter):
    """Send the tagged events of exported spans to Databuddy; ``export()`` never raises.

    Build it from the client's connection settings (each falls back to its
    ``DATABUDDY_*`` environment variable, so ``DatabuddySpanExporter()`` works
    when they are set), or with ``client=`` to share a :class:`Databuddy`
    client's connection pool, counters and deduplication (the exporter holds a
    share of the client's transport, so the client and the tracer provider may
    shut down in either order). Batching is the span processor's job
    (``OTEL_BSP_*``); each ``export()`` sends its events in request-sized
    chunks, retried within one ``retry_deadline``.
    """

    def __init__(
        self,
        *,
        client: Databuddy | None = None,
        include_trace_ids: bool = True,
        **options: Unpack[outlet.ConnectionOptions],
    ) -> None:
        self._outlet = outlet.build(client, options, "DatabuddySpanExporter")
        self._trace_ids = include_trace_ids
        self._shut_down = False

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Send the tagged events of ``spans``; never raises.

        ``SUCCESS`` when every event was accepted (or there was none), ``FAILURE``
        when some were not (they are counted in :meth:`stats` and reported to
        ``on_undelivered``) or the exporter is shut down.
        """
        if self._shut_down:
            return SpanExportResult.FAILURE
        try:
            with sending():
                return self._export(spans)
        except Exception:
            logger.exception("Exporting Databuddy events from %d span(s) failed", len(spans))
            return SpanExportResult.FAILURE

    def _export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        events = []
        for span in spans:
            if span.events:
                events.extend(span_events(span, trace_ids=self._trace_ids))
        if not events or self._outlet.disabled:
            return SpanExportResult.SUCCESS
        prepared = self._outlet.prepare(events)
        if prepared and not self._outlet.send(prepared):
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS


class DatabuddyBaggageProcessor(SpanProcessor):
    """Copy Databuddy ids from the baggage onto each span as it starts.

    Exported spans carry no baggage, so this is how the exporter's baggage
    fallback works: the entries ``databuddy.anonymous_id``,
    ``databuddy.session_id``, ``databuddy.namespace`` and ``databuddy.source``
    become span attributes of the same names, unless the span was started with
    its own. Add it to the tracer provider next to the exporter's processor::

        provider.add_span_processor(DatabuddyBaggageProcessor())
    """

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Copy the Databuddy baggage entries the span lacks onto it as attributes."""
        try:
            entries = baggage.get_all(parent_context)
            if not entries:
                return
            own = span.attributes or {}
            for key in INHERITED:
                value = entries.get(key)
                if isinstance(value, str) and value and key not in own:
                    span.set_attribute(key, value)
        except Exception:
            logger.exception("Copying Databuddy baggage onto a span failed")

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Nothing is buffered here: ``True`` at once."""
        # Nothing is buffered here. Said explicitly: in older opentelemetry-sdk releases
        # (1.41) the base class answers None, and the provider then skips the processors
        # registered after this one.
        return True

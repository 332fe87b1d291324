"""``DatabuddySpanExporter``: tagged span events in, Databuddy events out.

Mark a span event as analytics with ``databuddy.track=True``; every other
attribute becomes a property (see :mod:`databuddy_otel._doors.otel_events` for the
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
from typing import TYPE_CHECKING, Any

from opentelemetry import baggage
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from typing_extensions import Unpack

from databuddy_otel._doors import outlet
from databuddy_otel._doors.otel_events import INHERITED, span_events
from databuddy_otel._runtime import config

if TYPE_CHECKING:
    from databuddy_otel.client import Databuddy

__all__ = ["DatabuddyBaggageProcessor", "DatabuddySpanExporter"]

logger: logging.Logger = logging.getLogger("databuddy")


class DatabuddySpanExporter(outlet.OutletExporter, SpanExporter):
    """Send the tagged events of exported spans to Databuddy; ``export()`` never raises.

    ``DatabuddySpanExporter(client)`` hands the events to a :class:`Databuddy`
    client through its port (:meth:`Databuddy.ingest`): they get the client's
    middleware, global properties, bound ids, deduplication and counters, and
    its queue delivers them (and its spool keeps them), so ``export()`` never
    waits on the network. Without a client, it takes the client's connection
    settings (each falls back to its ``DATABUDDY_*`` environment variable, so
    ``DatabuddySpanExporter()`` works when they are set) and each ``export()``
    sends its events itself, within ``min(timeout, retry_deadline)`` seconds.
    Batching is the span processor's job (``OTEL_BSP_*``).
    """

    _kind = "span"

    def __init__(
        self,
        client: Databuddy | None = None,
        *,
        include_trace_ids: bool = True,
        **options: Unpack[config.ConnectionOptions],
    ) -> None:
        super().__init__(client, include_trace_ids=include_trace_ids, **options)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Hand on the tagged events of ``spans``; never raises.

        ``SUCCESS`` when every event was taken (or there was none), ``FAILURE``
        when some were not (they are counted in :meth:`stats` and reported to
        ``on_undelivered``) or the exporter is shut down.
        """
        return SpanExportResult.SUCCESS if self._export(spans) else SpanExportResult.FAILURE

    def _events(self, batch: Sequence[ReadableSpan]) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        for span in batch:
            if span.events:
                events.extend(span_events(span, trace_ids=self._trace_ids))
        return events


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

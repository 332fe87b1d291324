"""Quick start: send events to a local Databuddy ingest server and see what it stored.

Run it with ``python examples/quickstart.py``; no account or network is needed.
Against the real service, drop the DevServer and pass your own ``client_id`` or
``api_key`` (or set ``DATABUDDY_CLIENT_ID`` / ``DATABUDDY_API_KEY``).

The client comes first; then one event through each front door: a ``logging``
handler, a structlog processor (when structlog is installed) and an
OpenTelemetry span event.
"""

from __future__ import annotations

import json
import logging

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from databuddy_logging import DatabuddyHandler
from databuddy_otel import Databuddy, DatabuddySpanExporter, new_anonymous_id, new_session_id
from databuddy_otel.devserver import DevServer


def main() -> None:
    with DevServer() as server:
        print(f"Local ingest server at {server.url}")
        client = Databuddy(client_id="quickstart-site", api_url=server.url)

        # One event, queued and sent in the background.
        anonymous_id, session_id = new_anonymous_id(), new_session_id()
        response = client.track(
            {
                "name": "user_signup",
                "anonymousId": anonymous_id,
                "sessionId": session_id,
                "properties": {"plan": "pro", "source": "api"},
            }
        )
        print(f"track() -> success={response.success} event_id={response.event_id}")

        # Keyword form; these join the same batch.
        for endpoint in ("/api/users", "/api/orders"):
            client.track(name="api_call", properties={"endpoint": endpoint, "method": "GET"})

        # batch() sends up to 100 events at once, in one request.
        result = client.batch(
            [
                {"type": "custom", "name": "job_completed", "properties": {"emails_sent": 1250}},
                {"type": "custom", "name": "webhook_received", "properties": {"source": "github"}},
            ]
        )
        print(f"batch() -> success={result.success} processed={result.processed}")

        # flush() sends whatever is queued now (do this before a serverless handler returns).
        flushed = client.flush(timeout=5)
        print(f"flush() -> success={flushed.success} processed={flushed.processed}")

        expected = 5 + send_through_front_doors(client, server.url)
        client.shutdown()

        events = server.events()
        print(f"\nThe server stored {len(events)} events:")
        for event in events:
            print(json.dumps({k: event[k] for k in ("name", "properties", "anonymousId")}))
        assert len(events) == expected, "every event should have arrived"


def send_through_front_doors(client: Databuddy, server_url: str) -> int:
    """One event each through logging, structlog and OpenTelemetry; returns how many."""
    # logging: tag a record with db_props and it becomes an event.
    log = logging.getLogger("quickstart")
    log.setLevel(logging.INFO)
    log.addHandler(DatabuddyHandler(client=client))
    log.info("invoice_paid", extra={"db_props": {"amount": 42}})
    sent = 1

    # structlog (optional extra): the processor passes the event dict on.
    try:
        import structlog

        from databuddy_logging.structlog import DatabuddyProcessor
    except ImportError:
        print("structlog is not installed: skipping its event")
        print("  (pip install '.[structlog]' in the checkout adds it)")
    else:
        slog = structlog.wrap_logger(
            structlog.ReturnLogger(), processors=[DatabuddyProcessor(client, strip=True)]
        )
        slog.info("report_exported", db_props={"format": "csv"})
        sent += 1

    # OpenTelemetry: span events tagged databuddy.track=True become events.
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(DatabuddySpanExporter(client=client)))
    with provider.get_tracer("quickstart").start_as_current_span("checkout") as span:
        span.add_event("checkout_completed", {"databuddy.track": True, "items": 3})
    provider.shutdown()
    sent += 1

    client.flush(timeout=5)
    print(f"front doors -> {sent} events (logging, structlog, OpenTelemetry)")
    return sent


if __name__ == "__main__":
    main()

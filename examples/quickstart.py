"""Quick start: send events to a local Databuddy ingest server and see what it stored.

Run it with ``python examples/quickstart.py``; no account or network is needed.
Against the real service, drop the DevServer and pass your own ``client_id`` or
``api_key`` (or set ``DATABUDDY_CLIENT_ID`` / ``DATABUDDY_API_KEY``).
"""

from __future__ import annotations

import json

from databuddy_otel import Databuddy, new_anonymous_id, new_session_id
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
        client.shutdown()

        events = server.events()
        print(f"\nThe server stored {len(events)} events:")
        for event in events:
            print(json.dumps({k: event[k] for k in ("name", "properties", "anonymousId")}))
        assert len(events) == 5, "every event should have arrived"


if __name__ == "__main__":
    main()

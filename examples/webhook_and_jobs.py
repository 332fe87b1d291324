"""Webhooks and background jobs: the server-side events a browser never sees.

Run it with ``python examples/webhook_and_jobs.py``. It starts the local ingest
server, handles a few webhook deliveries (one of them delivered twice, as
providers do when an answer is slow) and runs background jobs on a thread pool,
then prints what the server stored and the client's counters.

Patterns shown:

- A webhook's own delivery id as ``event_id``: a redelivered webhook is tracked
  once (deduplication by ``eventId``; ``stats().deduplicated`` counts the repeat).
- A background job that keeps the ids of the request that queued it: run it in
  a copy of the caller's ``contextvars`` context, where ``bind_ids`` put them.
- Job outcomes (``job_completed`` with its duration, ``job_failed`` with the error).
"""

from __future__ import annotations

import contextvars
import json
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from databuddy_otel import Databuddy, bind_ids, new_anonymous_id, new_session_id
from databuddy_otel.devserver import DevServer


def handle_stripe_webhook(client: Databuddy, payload: dict[str, Any]) -> int:
    """What your POST /webhooks/stripe view does after checking the signature."""
    amount = payload["data"]["object"]
    client.track(
        name="stripe_webhook_received",
        event_id=f"stripe:{payload['id']}",  # the same delivery twice -> one event
        properties={
            "event_type": payload["type"],
            "amount": amount["amount"],
            "currency": amount["currency"],
        },
    )
    return 200


def handle_github_webhook(client: Databuddy, event_type: str, payload: dict[str, Any]) -> int:
    client.track(
        name="webhook_received",
        properties={
            "source": "github",
            "event_type": event_type,
            "repository": payload["repository"]["name"],
        },
    )
    return 202


def email_digest(client: Databuddy, recipients: int) -> None:
    """A background job; it reports how it went."""
    started = time.perf_counter()
    try:
        if recipients < 0:
            raise ValueError("negative recipient count")
        time.sleep(0.01)  # the work
    except Exception as exc:
        client.track(name="job_failed", properties={"job_name": "email_digest", "error": str(exc)})
        return
    client.track(
        name="job_completed",
        properties={
            "job_name": "email_digest",
            "duration_ms": round((time.perf_counter() - started) * 1000, 1),
            "emails_sent": recipients,
            "status": "success",
        },
    )


def enqueue(pool: ThreadPoolExecutor, job: Any, *args: Any) -> Future[Any]:
    # Executors do not carry contextvars over to their threads; a copied context does,
    # so the job's events keep the ids bound where it was queued.
    return pool.submit(contextvars.copy_context().run, job, *args)


def main() -> None:
    with DevServer() as server:
        client = Databuddy(client_id="webhooks-example", api_url=server.url)

        stripe_event = {
            "id": "evt_1PX",
            "type": "payment_intent.succeeded",
            "data": {"object": {"amount": 2999, "currency": "usd"}},
        }
        for attempt in (1, 2):  # Stripe retries when it did not see our 200 in time
            print(f"stripe delivery {attempt} -> {handle_stripe_webhook(client, stripe_event)}")
        push = {"repository": {"name": "my-repo"}}
        print(f"github push -> {handle_github_webhook(client, 'push', push)}")

        user_ids = {"anonymous_id": new_anonymous_id(), "session_id": new_session_id()}
        with ThreadPoolExecutor(max_workers=2) as pool:
            with bind_ids(**user_ids):  # e.g. set by the web middleware for this request
                jobs = [enqueue(pool, email_digest, client, n) for n in (1250, 40, -1)]
            for job in jobs:
                job.result()

        client.flush(timeout=5)
        stats = client.stats()
        client.shutdown()
        events = server.events()
        print(f"\nThe server stored {len(events)} events:")
        for event in events:
            print(json.dumps({k: event[k] for k in ("name", "anonymousId", "properties")}))
        print(f"stats: delivered={stats.delivered} deduplicated={stats.deduplicated}")

        assert len(server.events("stripe_webhook_received")) == 1, "redelivery tracked once"
        assert stats.deduplicated == 1
        job_events = server.events("job_completed") + server.events("job_failed")
        assert len(job_events) == 3
        assert {e["anonymousId"] for e in job_events} == {user_ids["anonymous_id"]}
        print("The redelivered webhook counted once; every job kept its request's ids.")


if __name__ == "__main__":
    main()

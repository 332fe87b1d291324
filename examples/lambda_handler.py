"""AWS Lambda: deliver every event before the handler returns, with ``flush_after``.

Run it with ``python examples/lambda_handler.py``; it starts the local ingest server
and invokes the handlers a few times, as Lambda would, checking after each call
that the server already has its events.

Lambda may freeze the container as soon as the handler returns, so events still
in the queue would wait, maybe forever. ``@flush_after(client)`` flushes in a
``finally`` block (also when the handler raises), bounded by ``timeout`` seconds.
In a deployed function the module looks like this::

    client = Databuddy()            # once per container; DATABUDDY_CLIENT_ID from the environment

    @flush_after(client, timeout=2)
    def handler(event, context): ...
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any, Callable

from databuddy_otel import Databuddy
from databuddy_otel.devserver import DevServer
from databuddy_otel.lifecycle import flush_after

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


def make_handler(client: Databuddy) -> Handler:
    @flush_after(client, timeout=2)
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        function = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "local")
        client.track(
            name="lambda_invoked",
            properties={"function_name": function, "event_source": event.get("source")},
        )
        try:
            records = event["records"]
            result = [r.upper() for r in records]
        except Exception as exc:
            client.track(name="lambda_error", properties={"error": repr(exc)})
            raise
        client.track(name="lambda_success", properties={"result_count": len(result)})
        return {"statusCode": 200, "body": json.dumps(result)}

    return handler


def make_async_handler(client: Databuddy) -> Callable[..., Any]:
    # flush_after also wraps coroutines: the flush is awaited, the loop never blocks.
    @flush_after(client, timeout=2)
    async def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        client.track(name="lambda_invoked", properties={"event_source": event.get("source")})
        await asyncio.sleep(0)  # your awaitable work
        return {"statusCode": 204}

    return handler


def main() -> None:
    with DevServer() as server:
        # A long batch_timeout shows that flush_after, not the timer, delivers the events.
        client = Databuddy(client_id="lambda-example", api_url=server.url, batch_timeout=60_000)
        handler = make_handler(client)

        invocations: list[dict[str, Any]] = [
            {"source": "aws.s3", "records": ["a", "b"]},
            {"source": "aws.sqs", "records": ["c"]},
            {"source": "aws.events"},  # no records: the handler raises
        ]
        counts = []
        for number, event in enumerate(invocations, 1):
            try:
                answer = handler(event, None)
            except KeyError as exc:
                answer = {"raised": repr(exc)}
            counts.append(len(server.events()))  # no waiting: flush_after already delivered
            print(f"invocation {number}: {answer}; server has {counts[-1]} events")

        answer = asyncio.run(make_async_handler(client)({"source": "aws.apigateway"}, None))
        counts.append(len(server.events()))
        print(f"async invocation: {answer}; server has {counts[-1]} events")
        assert counts == [2, 4, 6, 7], counts

        events = server.events()
        print(f"\nThe server stored {len(events)} events:")
        for event in events:
            print(json.dumps({k: event[k] for k in ("name", "properties")}))
        names = [e["name"] for e in events]
        assert names.count("lambda_invoked") == 4 and names.count("lambda_success") == 2
        assert names.count("lambda_error") == 1, "the failed invocation's events arrived too"
        print("Every invocation's events arrived before its handler returned.")
        client.shutdown()


if __name__ == "__main__":
    main()

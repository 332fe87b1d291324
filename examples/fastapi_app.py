"""FastAPI: the browser's ids on every event, one event per request, no blocked event loop.

Run it with ``python examples/fastapi_app.py`` (needs ``pip install fastapi httpx2``;
``httpx`` on Python < 3.11). It starts the local ingest server, drives requests
through Starlette's test client with the headers the front end would send, and
prints what the server stored.

``track()`` only queues the event, so it is safe to call from ``async def``
endpoints; ``await client.aflush()`` waits for delivery without blocking the loop.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import BackgroundTasks, FastAPI, HTTPException
from fastapi.testclient import TestClient

from databuddy_otel import Databuddy, new_anonymous_id, new_session_id
from databuddy_otel.devserver import DevServer
from databuddy_otel.web import ANONYMOUS_ID_HEADER, SESSION_ID_HEADER, DatabuddyASGIMiddleware

PRODUCTS = {1: "keyboard", 2: "monitor"}


def create_app(client: Databuddy) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await client.aflush(timeout=5)  # deliver what is queued before the server stops

    app = FastAPI(lifespan=lifespan)
    # The http_request events get the route template, e.g. "/products/{product_id}".
    app.add_middleware(DatabuddyASGIMiddleware, client=client, track_requests=True)

    def send_receipt(order_id: str) -> None:
        # Runs after the response, still inside the request: the ids are still bound.
        client.track(name="receipt_sent", properties={"order_id": order_id})

    @app.get("/products/{product_id}")
    async def product(product_id: int) -> dict[str, str]:
        if product_id not in PRODUCTS:
            raise HTTPException(status_code=404, detail="no such product")
        client.track(name="product_viewed", properties={"product_id": product_id})
        return {"name": PRODUCTS[product_id]}

    @app.post("/orders")
    async def order(background: BackgroundTasks) -> dict[str, str]:
        client.track(name="purchase_completed", properties={"order_id": "ORD-1", "total": 99.99})
        background.add_task(send_receipt, "ORD-1")
        return {"order_id": "ORD-1"}

    return app


def main() -> None:
    with DevServer() as server:
        client = Databuddy(client_id="fastapi-example", api_url=server.url)
        browser = {ANONYMOUS_ID_HEADER: new_anonymous_id(), SESSION_ID_HEADER: new_session_id()}

        with TestClient(create_app(client)) as http:  # runs the lifespan too
            for method, path in (
                ("GET", "/products/1"),
                ("GET", "/products/9"),
                ("POST", "/orders"),
            ):
                response = http.request(method, path, headers=browser)
                print(f"{method} {path} -> {response.status_code} {response.json()}")

        client.shutdown()
        events = server.events()
        print(f"\nThe server stored {len(events)} events:")
        for event in events:
            print(json.dumps({k: event[k] for k in ("name", "anonymousId", "properties")}))
        names = sorted(e["name"] for e in events)
        assert names == ["http_request"] * 3 + [
            "product_viewed",
            "purchase_completed",
            "receipt_sent",
        ]
        assert {e["anonymousId"] for e in events} == {browser[ANONYMOUS_ID_HEADER]}
        assert {e["sessionId"] for e in events} == {browser[SESSION_ID_HEADER]}
        print("Every event carries the browser's anonymous and session ids.")


if __name__ == "__main__":
    main()

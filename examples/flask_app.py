"""Flask: the browser's ids on every server-side event, plus one event per request.

Run it with ``python examples/flask_app.py`` (needs ``pip install flask``). It starts
the local ingest server, drives a few requests through Flask's test client with the
headers the front end would send, and prints what the server stored.

In your app, the front end copies the web SDK's ids into two request headers::

    fetch("/api/cart/42", {method: "POST", headers: {
      "X-Databuddy-Anonymous-Id": window.databuddy.anonymousId,
      "X-Databuddy-Session-Id": window.databuddy.sessionId}})
"""

from __future__ import annotations

import json

from flask import Flask, jsonify
from flask.typing import ResponseReturnValue

from databuddy_otel import Databuddy, new_anonymous_id, new_session_id
from databuddy_otel.devserver import DevServer
from databuddy_otel.web import ANONYMOUS_ID_HEADER, SESSION_ID_HEADER, DatabuddyWSGIMiddleware


def create_app(client: Databuddy) -> Flask:
    app = Flask(__name__)

    @app.post("/api/cart/<int:product_id>")
    def add_to_cart(product_id: int) -> ResponseReturnValue:
        # No ids passed here: the middleware bound the request's ids.
        client.track(name="added_to_cart", properties={"product_id": product_id})
        return jsonify(added=product_id)

    @app.post("/api/checkout")
    def checkout() -> ResponseReturnValue:
        client.track(
            name="purchase_completed",
            properties={"order_id": "ORD-789", "revenue": 299.99, "currency": "USD"},
        )
        return jsonify(order_id="ORD-789")

    # Wrap app.wsgi_app (not app) so Flask's own features keep working; the
    # http_request events get Flask's rule ("/api/cart/<int:product_id>").
    app.wsgi_app = DatabuddyWSGIMiddleware(  # type: ignore[method-assign]
        app.wsgi_app, client, track_requests=True
    )
    return app


def main() -> None:
    with DevServer() as server:
        client = Databuddy(client_id="flask-example", api_url=server.url)
        app = create_app(client)
        browser = {ANONYMOUS_ID_HEADER: new_anonymous_id(), SESSION_ID_HEADER: new_session_id()}

        with app.test_client() as http:
            for path in ("/api/cart/42", "/api/cart/7", "/api/checkout"):
                # `with` closes the response, as a WSGI server does: that is when
                # the request's event (with its full duration) is tracked.
                with http.post(path, headers=browser) as response:
                    print(f"POST {path} -> {response.status_code} {response.get_json()}")

        client.shutdown()  # flushes the queue; at exit this also happens by itself
        events = server.events()
        print(f"\nThe server stored {len(events)} events:")
        for event in events:
            print(json.dumps({k: event[k] for k in ("name", "anonymousId", "properties")}))
        assert len(events) == 6, "3 tracked by the views + 3 http_request"
        assert {e["anonymousId"] for e in events} == {browser[ANONYMOUS_ID_HEADER]}
        assert {e["sessionId"] for e in events} == {browser[SESSION_ID_HEADER]}
        print("Every event carries the browser's anonymous and session ids.")


if __name__ == "__main__":
    main()

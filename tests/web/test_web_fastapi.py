"""FastAPI / Starlette: the ASGI middleware sees the matched route's path template."""

from __future__ import annotations

import warnings

import pytest

fastapi = pytest.importorskip("fastapi", reason="FastAPI is not installed (pip install fastapi)")
with warnings.catch_warnings():
    # Starlette >= 1.10 prefers httpx2 and warns when it falls back to httpx; either works here.
    warnings.filterwarnings("ignore", message=".*httpx.*starlette.testclient")
    testclient = pytest.importorskip(
        "fastapi.testclient", reason="Starlette's TestClient needs httpx2 (or httpx)"
    )
TestClient = testclient.TestClient

from databuddy_otel.devserver import DevServer  # noqa: E402
from databuddy_otel.web import DatabuddyASGIMiddleware  # noqa: E402
from tests.conftest import MakeClient  # noqa: E402
from tests.web.conftest import IDS  # noqa: E402


def test_fastapi_routes_ids_and_errors(server: DevServer, make_client: MakeClient) -> None:
    """Events from an async endpoint carry the ids; http_request has the template and status."""
    client = make_client()
    app = fastapi.FastAPI()
    app.add_middleware(DatabuddyASGIMiddleware, client=client, track_requests=True)

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        if item_id == 0:
            raise fastapi.HTTPException(status_code=404)
        client.track(name="item_viewed", properties={"item_id": item_id})
        flushed = await client.aflush(timeout=5)
        return {"id": item_id, "flushed": flushed.processed}

    with TestClient(app) as test_client:
        assert test_client.get("/items/3", headers=IDS).json() == {"id": 3, "flushed": 1}
        assert test_client.get("/items/0", headers=IDS).status_code == 404
    client.flush(timeout=5)
    events = server.events()
    assert [e["name"] for e in events] == ["item_viewed", "http_request", "http_request"]
    assert all(e["sessionId"] == "sess_web-1" for e in events)
    found, missing = (e["properties"] for e in events[1:])
    assert (found["route"], found["status_code"], found["method"]) == (
        "/items/{item_id}",
        200,
        "GET",
    )
    assert (missing["route"], missing["status_code"]) == ("/items/{item_id}", 404)


def test_unhandled_exception_is_tracked_as_500(server: DevServer, make_client: MakeClient) -> None:
    """A view that raises: Starlette answers 500 and the request event says 500."""
    client = make_client()
    app = fastapi.FastAPI()
    app.add_middleware(DatabuddyASGIMiddleware, client=client, track_requests=True)

    @app.get("/fail")
    async def fail() -> None:
        raise RuntimeError("view bug")

    with TestClient(app, raise_server_exceptions=False) as test_client:
        assert test_client.get("/fail").status_code == 500
    client.flush(timeout=5)
    (event,) = server.events()
    assert event["properties"]["status_code"] == 500
    assert event["properties"]["route"] == "/fail"

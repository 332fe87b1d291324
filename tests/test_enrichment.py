"""Global properties, middleware and bound ids."""

from __future__ import annotations

from typing import Any

from databuddy_otel import Undelivered, bind_ids
from databuddy_otel.devserver import DevServer
from tests.conftest import MakeClient


def test_global_properties_merge_and_event_keys_win(
    server: DevServer, make_client: MakeClient
) -> None:
    """Global properties join every event; the event's own keys win."""
    client = make_client()
    client.set_global_properties({"env": "prod", "plan": "free"})
    client.set_global_properties({"region": "eu"})
    assert client.get_global_properties() == {"env": "prod", "plan": "free", "region": "eu"}
    client.track(name="e", properties={"plan": "pro"})
    client.clear_global_properties()
    client.track(name="f")
    client.flush()
    by_name = {e["name"]: e["properties"] for e in server.events()}
    assert by_name["e"] == {"env": "prod", "plan": "pro", "region": "eu"}
    assert by_name["f"] == {}


def test_middleware_changes_drops_and_runs_once(server: DevServer, make_client: MakeClient) -> None:
    """Middleware may change or drop an event; it runs exactly once per event."""
    calls: list[str] = []

    def tag(event: dict[str, Any]) -> dict[str, Any] | None:
        calls.append(event["name"])
        if event["name"] == "drop_me":
            return None
        return {**event, "properties": {**event["properties"], "tagged": True}}

    client = make_client(middleware=[tag])
    assert client.track(name="keep", properties={}).success
    assert client.track(name="drop_me").success
    client.flush()
    assert calls == ["keep", "drop_me"]
    assert [(e["name"], e["properties"]) for e in server.events()] == [("keep", {"tagged": True})]
    assert client.stats().filtered == 1


def test_raising_middleware_drops_the_event(server: DevServer, make_client: MakeClient) -> None:
    """A middleware that raises never lets its event out: counted and reported instead."""
    lost: list[Undelivered] = []

    def broken(event: dict[str, Any]) -> dict[str, Any]:
        raise RuntimeError("boom")

    client = make_client(on_undelivered=lost.extend)
    client.add_middleware(broken)
    response = client.track(name="secret", properties={"email": "a@b.c"})
    assert not response.success and "boom" in (response.error or "")
    client.clear_middleware()
    client.track(name="after")
    client.flush()
    assert [e["name"] for e in server.events()] == ["after"]
    assert client.stats().undelivered == {"middleware_error": 1}
    assert [(u.event_id, u.reason) for u in lost] == [(response.event_id, "middleware_error")]


def test_bound_ids_apply_inside_the_block(server: DevServer, make_client: MakeClient) -> None:
    """Ids bound with bind_ids fill events tracked inside the block; explicit ids win."""
    client = make_client()
    with bind_ids(anonymous_id="anon_ctx", session_id="sess_ctx"):
        client.track(name="inside")
        client.track(name="explicit", anonymous_id="anon_own")
    client.track(name="outside")
    client.flush()
    ids = {e["name"]: (e["anonymousId"], e["sessionId"]) for e in server.events()}
    assert ids == {
        "inside": ("anon_ctx", "sess_ctx"),
        "explicit": ("anon_own", "sess_ctx"),
        "outside": (None, None),
    }

"""track(): what arrives at the server, for both wire generations."""

from __future__ import annotations

import re

import pytest

from databuddy_otel import EventResponse, new_anonymous_id, new_session_id
from databuddy_otel.devserver import DevServer
from tests.conftest import MakeClient

UUID4 = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"


@pytest.mark.parametrize("protocol", ["track", "legacy"])
def test_mapping_event_arrives_with_every_field(
    server: DevServer, make_client: MakeClient, protocol: str
) -> None:
    """A documented mapping event is stored with its name, properties and ids."""
    client = make_client(protocol=protocol)
    resp = client.track(
        {
            "name": "user_signup",
            "properties": {"plan": "pro", "seats": 3},
            "anonymousId": "anon_1",
            "sessionId": "sess_1",
        }
    )
    assert resp.success and resp.error is None
    assert client.flush().success
    [event] = server.events()
    assert event["name"] == "user_signup"
    assert event["properties"] == {"plan": "pro", "seats": 3}
    assert event["anonymousId"] == "anon_1"
    assert event["sessionId"] == "sess_1"
    assert event["eventId"] == resp.event_id
    assert event["protocol"] == protocol


def test_keyword_event_arrives_with_track_only_fields(
    server: DevServer, make_client: MakeClient
) -> None:
    """Keyword arguments map to the camelCase wire fields, including track-only ones."""
    client = make_client(website_id="site-9")
    client.track(
        name="api_call",
        properties={"endpoint": "/api/users"},
        anonymous_id="anon_2",
        session_id="sess_2",
        namespace="billing",
        source="worker",
    )
    client.flush()
    [event] = server.events()
    assert (event["namespace"], event["source"], event["websiteId"]) == (
        "billing",
        "worker",
        "site-9",
    )
    assert (event["anonymousId"], event["sessionId"]) == ("anon_2", "sess_2")


def test_client_wide_namespace_and_source_apply(server: DevServer, make_client: MakeClient) -> None:
    """namespace/source given to the constructor fill events that lack them."""
    client = make_client(namespace="ns", source="svc")
    client.track(name="a")
    client.track(name="b", namespace="own")
    client.flush()
    by_name = {e["name"]: e for e in server.events()}
    assert by_name["a"]["namespace"] == "ns" and by_name["a"]["source"] == "svc"
    assert by_name["b"]["namespace"] == "own"


def test_event_id_is_uuid4_and_timestamp_integer_ms(
    server: DevServer, make_client: MakeClient
) -> None:
    """Each event gets a uuid4 eventId and an integer millisecond timestamp at track time."""
    client = make_client()
    resp = client.track(name="e")
    client.flush()
    [event] = server.events()
    assert re.fullmatch(UUID4, resp.event_id or "")
    assert isinstance(event["timestamp"], int)
    assert abs(event["timestamp"] - event["receivedAt"]) < 60_000


def test_explicit_id_and_timestamp_are_kept(server: DevServer, make_client: MakeClient) -> None:
    """A caller's eventId and timestamp are sent unchanged."""
    client = make_client()
    resp = client.track(name="e", event_id="order-1", timestamp=1_700_000_000_000)
    client.flush()
    [event] = server.events()
    assert resp.event_id == "order-1"
    assert (event["eventId"], event["timestamp"]) == ("order-1", 1_700_000_000_000)


def test_api_key_is_sent_as_bearer() -> None:
    """With api_key the track protocol authenticates with a Bearer token the server checks."""
    with DevServer(api_keys=["dbdy_secret"]) as server:
        from databuddy_otel import Databuddy

        good = Databuddy(api_key="dbdy_secret", api_url=server.url, batch_timeout=50)
        bad = Databuddy(api_key="dbdy_wrong", api_url=server.url, enable_batching=False)
        assert good.track(name="ok").success
        good.shutdown()
        refused = bad.track(name="refused")
        bad.shutdown()
        assert [e["name"] for e in server.events()] == ["ok"]
        assert not refused.success
        assert refused.error == (
            "HTTP 403: API key missing track:events scope "
            "(check api_key: it must exist and carry the track:events scope)"
        )


def test_client_id_alone_is_sent_as_website_id(server: DevServer, make_client: MakeClient) -> None:
    """Without an API key the client id travels as website_id."""
    client = make_client(client_id="site-42")
    client.track(name="e")
    client.flush()
    assert server.events()[0]["websiteId"] == "site-42"


def test_unbatched_track_returns_the_server_answer(
    server: DevServer, make_client: MakeClient
) -> None:
    """With batching off, track() sends at once and reports the outcome."""
    client = make_client(enable_batching=False)
    assert client.track(name="now").success
    assert [e["name"] for e in server.events()] == ["now"]
    server.fail_next(1, status=400)
    resp = client.track(name="refused")
    assert not resp.success and resp.error and resp.error.startswith("HTTP 400")


@pytest.mark.parametrize("protocol", ["track", "legacy"])
def test_unbatched_track_works_on_both_protocols(
    server: DevServer, make_client: MakeClient, protocol: str
) -> None:
    """An un-batched event reaches the single-event endpoint of each generation."""
    client = make_client(enable_batching=False, protocol=protocol)
    resp = client.track(name="single", properties={"k": "v"})
    assert resp == EventResponse(True, resp.event_id, None)
    [event] = server.events()
    assert event["eventId"] == resp.event_id and event["protocol"] == protocol


def test_legacy_refusal_inside_http_200_is_a_failure() -> None:
    """A legacy 200 with status error (unknown client id) is reported, not success."""
    from databuddy_otel import Databuddy

    with DevServer(client_ids=["known"]) as server:
        client = Databuddy(
            client_id="unknown", api_url=server.url, protocol="legacy", enable_batching=False
        )
        resp = client.track(name="e")
        client.shutdown()
        assert not resp.success
        assert resp.error == "Invalid or inactive client ID"
        assert client.stats().undelivered == {"rejected": 1}


def test_id_helpers_follow_the_web_sdk_format() -> None:
    """new_anonymous_id/new_session_id give anon_/sess_ + uuid4."""
    assert re.fullmatch("anon_" + UUID4, new_anonymous_id())
    assert re.fullmatch("sess_" + UUID4, new_session_id())
    assert new_anonymous_id() != new_anonymous_id()


def test_name_and_properties_by_position(server: DevServer, make_client: MakeClient) -> None:
    """track("signup", {"plan": "pro"}), the habit of other SDKs, delivers; keywords add fields."""
    client = make_client()
    assert client.track("signup", {"plan": "pro"}).success
    assert client.track("login", anonymous_id="anon_7").success
    assert client.track("bare").success
    assert client.flush().success
    events = {e["name"]: e for e in server.events()}
    assert events["signup"]["properties"] == {"plan": "pro"}
    assert events["login"]["anonymousId"] == "anon_7"
    assert set(events) == {"signup", "login", "bare"}

"""``POST /track`` on the dev server: bodies as SDK 2.6.x sends them, credentials, errors."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests

from databuddy_otel.devserver import DevServer


def now_ms() -> int:
    return int(time.time() * 1000)


def sdk_26_event(name: str = "signup", **fields: Any) -> dict[str, Any]:
    """An event the way @databuddy/sdk 2.6.x builds it for /track."""
    event = {
        "name": name,
        "namespace": "billing",
        "timestamp": now_ms(),
        "properties": {"plan": "pro", "seats": 3, "trial": False, "tags": ["a", "ü"]},
        "anonymousId": "anon_3f1c2d9e-8b7a-4c6d-9e0f-1a2b3c4d5e6f",
        "sessionId": "sess_0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
        "websiteId": "site-1",
        "source": "node",
        "profileId": "user_42",
    }
    event.update(fields)
    return event


def post(server: DevServer, body: Any, **kwargs: Any) -> requests.Response:
    return requests.post(f"{server.url}/track", json=body, timeout=10, **kwargs)


def error_body(status_code: str, message: str, **extra: Any) -> dict[str, Any]:
    body = {"success": False, "status": "error", "error": message, "message": message}
    return {**body, "code": status_code, **extra}


BEARER = {"Authorization": "Bearer dbdy_key_1"}


def test_sdk_26_single_event_is_stored_with_every_field(databuddy_server):
    """A 2.6.x object with a Bearer key is answered custom_event and stored field by field."""
    event = sdk_26_event(anonymizeVisitorIds=False)
    response = post(databuddy_server, event, headers=BEARER)
    assert response.status_code == 200
    assert response.json() == {"status": "success", "type": "custom_event", "count": 1}
    (stored,) = databuddy_server.events()
    assert stored == {
        "name": "signup",
        "eventId": None,
        "anonymousId": event["anonymousId"],
        "sessionId": event["sessionId"],
        "timestamp": event["timestamp"],
        "properties": event["properties"],
        "websiteId": "site-1",
        "namespace": "billing",
        "source": "node",
        "protocol": "track",
        "receivedAt": stored["receivedAt"],
        "requestId": 1,
        "profileId": "user_42",
        "anonymizeVisitorIds": False,
    }
    assert abs(stored["receivedAt"] - now_ms()) < 60_000


def test_sdk_26_batch_of_100_is_stored_in_order(databuddy_server):
    """An array of 100 events is one request, counted and stored oldest first."""
    batch = [sdk_26_event(f"e{i}", eventId=f"id-{i}") for i in range(100)]
    response = post(databuddy_server, batch, headers=BEARER)
    assert response.json() == {"status": "success", "type": "custom_event", "count": 100}
    stored = databuddy_server.events()
    assert [e["eventId"] for e in stored] == [f"id-{i}" for i in range(100)]
    assert {e["requestId"] for e in stored} == {1}


def test_minimal_event_gets_defaults(databuddy_server):
    """Missing timestamp, properties and optional ids are stored as now, {} and null."""
    before = now_ms()
    post(databuddy_server, {"name": "bare"}, params={"website_id": "w"})
    (stored,) = databuddy_server.events()
    assert before <= stored["timestamp"] <= now_ms()
    assert stored["properties"] == {}
    assert stored["anonymousId"] is stored["sessionId"] is stored["namespace"] is None


@pytest.mark.parametrize(
    ("kwargs", "body"),
    [
        ({"headers": {"Authorization": "Bearer anything"}}, {"name": "a"}),
        ({"headers": {"authorization": "bearer lowercase"}}, {"name": "a"}),
        ({"headers": {"x-api-key": "anything"}}, {"name": "a"}),
        ({"params": {"website_id": "any-site"}}, {"name": "a"}),
        ({}, {"name": "a", "websiteId": "any-site"}),
        ({}, [{"name": "a", "websiteId": "s1"}, {"name": "b", "websiteId": "s2"}]),
    ],
)
def test_any_credential_is_accepted_without_lists(databuddy_server, kwargs, body):
    """Without --api-key/--client-id lists every way of passing a credential works."""
    response = post(databuddy_server, body, **kwargs)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("kwargs", "body"),
    [
        ({}, {"name": "a"}),
        ({"headers": {"Authorization": "Bearer "}}, {"name": "a"}),
        ({"headers": {"Authorization": "Basic dXNlcjpwYXNz"}}, {"name": "a"}),
        ({"params": {"website_id": ""}}, {"name": "a"}),
        ({}, [{"name": "a", "websiteId": "s1"}, {"name": "b"}]),
        ({}, "not an event"),
    ],
)
def test_missing_credential_is_401(databuddy_server, kwargs, body):
    """No key and no website id (for some event) is 401 UNAUTHORIZED, nothing stored."""
    response = post(databuddy_server, body, **kwargs)
    assert response.status_code == 401
    assert response.json() == error_body("UNAUTHORIZED", "API key or website_id required")
    assert databuddy_server.events() == []


@pytest.fixture
def locked_server():
    with DevServer(client_ids=["site-ok"], api_keys=["key-ok", "key-2"]) as server:
        yield server


@pytest.mark.parametrize("headers", [{"Authorization": "Bearer key-bad"}, {"x-api-key": "key-bad"}])
def test_unknown_api_key_is_403(locked_server, headers):
    """With an --api-key list, an unknown key (either header) is 403 FORBIDDEN."""
    response = post(locked_server, {"name": "a"}, headers=headers)
    assert response.status_code == 403
    assert response.json() == error_body("FORBIDDEN", "API key missing track:events scope")
    assert locked_server.events() == []


@pytest.mark.parametrize("headers", [{"Authorization": "Bearer key-2"}, {"x-api-key": "key-ok"}])
def test_known_api_key_is_accepted(locked_server, headers):
    """With an --api-key list, a listed key (either header) is accepted."""
    assert post(locked_server, {"name": "a"}, headers=headers).status_code == 200


@pytest.mark.parametrize(
    ("params", "body"),
    [
        ({"website_id": "site-bad"}, {"name": "a"}),
        ({}, {"name": "a", "websiteId": "site-bad"}),
        ({"website_id": "site-ok"}, [{"name": "a"}, {"name": "b", "websiteId": "site-bad"}]),
    ],
)
def test_unknown_website_is_404(locked_server, params, body):
    """With a --client-id list, an unknown website id (query or event) is 404 NOT_FOUND."""
    response = post(locked_server, body, params=params)
    assert response.status_code == 404
    assert response.json() == error_body("NOT_FOUND", "Website not found")
    assert locked_server.events() == []


@pytest.mark.parametrize(
    ("params", "body"),
    [({"website_id": "site-ok"}, {"name": "a"}), ({}, {"name": "a", "websiteId": "site-ok"})],
)
def test_known_website_is_accepted(locked_server, params, body):
    """With a --client-id list, a listed website id (query or event) is accepted."""
    assert post(locked_server, body, params=params).status_code == 200


def test_website_id_resolution(databuddy_server):
    """Stored websiteId is the event's, else the query's, else null."""
    post(
        databuddy_server,
        [{"name": "own", "websiteId": "mine"}, {"name": "q"}],
        params={"website_id": "query"},
    )
    post(databuddy_server, {"name": "keyed"}, headers=BEARER)
    assert [(e["name"], e["websiteId"]) for e in databuddy_server.events()] == [
        ("own", "mine"),
        ("q", "query"),
        ("keyed", None),
    ]


def test_invalid_event_fails_the_whole_batch(databuddy_server):
    """One bad event makes the batch 400 INVALID_REQUEST with details; nothing is stored."""
    batch = [sdk_26_event("ok"), sdk_26_event("x" * 257), sdk_26_event("p", properties=[1])]
    response = post(databuddy_server, batch, headers=BEARER)
    assert response.status_code == 400
    assert response.json() == error_body(
        "INVALID_REQUEST",
        "Invalid request body",
        details=[
            "1.name: String must contain at most 256 character(s)",
            "2.properties: Expected object, received array",
        ],
    )
    assert databuddy_server.events() == []


@pytest.mark.parametrize(
    ("properties", "detail"),
    [
        ({f"k{i}": i for i in range(51)}, "properties: Too many properties (max 50)"),
        ({"k": "x" * 32_768}, "properties: Properties too large (max 32KB)"),
    ],
)
def test_properties_limits_over_http(databuddy_server, properties, detail):
    """The properties limits answer 400 with their documented details."""
    response = post(databuddy_server, {"name": "a", "properties": properties}, headers=BEARER)
    assert response.status_code == 400
    assert response.json()["details"] == [detail]


def test_batch_of_101_is_rejected(databuddy_server):
    """More than 100 events in one /track request is 400 and nothing is stored."""
    response = post(databuddy_server, [{"name": "a"}] * 101, headers=BEARER)
    assert response.status_code == 400
    assert response.json()["details"] == ["Array must contain at most 100 element(s)"]
    assert databuddy_server.events() == []


def test_unknown_keys_are_stripped_but_event_id_is_kept(databuddy_server):
    """Unknown keys are accepted and dropped; a client eventId is kept for counting."""
    body = {"name": "a", "eventId": "evt-9", "color": "red", "profileId": "p"}
    assert post(databuddy_server, body, headers=BEARER).status_code == 200
    (stored,) = databuddy_server.events()
    assert stored["eventId"] == "evt-9"
    assert "color" not in stored and stored["profileId"] == "p"


def test_anonymize_visitor_ids_must_be_a_boolean_or_auto(databuddy_server):
    """anonymizeVisitorIds takes true, false or "auto"; anything else is a 400."""
    for value in (True, False, "auto"):
        event = {"name": "a", "anonymizeVisitorIds": value}
        assert post(databuddy_server, event, headers=BEARER).status_code == 200
    refused = post(databuddy_server, {"name": "a", "anonymizeVisitorIds": "yes"}, headers=BEARER)
    assert refused.status_code == 400


@pytest.mark.parametrize(
    ("session_id", "stored"),
    [("sess_ok-1", "sess_ok-1"), ("has space", None), ("s" * 129, None)],
)
def test_untrusted_session_ids_are_stored_as_null(databuddy_server, session_id, stored):
    """Session ids outside the pattern or over 128 chars are accepted but stored as null."""
    assert post(databuddy_server, {"name": "a", "sessionId": session_id}, headers=BEARER).ok
    assert databuddy_server.events()[0]["sessionId"] == stored


def test_malformed_json_is_400(databuddy_server):
    """A body that is not JSON is 400 INVALID_REQUEST."""
    response = requests.post(
        f"{databuddy_server.url}/track", data=b'{"name": ', headers=BEARER, timeout=10
    )
    assert response.status_code == 400
    body = response.json()
    assert {k: body[k] for k in ("success", "status", "error", "message", "code")} == {
        "success": False,
        "status": "error",
        "error": "Invalid request body",
        "message": "Invalid request body",
        "code": "INVALID_REQUEST",
    }


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_wrong_content_type_is_tolerated(databuddy_server, content_type):
    """A JSON body is accepted whatever the Content-Type says."""
    headers = {**BEARER, "Content-Type": content_type} if content_type else BEARER
    response = requests.post(
        f"{databuddy_server.url}/track", data=b'{"name":"a"}', headers=headers, timeout=10
    )
    assert response.status_code == 200


def test_non_ascii_and_lone_surrogates_survive(databuddy_server):
    """Non-ASCII round-trips; a lone surrogate stays in properties, is U+FFFD in a name."""
    body = (
        b'[{"name":"caf\\u00e9 \\ud83d\\ude00"},{"name":"a\\ud800","properties":{"k":"\\ud800"}}]'
    )
    response = requests.post(f"{databuddy_server.url}/track", data=body, headers=BEARER, timeout=10)
    assert response.status_code == 200
    first, second = databuddy_server.events()
    assert first["name"] == "caf\u00e9 \U0001f600"
    assert (second["name"], second["properties"]) == ("a\ufffd", {"k": "\ud800"})

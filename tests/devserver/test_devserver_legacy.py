"""Legacy ``POST /`` and ``POST /batch`` on the dev server, as @databuddy/sdk 2.3.x uses them."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
import requests

from databuddy_otel.devserver import DevServer


def sdk_23_event(name: str = "x", **fields: Any) -> dict[str, Any]:
    """An event exactly as @databuddy/sdk 2.3.x serialises it."""
    event = {
        "type": "custom",
        "name": name,
        "eventId": str(uuid.uuid4()),
        "anonymousId": None,
        "sessionId": None,
        "timestamp": int(time.time() * 1000),
        "properties": {"plan": "pro", "n": 1.5, "nested": {"ok": True}},
    }
    event.update(fields)
    return event


def single(server: DevServer, body: Any, client_id: str | None = "site-1", **kwargs: Any):
    params = {"client_id": client_id} if client_id is not None else {}
    return requests.post(f"{server.url}/", json=body, params=params, timeout=10, **kwargs)


def batch(server: DevServer, body: Any, client_id: str | None = "site-1", **kwargs: Any):
    params = {"client_id": client_id} if client_id is not None else {}
    return requests.post(f"{server.url}/batch", json=body, params=params, timeout=10, **kwargs)


def ok(event_id: str) -> dict[str, Any]:
    return {"status": "success", "type": "custom", "eventId": event_id}


def test_sdk_23_single_event_is_stored_with_every_field(databuddy_server):
    """The 2.3.x body on /?client_id= is answered with its eventId and stored field by field."""
    event = sdk_23_event("signup", anonymousId="anon_1", sessionId="sess_1")
    response = single(databuddy_server, event)
    assert response.status_code == 200
    assert response.json() == ok(event["eventId"])
    (stored,) = databuddy_server.events()
    assert stored == {
        "name": "signup",
        "eventId": event["eventId"],
        "anonymousId": "anon_1",
        "sessionId": "sess_1",
        "timestamp": event["timestamp"],
        "properties": event["properties"],
        "websiteId": "site-1",
        "namespace": None,
        "source": None,
        "protocol": "legacy",
        "receivedAt": stored["receivedAt"],
        "requestId": 1,
        "profileId": None,
        "anonymizeVisitorIds": None,
    }


def test_sdk_23_batch_is_stored_with_per_event_results(databuddy_server):
    """An array on /batch?client_id= is answered batch:true with one result per event."""
    events = [sdk_23_event(f"e{i}") for i in range(100)]
    response = batch(databuddy_server, events)
    assert response.status_code == 200
    assert response.json() == {
        "status": "success",
        "batch": True,
        "processed": 100,
        "results": [ok(e["eventId"]) for e in events],
    }
    stored = databuddy_server.events()
    assert [e["eventId"] for e in stored] == [e["eventId"] for e in events]
    assert {e["websiteId"] for e in stored} == {"site-1"}


def test_server_makes_an_event_id_when_none_is_sent(databuddy_server):
    """Without eventId the answer carries a server-made UUID, which is what gets stored."""
    response = single(databuddy_server, {"type": "custom", "name": "x"})
    event_id = response.json()["eventId"]
    assert uuid.UUID(event_id)
    assert databuddy_server.events()[0]["eventId"] == event_id


def test_client_id_header_is_accepted(databuddy_server):
    """The databuddy-client-id header works like the client_id query parameter."""
    headers = {"databuddy-client-id": "from-header"}
    response = single(databuddy_server, sdk_23_event(), client_id=None, headers=headers)
    assert response.json()["status"] == "success"
    assert databuddy_server.events()[0]["websiteId"] == "from-header"


@pytest.mark.parametrize("endpoint", [single, batch])
def test_missing_client_id_is_a_200_error(databuddy_server, endpoint):
    """No client id on either legacy endpoint is HTTP 200 "Missing client ID"."""
    response = endpoint(databuddy_server, [sdk_23_event()], client_id=None)
    assert response.status_code == 200
    assert response.json() == {"status": "error", "message": "Missing client ID"}
    assert databuddy_server.events() == []


@pytest.mark.parametrize(
    ("client_id", "headers", "accepted"),
    [
        ("site-ok", {}, True),
        (None, {"databuddy-client-id": "site-ok"}, True),
        ("site-bad", {}, False),
        (None, {"databuddy-client-id": "site-bad"}, False),
    ],
)
def test_client_id_list_is_enforced(client_id, headers, accepted):
    """With a --client-id list, unknown ids (query or header) are "Invalid or inactive"."""
    with DevServer(client_ids=["site-ok"]) as server:
        for endpoint, body in ((single, sdk_23_event()), (batch, [sdk_23_event()])):
            response = endpoint(server, body, client_id=client_id, headers=headers)
            assert response.status_code == 200
            if accepted:
                assert response.json()["status"] == "success"
            else:
                expected = {"status": "error", "message": "Invalid or inactive client ID"}
                assert response.json() == expected
        assert len(server.events()) == (2 if accepted else 0)


def test_invalid_single_event_is_a_200_schema_error(databuddy_server):
    """An invalid event on / is HTTP 200 "Invalid event schema" with its errors."""
    response = single(databuddy_server, sdk_23_event("x" * 129, timestamp=1.5))
    assert response.status_code == 200
    assert response.json() == {
        "status": "error",
        "message": "Invalid event schema",
        "errors": [
            "name: String must contain at most 128 character(s)",
            "timestamp: Expected integer, received float",
        ],
    }
    assert databuddy_server.events() == []


def test_track_type_is_refused_on_legacy(databuddy_server):
    """Only type "custom" is accepted on the legacy path."""
    response = single(databuddy_server, sdk_23_event(type="track"))
    assert response.json()["errors"] == ['type: Invalid literal value, expected "custom"']


def test_invalid_event_in_a_batch_fails_only_its_slot(databuddy_server):
    """A bad event in a legacy batch errors in its slot; the others are stored."""
    good1, good2 = sdk_23_event("a"), sdk_23_event("b")
    response = batch(databuddy_server, [good1, {"type": "custom", "name": ""}, good2, "junk"])
    assert response.json() == {
        "status": "success",
        "batch": True,
        "processed": 4,
        "results": [
            ok(good1["eventId"]),
            {
                "status": "error",
                "message": "Invalid event schema",
                "errors": ["name: String must contain at least 1 character(s)"],
            },
            ok(good2["eventId"]),
            {
                "status": "error",
                "message": "Invalid event schema",
                "errors": ["Expected object, received string"],
            },
        ],
    }
    assert [e["name"] for e in databuddy_server.events()] == ["a", "b"]


@pytest.mark.parametrize("body", [b'{"type": "custom", "name": "x"}', b'"x"', b"null"])
def test_batch_wants_an_array(databuddy_server, body):
    """A non-array body on /batch is "Batch endpoint expects array of events"."""
    response = batch(databuddy_server, None, data=body)
    assert response.status_code == 200
    assert response.json() == {
        "status": "error",
        "message": "Batch endpoint expects array of events",
    }


def test_batch_of_101_is_too_large(databuddy_server):
    """More than 100 events on /batch is "Batch too large" and nothing is stored."""
    response = batch(databuddy_server, [sdk_23_event() for _ in range(101)])
    assert response.json() == {"status": "error", "message": "Batch too large"}
    assert databuddy_server.events() == []


def test_empty_batch_processes_nothing(databuddy_server):
    """An empty array on /batch succeeds with nothing processed."""
    response = batch(databuddy_server, [])
    assert response.json() == {"status": "success", "batch": True, "processed": 0, "results": []}


def test_repeated_event_id_is_stored_once(databuddy_server):
    """The legacy path deduplicates on eventId: a resend is success but not stored again."""
    event = sdk_23_event()
    assert single(databuddy_server, event).json() == ok(event["eventId"])
    assert single(databuddy_server, event).json() == ok(event["eventId"])
    response = batch(databuddy_server, [event, sdk_23_event(eventId="other"), event])
    assert [r["status"] for r in response.json()["results"]] == ["success"] * 3
    assert [e["eventId"] for e in databuddy_server.events()] == [event["eventId"], "other"]


def test_dedup_is_per_client_id(databuddy_server):
    """The same eventId from two client ids is two events."""
    event = sdk_23_event()
    single(databuddy_server, event, client_id="a")
    single(databuddy_server, event, client_id="b")
    assert [e["websiteId"] for e in databuddy_server.events()] == ["a", "b"]


def test_clear_forgets_seen_event_ids(databuddy_server):
    """After clear(), a previously seen eventId is stored again."""
    event = sdk_23_event()
    single(databuddy_server, event)
    databuddy_server.clear()
    single(databuddy_server, event)
    assert len(databuddy_server.events()) == 1


@pytest.mark.parametrize("path", ["/", "/batch"])
def test_malformed_json_is_400_invalid_json(databuddy_server, path):
    """A body that is not JSON is HTTP 400 {"status":"error","message":"Invalid JSON"}."""
    response = requests.post(
        f"{databuddy_server.url}{path}", params={"client_id": "c"}, data=b"[{", timeout=10
    )
    assert response.status_code == 400
    assert response.json() == {"status": "error", "message": "Invalid JSON"}


@pytest.mark.parametrize("path", ["/", "/batch"])
def test_oversized_body_is_a_200_payload_too_large(databuddy_server, path):
    """A body over 1 MiB on the legacy path is HTTP 200 "Payload too large"."""
    body = b"[" + b" " * (1024 * 1024) + b"]"
    response = requests.post(
        f"{databuddy_server.url}{path}", params={"client_id": "c"}, data=body, timeout=10
    )
    assert response.status_code == 200
    assert response.json() == {"status": "error", "message": "Payload too large"}


def test_track_only_fields_are_stripped_on_legacy(databuddy_server):
    """namespace/source/websiteId sent on the legacy path are not stored."""
    single(databuddy_server, sdk_23_event(namespace="n", source="s", websiteId="w"))
    (stored,) = databuddy_server.events()
    assert (stored["namespace"], stored["source"], stored["websiteId"]) == (None, None, "site-1")

"""Refused requests are kept in memory and shown at GET /rejections and server.rejections()."""

from __future__ import annotations

import json

import pytest
import requests

from databuddy_otel.devserver import DevServer
from databuddy_otel.devserver._refusals import MAX_BODY_CHARS, MAX_KEPT

KEY = {"x-api-key": "k"}


def track(server: DevServer, body: object, **kwargs: object) -> requests.Response:
    kwargs.setdefault("headers", KEY)
    return requests.post(f"{server.url}/track", json=body, timeout=10, **kwargs)


def legacy(server: DevServer, path: str, body: object) -> requests.Response:
    return requests.post(f"{server.url}{path}?client_id=c", json=body, timeout=10)


def test_a_track_400_is_kept_with_its_reason_and_body(databuddy_server):
    """A /track 400 is kept with status, message, details and the body as sent."""
    long_name = "n" * 257
    response = track(databuddy_server, {"name": long_name, "anonymousId": "anon_1"})
    assert response.status_code == 400
    (refusal,) = databuddy_server.rejections()
    assert refusal["status"] == 400
    assert refusal["message"] == "Invalid request body"
    assert refusal["errors"] == ["name: String must contain at most 256 character(s)"]
    assert json.loads(refusal["body"]) == {"name": long_name, "anonymousId": "anon_1"}
    assert refusal["protocol"] == "track"
    assert refusal["path"] == "/track"
    assert refusal["injected"] is None
    assert refusal["index"] is None
    assert (refusal["name"], refusal["anonymousId"]) == (long_name, "anon_1")
    assert databuddy_server.events() == []


def test_get_rejections_returns_the_same_newest_first(databuddy_server):
    """GET /rejections answers JSON, newest first, equal to server.rejections()."""
    track(databuddy_server, {"name": ""})
    track(databuddy_server, {"name": "ok"}, headers={})  # 401: no credentials
    response = requests.get(f"{databuddy_server.url}/rejections", timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert [r["status"] for r in body] == [401, 400]
    assert body[0]["message"] == "API key or website_id required"
    assert body[0]["id"] > body[1]["id"]
    assert body == databuddy_server.rejections()


@pytest.mark.parametrize(
    ("setup", "status", "message"),
    [
        ({"client_ids": ["site"]}, 404, "Website not found"),
        ({"api_keys": ["good"]}, 403, "API key missing track:events scope"),
    ],
)
def test_credential_refusals_are_kept(setup, status, message):
    """401/403/404 answers to /track are refusals too."""
    with DevServer(**setup) as server:
        headers = {"x-api-key": "bad"} if "api_keys" in setup else {}
        params = {} if "api_keys" in setup else {"website_id": "other"}
        assert track(server, {"name": "a"}, headers=headers, params=params).status_code == status
        assert [(r["status"], r["message"]) for r in server.rejections()] == [(status, message)]


def test_malformed_json_is_kept_as_sent(databuddy_server):
    """A body that is not JSON is kept as text, with the parser's complaint."""
    response = requests.post(
        f"{databuddy_server.url}/track", data=b"{nope", headers=KEY, timeout=10
    )
    assert response.status_code == 400
    (refusal,) = databuddy_server.rejections()
    assert refusal["body"] == "{nope"
    assert refusal["errors"][0].startswith("Malformed JSON:")


def test_legacy_error_answered_with_200_is_a_refusal(databuddy_server):
    """A legacy HTTP 200 whose body says status:error is kept, with its HTTP status 200."""
    response = legacy(databuddy_server, "/", {"type": "custom"})
    assert response.status_code == 200
    assert response.json()["status"] == "error"
    (refusal,) = databuddy_server.rejections()
    assert (refusal["status"], refusal["message"]) == (200, "Invalid event schema")
    assert refusal["errors"] == ["name: Required"]
    assert refusal["protocol"] == "legacy"


def test_each_bad_event_of_a_legacy_batch_is_a_refusal(databuddy_server):
    """Per-event errors inside a 200 legacy batch are kept one by one, with their index."""
    events = [
        {"type": "custom", "name": "good"},
        {"type": "custom", "name": "x" * 129, "anonymousId": "anon_7"},
        {"type": "custom", "name": 5},
    ]
    response = legacy(databuddy_server, "/batch", events)
    assert response.json()["processed"] == 3
    assert [e["name"] for e in databuddy_server.events()] == ["good"]
    second, first = databuddy_server.rejections()
    assert (first["index"], second["index"]) == (1, 2)
    assert first["errors"] == ["name: String must contain at most 128 character(s)"]
    assert json.loads(first["body"]) == events[1]
    assert first["anonymousId"] == "anon_7"
    assert second["errors"] == ["name: Expected string, received number"]
    assert first["requestId"] == second["requestId"]


def test_a_whole_legacy_batch_refused_is_one_refusal(databuddy_server):
    """A legacy batch refused as a whole (not an array) is one refusal."""
    legacy(databuddy_server, "/batch", {"type": "custom", "name": "a"})
    (refusal,) = databuddy_server.rejections()
    assert refusal["message"] == "Batch endpoint expects array of events"
    assert refusal["index"] is None


def test_accepted_and_duplicate_events_are_not_refusals(databuddy_server):
    """Success, and a legacy duplicate answered with success, leave the list empty."""
    event = {"type": "custom", "name": "a", "eventId": "same"}
    legacy(databuddy_server, "/", event)
    legacy(databuddy_server, "/", event)
    track(databuddy_server, {"name": "b"})
    assert databuddy_server.rejections() == []


@pytest.mark.parametrize(
    ("arm", "status", "injected"),
    [
        (lambda s: s.fail_next(status=429), 429, "fail_next"),
        (lambda s: s.set_outage(500), 500, "set_outage"),
    ],
)
def test_injected_failures_are_marked(databuddy_server, arm, status, injected):
    """fail_next and set_outage answers are kept, marked with the control that staged them."""
    arm(databuddy_server)
    assert track(databuddy_server, {"name": "a"}).status_code == status
    (refusal,) = databuddy_server.rejections()
    assert (refusal["status"], refusal["injected"]) == (status, injected)
    assert json.loads(refusal["body"]) == {"name": "a"}


@pytest.mark.parametrize("after_processing", [False, True])
def test_dropped_connections_are_marked(databuddy_server, after_processing):
    """drop_next is kept with status None, saying whether events were stored first."""
    databuddy_server.drop_next(after_processing=after_processing)
    with pytest.raises(requests.ConnectionError):
        track(databuddy_server, {"name": "a"})
    (refusal,) = databuddy_server.rejections()
    assert (refusal["status"], refusal["injected"]) == (None, "drop_next")
    stored = "after storing 1 event(s)" in refusal["message"]
    assert stored is after_processing
    assert len(databuddy_server.events()) == (1 if after_processing else 0)


def test_a_long_body_is_cut(databuddy_server):
    """The kept body is cut to MAX_BODY_CHARS characters and says so."""
    body = {"name": "", "properties": {"blob": "b" * 50_000}}
    track(databuddy_server, body)
    (refusal,) = databuddy_server.rejections()
    assert len(refusal["body"]) == MAX_BODY_CHARS
    assert refusal["bodyTruncated"] is True


def test_only_the_newest_few_hundred_are_kept(databuddy_server):
    """Past MAX_KEPT refusals, the oldest are forgotten."""
    with requests.Session() as session:
        for i in range(MAX_KEPT + 5):
            session.post(f"{databuddy_server.url}/track", json={"name": i}, headers=KEY)
    kept = databuddy_server.rejections()
    assert len(kept) == MAX_KEPT
    assert json.loads(kept[0]["body"]) == {"name": MAX_KEPT + 4}
    assert json.loads(kept[-1]["body"]) == {"name": 5}


@pytest.mark.parametrize("how", ["http", "python"])
def test_clearing_the_events_forgets_refusals_too(databuddy_server, how):
    """DELETE /events and server.clear() empty the refusals with the events."""
    track(databuddy_server, {"name": ""})
    track(databuddy_server, {"name": "kept"})
    if how == "http":
        response = requests.delete(f"{databuddy_server.url}/events", timeout=5)
        assert response.json() == {"status": "success", "deleted": 1}
    else:
        databuddy_server.clear()
    assert databuddy_server.rejections() == []
    assert databuddy_server.events() == []


def test_rejections_outlive_stop():
    """rejections() can still be read after the with block, like the counters."""
    with DevServer() as server:
        track(server, {"name": ""})
    assert len(server.rejections()) == 1


def test_inspection_requests_are_not_refusals(databuddy_server):
    """A 404 or 405 outside the ingest endpoints is not kept."""
    requests.get(f"{databuddy_server.url}/nope", timeout=5)
    requests.put(f"{databuddy_server.url}/events", timeout=5)
    assert databuddy_server.rejections() == []


def test_a_refused_array_names_its_events(databuddy_server):
    """For a refused batch, the distinct names and ids of its events are kept for filtering."""
    body = [
        {"name": "a", "anonymousId": "anon_1"},
        {"name": "b", "anonymousId": "anon_1"},
        {"name": ""},
    ]
    track(databuddy_server, body)
    (refusal,) = databuddy_server.rejections()
    assert (refusal["name"], refusal["anonymousId"]) == ("a, b", "anon_1")
    assert "sessionId" not in refusal

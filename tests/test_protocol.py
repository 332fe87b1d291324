"""Reading server answers and building requests (pure functions, no network)."""

from __future__ import annotations

from databuddy_otel.protocol import RETRY, SPLIT, SUCCESS, USER_AGENT, Wire, parse_retry_after

LEGACY = Wire("http://x", legacy=True, client_id="c i")
TRACK = Wire("http://x/", legacy=False, api_key="k")


def test_urls_and_headers() -> None:
    """Each generation posts to its endpoints with its credentials and our User-Agent."""
    assert LEGACY.url(batch=False) == "http://x/?client_id=c%20i"
    assert LEGACY.url(batch=True) == "http://x/batch?client_id=c%20i"
    assert TRACK.url(batch=True) == "http://x/track"
    assert TRACK.headers()["Authorization"] == "Bearer k"
    assert TRACK.headers()["User-Agent"] == USER_AGENT
    assert USER_AGENT.startswith("databuddy-otel-python/")
    assert "Authorization" not in LEGACY.headers()


def test_legacy_batch_reports_per_event_errors() -> None:
    """A legacy 200 batch with a failed slot marks only that event as failed."""
    body = (
        '{"status":"success","batch":true,"processed":2,"results":['
        '{"status":"success","type":"custom","eventId":"a"},'
        '{"status":"error","message":"Invalid event schema"}]}'
    )
    outcome = LEGACY.interpret(200, body, {}, 2, batch=True)
    assert outcome.verdict == SUCCESS
    assert outcome.errors == [None, "Invalid event schema"]


def test_legacy_payload_too_large_splits() -> None:
    """A legacy 'Payload too large' inside a 200 splits like a 413."""
    outcome = LEGACY.interpret(
        200, '{"status":"error","message":"Payload too large"}', {}, 4, batch=True
    )
    assert outcome.verdict == SPLIT


def test_retry_after_header_forms() -> None:
    """Retry-After is read as seconds or as an HTTP date; garbage is ignored."""
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert parse_retry_after("soon") is None
    outcome = TRACK.interpret(429, "", {"retry-after": "3"}, 1, batch=False)
    assert (outcome.verdict, outcome.retry_after) == (RETRY, 3.0)


def test_non_json_success_body_is_a_failure() -> None:
    """A 200 that is not the documented success body is not counted as delivered."""
    outcome = TRACK.interpret(200, "<html>proxy</html>", {}, 1, batch=False)
    assert outcome.verdict == "fail" and outcome.message == "Unknown error from server"

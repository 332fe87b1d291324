"""Reading server answers and building requests (pure functions, no network)."""

from __future__ import annotations

import pytest

from databuddy_otel._wire.protocol import (
    FAIL,
    PROTOCOLS,
    RETRY,
    SPLIT,
    SUCCESS,
    USER_AGENT,
    Wire,
    parse_retry_after,
)

LEGACY = Wire("http://x", PROTOCOLS["legacy"], client_id="c i")
TRACK = Wire("http://x/", PROTOCOLS["track"], api_key="k")


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


@pytest.mark.parametrize(
    "body",
    ["<html><body>Sign in to the hotel Wi-Fi</body></html>", "", "   ", "[1, 2]", '{"ok": 1}'],
)
@pytest.mark.parametrize("wire", [TRACK, LEGACY], ids=["track", "legacy"])
def test_a_200_that_is_not_the_servers_answer_is_retried(wire: Wire, body: str) -> None:
    """A 200 whose body is not Databuddy's is 'not delivered yet', never a refusal."""
    outcome = wire.interpret(200, body, {}, 2, batch=True)
    assert outcome.verdict == RETRY and outcome.foreign
    assert outcome.message is not None and outcome.message.startswith("HTTP 200 ")
    assert (repr(body[:80]) if body.strip() else "an empty body") in outcome.message


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_retried_with_its_location(status: int) -> None:
    """A 3xx is not the server's verdict: retried, and the message says where it points."""
    headers = {"location": "https://basket.example/track"}
    outcome = TRACK.interpret(status, "", headers, 1, batch=False)
    assert outcome.verdict == RETRY and outcome.foreign
    assert outcome.message is not None
    assert f"HTTP {status}" in outcome.message and "https://basket.example/track" in outcome.message


def test_the_servers_error_body_in_a_200_is_a_refusal() -> None:
    """The server's own error body is its verdict: final on both wire generations."""
    track = TRACK.interpret(
        200, '{"success":false,"status":"error","error":"x"}', {}, 1, batch=False
    )
    legacy = LEGACY.interpret(
        200, '{"status":"error","message":"Missing client ID"}', {}, 1, batch=False
    )
    assert (track.verdict, track.message, track.foreign) == (FAIL, "x", False)
    assert (legacy.verdict, legacy.message, legacy.foreign) == (FAIL, "Missing client ID", False)


def test_refusals_and_failures_quote_the_body() -> None:
    """A refusal carries the server's message; a bare status quotes the body's first bytes."""
    refused = TRACK.interpret(
        400, '{"status":"error","message":"Invalid request body"}', {}, 1, batch=True
    )
    assert refused.message == "HTTP 400: Invalid request body"
    gateway = TRACK.interpret(502, "<html>" + "x" * 200, {}, 1, batch=True)
    assert gateway.verdict == RETRY and not gateway.foreign
    assert gateway.message == f"HTTP 502: Bad Gateway ({('<html>' + 'x' * 74)!r}...)"


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("0", 0.0), ("-5", 0.0), ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0), ("1e400", float("inf"))],
)
def test_retry_after_now_past_and_absurd(value: str, seconds: float) -> None:
    """Retry-After of 0, negative, past or absurd reads as 0 or infinity, never an error."""
    assert parse_retry_after(value) == seconds

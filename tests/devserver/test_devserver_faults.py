"""Fault injection on the dev server: fail_next, delay_next, drop_next, set_outage.

reply_next and trickle_next are in test_devserver_staged.py."""

from __future__ import annotations

import http.client
import threading
import time

import pytest
import requests

from databuddy_otel.devserver import DevServer

KEY = {"x-api-key": "k"}


def track(server: DevServer, name: str = "e", *, timeout: float = 10) -> requests.Response:
    body = {"name": name}
    return requests.post(f"{server.url}/track", json=body, headers=KEY, timeout=timeout)


def address(server: DevServer) -> tuple[str, int]:
    host, _, port = server.url.removeprefix("http://").rpartition(":")
    return host, int(port)


def names(server: DevServer) -> list[str]:
    return [e["name"] for e in server.events()]


def test_fail_next_answers_503_without_storing(databuddy_server):
    """fail_next() answers the next ingest request 503 with a /track error body."""
    databuddy_server.fail_next()
    response = track(databuddy_server, "lost")
    assert response.status_code == 503
    assert response.json() == {
        "success": False,
        "status": "error",
        "error": "Service Unavailable",
        "message": "Service Unavailable",
        "code": "SERVICE_UNAVAILABLE",
    }
    assert "Retry-After" not in response.headers
    assert track(databuddy_server, "kept").status_code == 200
    assert names(databuddy_server) == ["kept"]
    assert databuddy_server.request_count == 2
    assert databuddy_server.faulted_request_ids() == set()


@pytest.mark.parametrize(
    ("retry_after", "header"),
    [
        (2, "2"),
        (2.0, "2"),
        (0.5, "0.5"),
        ("Wed, 21 Oct 2015 07:28:00 GMT", "Wed, 21 Oct 2015 07:28:00 GMT"),
    ],
)
def test_fail_next_sends_retry_after(databuddy_server, retry_after, header):
    """retry_after becomes the Retry-After header: whole seconds, fractions or a date."""
    databuddy_server.fail_next(status=429, retry_after=retry_after)
    response = track(databuddy_server)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == header
    assert response.json()["code"] == "RATE_LIMITED"


@pytest.mark.parametrize(
    "retry_after",
    ["0", "-5", "Thu, 01 Jan 1970 00:00:00 GMT", "Sun, 06 Nov 1994 08:49:37 GMT", "soon", ""],
)
def test_fail_next_sends_a_retry_after_string_verbatim(databuddy_server, retry_after):
    """A retry_after string, zero, negative, a date in the past or nonsense, arrives as is."""
    databuddy_server.fail_next(status=503, retry_after=retry_after)
    conn = http.client.HTTPConnection(*address(databuddy_server), timeout=5)
    try:
        conn.request("POST", "/track", '{"name":"e"}', {"Content-Type": "application/json", **KEY})
        response = conn.getresponse()
        response.read()
        assert response.status == 503
        assert response.getheader("Retry-After") == retry_after
    finally:
        conn.close()


def test_outage_sends_retry_after(databuddy_server):
    """set_outage(status, retry_after=...) sends the header on every refused request."""
    databuddy_server.set_outage(503, retry_after="-5")
    responses = [track(databuddy_server) for _ in range(2)]
    assert [r.headers["Retry-After"] for r in responses] == ["-5", "-5"]
    assert [r["injected"] for r in databuddy_server.rejections()] == ["set_outage"] * 2


def test_fail_next_counts_n_requests(databuddy_server):
    """fail_next(2, status=500) fails exactly two requests."""
    databuddy_server.fail_next(2, status=500)
    statuses = [track(databuddy_server, f"e{i}").status_code for i in range(3)]
    assert statuses == [500, 500, 200]
    assert names(databuddy_server) == ["e2"]


def test_faults_apply_to_legacy_endpoints(databuddy_server):
    """Faults count POST / and POST /batch too, answering with the /track-style body."""
    databuddy_server.fail_next(2)
    url = databuddy_server.url
    single = requests.post(f"{url}/?client_id=c", json={"type": "custom", "name": "a"}, timeout=10)
    batch = requests.post(f"{url}/batch?client_id=c", json=[{"type": "custom", "name": "a"}])
    assert (single.status_code, batch.status_code) == (503, 503)
    assert batch.json()["code"] == "SERVICE_UNAVAILABLE"
    assert databuddy_server.events() == []


def test_inspection_endpoints_are_never_faulted(databuddy_server):
    """GET /events, GET /health and DELETE /events neither trip nor consume a fault."""
    databuddy_server.fail_next()
    databuddy_server.set_outage(500)
    for method, path in (("GET", "/health"), ("GET", "/events"), ("DELETE", "/events")):
        assert requests.request(method, databuddy_server.url + path, timeout=5).status_code == 200
    databuddy_server.set_outage(None)
    assert track(databuddy_server).status_code == 503  # the armed fault is still there
    assert databuddy_server.request_count == 1


def test_delay_next_stores_before_answering(databuddy_server):
    """delay_next() stores the events at once and answers after the delay."""
    databuddy_server.delay_next(seconds=0.4)
    responses: list[requests.Response] = []
    thread = threading.Thread(target=lambda: responses.append(track(databuddy_server, "slow")))
    started = time.monotonic()
    thread.start()
    stored = databuddy_server.wait_for_events(1, timeout=5)
    assert responses == []  # stored, not yet answered
    assert databuddy_server.faulted_request_ids() == {stored[0]["requestId"]}
    thread.join()
    assert time.monotonic() - started >= 0.4
    assert responses[0].status_code == 200


def test_delay_past_the_client_timeout_makes_a_legitimate_resend(databuddy_server):
    """A client timing out on a delayed answer finds its request in faulted_request_ids."""
    databuddy_server.delay_next(seconds=2)
    with pytest.raises(requests.ReadTimeout):
        track(databuddy_server, "resend-me", timeout=0.3)
    track(databuddy_server, "resend-me")
    first, second = databuddy_server.events()
    assert databuddy_server.faulted_request_ids() == {first["requestId"]}
    assert second["requestId"] not in databuddy_server.faulted_request_ids()


def test_drop_next_closes_without_answer_or_storage(databuddy_server):
    """drop_next() closes the connection unanswered and stores nothing."""
    databuddy_server.drop_next()
    with pytest.raises(requests.ConnectionError):
        track(databuddy_server, "dropped")
    assert databuddy_server.events() == []
    assert databuddy_server.faulted_request_ids() == set()
    assert track(databuddy_server).status_code == 200


def test_drop_after_processing_stores_then_closes(databuddy_server):
    """drop_next(after_processing=True) stores the events, then closes unanswered."""
    databuddy_server.drop_next(after_processing=True)
    with pytest.raises(requests.ConnectionError):
        track(databuddy_server, "stored-but-unanswered")
    (stored,) = databuddy_server.events()
    assert databuddy_server.faulted_request_ids() == {stored["requestId"]}


def test_drop_after_processing_an_invalid_request_is_not_faulted(databuddy_server):
    """A dropped request that stored nothing is not in faulted_request_ids."""
    databuddy_server.drop_next(after_processing=True)
    with pytest.raises(requests.ConnectionError):
        track(databuddy_server, "")
    assert databuddy_server.faulted_request_ids() == set()


def test_faults_fire_in_the_order_they_were_armed(databuddy_server):
    """Armed faults are consumed first in, first out."""
    databuddy_server.fail_next(status=500)
    databuddy_server.drop_next()
    databuddy_server.fail_next(2, status=429)
    outcomes = []
    for i in range(5):
        try:
            outcomes.append(track(databuddy_server, f"e{i}").status_code)
        except requests.ConnectionError:
            outcomes.append("dropped")
    assert outcomes == [500, "dropped", 429, 429, 200]
    assert databuddy_server.request_count == 5


def test_outage_fails_everything_until_lifted(databuddy_server):
    """set_outage(status) answers every ingest request with it until set_outage(None)."""
    databuddy_server.set_outage(502)
    assert [track(databuddy_server).status_code for _ in range(3)] == [502, 502, 502]
    databuddy_server.set_outage(None)
    assert track(databuddy_server, "after").status_code == 200
    assert names(databuddy_server) == ["after"]


def test_outage_zero_drops_connections(databuddy_server):
    """set_outage(0) drops every ingest connection unanswered."""
    databuddy_server.set_outage(0)
    for _ in range(2):
        with pytest.raises(requests.ConnectionError):
            track(databuddy_server)
    assert databuddy_server.events() == []
    assert databuddy_server.request_count == 2


def test_clear_faults_disarms_everything(databuddy_server):
    """clear_faults() drops armed faults and ends an outage."""
    databuddy_server.fail_next(3)
    databuddy_server.set_outage(500)
    databuddy_server.clear_faults()
    assert track(databuddy_server).status_code == 200


def test_stop_interrupts_a_delayed_answer():
    """stop() does not wait out a long delay_next()."""
    server = DevServer().start()
    server.delay_next(seconds=60)
    errors: list[BaseException] = []

    def post() -> None:
        try:
            track(server, timeout=30)
        except requests.RequestException as exc:
            errors.append(exc)

    thread = threading.Thread(target=post)
    thread.start()
    server.wait_for_events(1, timeout=5)
    started = time.monotonic()
    server.stop()
    thread.join(timeout=10)
    assert time.monotonic() - started < 5
    assert not thread.is_alive()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda s: s.fail_next(0), "n must be an int >= 1"),
        (lambda s: s.fail_next(status=99), "status must be an HTTP status code"),
        (lambda s: s.fail_next(retry_after=-1), "retry_after must be seconds >= 0"),
        (lambda s: s.delay_next(seconds=-0.1), "seconds must be a number >= 0"),
        (lambda s: s.drop_next(1.5), "n must be an int >= 1"),
        (lambda s: s.set_outage(700), "status must be an HTTP status code"),
        (lambda s: s.fail_next(retry_after="1\r\nX-Evil: 1"), "retry_after must not hold"),
        (lambda s: s.set_outage(503, retry_after=-1), "retry_after must be seconds >= 0"),
    ],
)
def test_fault_arguments_are_checked(databuddy_server, call, message):
    """Bad fault arguments raise ValueError naming the argument."""
    with pytest.raises(ValueError, match=message):
        call(databuddy_server)

"""The request log: one line per ingest request, as the terminal of databuddy-devserver shows."""

from __future__ import annotations

import contextlib
import io
import re

import pytest
import requests

from databuddy_otel.devserver import DevServer

KEY = {"x-api-key": "k"}
LINE = re.compile(
    r"\d\d:\d\d:\d\d\.\d{3}  (track |legacy)  POST (/track|/batch|/     )  (\d{3}|---)  .+"
)


def logged(run) -> list[str]:
    """The lines DevServer(request_log=...) writes after its banner while ``run`` runs."""
    stream = io.StringIO()
    with DevServer(request_log=stream) as server:
        run(server)
    first, *lines = stream.getvalue().splitlines()
    assert first == f"Databuddy dev server listening on {server.url} (events: {server.url}/)"
    return lines


def post(server: DevServer, path: str, body: object, **kwargs: object) -> requests.Response:
    return requests.post(server.url + path, json=body, timeout=10, **kwargs)


def test_stored_events_are_one_line_with_names_and_counts():
    """A /track batch logs one line with the protocol, status and the names stored."""
    (line,) = logged(
        lambda s: post(
            s, "/track", [{"name": "signup"}, {"name": "view"}, {"name": "view"}], headers=KEY
        )
    )
    assert LINE.fullmatch(line), line
    assert line.endswith("track   POST /track  200  stored 3 events: signup, view x2")


def test_a_refusal_logs_its_reason():
    """A refused /track request logs the status, the message and the first errors."""
    (line,) = logged(lambda s: post(s, "/track", {"name": "n" * 257}, headers=KEY))
    assert LINE.fullmatch(line), line
    assert line.endswith(
        "400  refused: Invalid request body (name: String must contain at most 256 character(s))"
    )


def test_a_legacy_batch_logs_what_was_stored_and_refused():
    """A legacy batch with a bad event logs both, in one line."""
    events = [{"type": "custom", "name": "ok"}, {"type": "custom"}]
    (line,) = logged(lambda s: post(s, "/batch?client_id=c", events))
    assert line.endswith(
        "legacy  POST /batch  200  stored 1 event: ok; refused: event 1: Invalid event schema"
        " (name: Required)"
    )


def test_legacy_duplicates_are_said_not_stored():
    """A repeated legacy eventId logs that it was not stored."""
    event = {"type": "custom", "name": "a", "eventId": "same"}
    _, line = logged(lambda s: [post(s, "/?client_id=c", event) for _ in range(2)])
    assert line.endswith("legacy  POST /       200  1 duplicate eventId not stored")


@pytest.mark.parametrize(
    ("arm", "ending"),
    [
        (
            lambda s: s.fail_next(status=503),
            "503  refused, injected by fail_next: Service Unavailable",
        ),
        (lambda s: s.set_outage(429), "429  refused, injected by set_outage: Too Many Requests"),
        (
            lambda s: s.drop_next(),
            "---  refused, injected by drop_next: Connection closed without an answer",
        ),
        (
            lambda s: s.drop_next(after_processing=True),
            "---  stored 1 event: a; answer dropped, injected by drop_next",
        ),
        (
            lambda s: s.delay_next(seconds=0),
            "200  stored 1 event: a; answer delayed 0s by delay_next",
        ),
        (
            lambda s: s.reply_next(body="<html></html>"),
            "200  refused, injected by reply_next: Staged answer 200 OK:"
            " 13 bytes of text/html; charset=utf-8",
        ),
    ],
)
def test_injected_faults_say_so(arm, ending):
    """Staged faults are logged with the control that staged them."""

    def run(server: DevServer) -> None:
        arm(server)
        with contextlib.suppress(requests.ConnectionError):  # a dropped connection
            post(server, "/track", {"name": "a"}, headers=KEY)

    (line,) = logged(run)
    assert line.endswith(ending), line


@pytest.mark.parametrize(
    ("store", "ending"),
    [
        (True, "200  stored 1 event: a; answer trickled a byte every 0.01s by trickle_next"),
        (
            False,
            "200  refused, injected by trickle_next: Answer body trickled one byte every"
            " 0.01s, nothing stored",
        ),
    ],
)
def test_a_trickled_answer_says_so(store, ending):
    """A trickled answer is logged when it starts, with its interval and what was stored."""

    def run(server: DevServer) -> None:
        server.trickle_next(interval=0.01, store=store)
        with requests.post(
            f"{server.url}/track", json={"name": "a"}, headers=KEY, timeout=5, stream=True
        ) as response:
            assert response.raw.read(1)

    (line,) = logged(run)
    assert line.endswith(ending), line


def test_clearing_is_logged():
    """DELETE /events logs how many events went."""
    lines = logged(
        lambda s: [
            post(s, "/track", {"name": "a"}, headers=KEY),
            requests.delete(f"{s.url}/events", timeout=5),
        ]
    )
    assert lines[-1].endswith("  store cleared: 1 event deleted")


def test_request_log_must_be_a_stream():
    """A request_log without a write method is refused at construction."""
    with pytest.raises(TypeError, match="request_log must be a text stream"):
        DevServer(request_log="stdout")  # type: ignore[arg-type]

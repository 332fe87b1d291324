"""Answers real networks produce: proxies, redirects, retry storms, trickles, huge bodies.

Only the server's own refusal loses an event. Everything else (a 3xx, a 2xx whose
body is not the server's, an answer that never completes) is retried within the
deadline and then kept: in the spool when there is one, reported with the exact
answer when there is not. No wait outlasts the timeout it was given.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from databuddy_otel import Databuddy, Undelivered
from databuddy_otel._wire.delivery import RetryPolicy
from databuddy_otel.devserver import DevServer
from tests.conftest import MakeClient
from tests.reliability.conftest import Scoreboard

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform == "win32", reason="POSIX spool"),
]

#: (label, reply_next arguments) for answers that are not Databuddy's.
NOT_THE_SERVERS = [
    ("html-200", {"status": 200, "body": "<html><body>Please log in</body></html>"}),
    ("empty-200", {"status": 200, "body": b"", "content_type": None}),
    ("json-200-unknown", {"status": 200, "body": "[1, 2]", "content_type": "application/json"}),
    ("308", {"status": 308, "headers": {"Location": "https://elsewhere.example/batch"}}),
    ("302", {"status": 302, "headers": {"Location": "/login"}}),
]


@pytest.mark.parametrize(("label", "answer"), NOT_THE_SERVERS, ids=[n for n, _ in NOT_THE_SERVERS])
def test_an_answer_that_is_not_the_servers_keeps_the_events_in_the_spool(
    server: DevServer,
    make_client: MakeClient,
    tmp_path: Path,
    scoreboard: Scoreboard,
    label: str,
    answer: dict[str, object],
) -> None:
    """Retried within the deadline, then left on disk; delivered once the server answers."""
    lost: list[Undelivered] = []
    client = make_client(
        spool_dir=str(tmp_path), retry_deadline=0.6, timeout=0.5, on_undelivered=lost.extend
    )
    server.reply_next(10_000, **answer)  # type: ignore[arg-type]
    ids = [client.track(name="proxied", event_id=f"{label}-{i}").event_id for i in range(40)]
    result = client.flush(timeout=2)
    assert not result.success
    stats = client.stats()
    assert lost == [] and stats.undelivered == {}
    assert stats.queued + stats.spooled == 40
    assert server.events() == []
    server.clear_faults()
    assert client.flush(timeout=20).success
    score = scoreboard.record(f"an answer not the server's ({label}) x many, spool", ids, server)
    assert score.lost == 0 and score.duplicated == 0


@pytest.mark.parametrize(("label", "answer"), NOT_THE_SERVERS[:4:3], ids=["html-200", "308"])
def test_without_a_spool_the_exact_answer_is_reported(
    server: DevServer, make_client: MakeClient, label: str, answer: dict[str, object]
) -> None:
    """The message names the status and quotes the start of the body (or the Location)."""
    lost: list[Undelivered] = []
    client = make_client(retry_deadline=0.3, timeout=0.2, on_undelivered=lost.extend)
    server.reply_next(10_000, **answer)  # type: ignore[arg-type]
    client.track(name="proxied")
    assert not client.flush(timeout=2).success
    [undelivered] = lost
    assert undelivered.reason == "retries_exhausted"
    assert f"HTTP {answer['status']}" in undelivered.error
    expected = "Please log in" if label == "html-200" else "https://elsewhere.example/batch"
    assert expected in undelivered.error


def test_the_servers_own_refusal_is_the_only_loss(
    server: DevServer, make_client: MakeClient, tmp_path: Path
) -> None:
    """Next to the answers above, a 400 with the server's error body loses the event."""
    lost: list[Undelivered] = []
    client = make_client(spool_dir=str(tmp_path), on_undelivered=lost.extend)
    server.reply_next(
        1,
        status=400,
        body='{"status":"error","message":"Invalid client"}',
        content_type="application/json",
    )
    refused = client.track(name="refused").event_id
    assert not client.flush(timeout=10).success
    assert [(u.event_id, u.reason) for u in lost] == [(refused, "rejected")]
    assert "Invalid client" in lost[0].error


def test_retry_after_zero_storm_has_a_bounded_rate_and_loses_nothing(
    server: DevServer, make_client: MakeClient, tmp_path: Path, scoreboard: Scoreboard
) -> None:
    """503 + ``Retry-After: 0`` on every request: no storm, no overflow, nothing lost."""
    client = make_client(spool_dir=str(tmp_path), retry_deadline=3.0, timeout=1.0)
    server.set_outage(503, retry_after=0)
    ids = [client.track(name="storm", event_id=f"storm-{i}").event_id for i in range(100)]
    started = time.monotonic()
    client.flush(timeout=4)
    storm = server.request_count
    elapsed = time.monotonic() - started
    # One chunk of 100 events: about 7 attempts within the 3 s deadline (backoffs of
    # 0.1, 0.2, 0.4, 0.8, 1.6 s, jittered down to half), then the spool sends it again
    # with a fresh deadline. Without the bound: thousands of requests in these 4 s.
    assert storm <= 20, f"{storm} requests in {elapsed:.1f}s"
    assert client.stats().undelivered == {}
    server.set_outage(None)
    assert client.flush(timeout=20).success
    score = scoreboard.record(
        "503 with Retry-After: 0 on every answer, then a normal server, spool",
        ids,
        server,
        note=f"{storm} requests during {elapsed:.1f}s of the storm",
    )
    assert score.lost == 0


@pytest.mark.parametrize("retry_after", [0.0, -5.0, 1e308, float("inf"), None])
def test_backoff_is_bounded_at_every_attempt(retry_after: float | None) -> None:
    """Neither a huge attempt count nor an absurd Retry-After overflows or hurries the retry."""
    policy = RetryPolicy()
    for attempt in (0, 1, 10, 1_100, 10**6):
        wait = policy.backoff(attempt, retry_after)
        assert 0.05 <= wait <= policy.max_retry_after + policy.max_backoff
    assert policy.backoff(10**6, 0.0) >= policy.max_backoff * 0.5


def _tracking_script(url: str, spool: str | None, shutdown: str) -> str:
    return textwrap.dedent(
        f"""
        import sys, time
        from databuddy_otel import Databuddy
        client = Databuddy(client_id="trickle", api_url={url!r}, spool_dir={spool!r})
        for i in range(500):
            client.track(name="slow", event_id=f"slow-{{i}}")
        time.sleep(0.3)  # the first request is out, reading the trickle
        started = time.monotonic()
        {shutdown}
        print(f"returned {{time.monotonic() - started:.2f}}", flush=True)
        """
    )


@pytest.mark.parametrize("spool", [False, True], ids=["no-spool", "spool"])
@pytest.mark.parametrize("headers_too", [False, True], ids=["body", "headers"])
def test_a_trickling_answer_cannot_hold_shutdown(
    server: DevServer, tmp_path: Path, spool: bool, headers_too: bool
) -> None:
    """One byte every 0.5 s: shutdown(timeout=3) returns within 3.5 s and reports the rest."""
    server.trickle_next(10_000, interval=0.5, store=False, headers_too=headers_too)
    script = _tracking_script(
        server.url,
        str(tmp_path) if spool else None,
        "result = client.shutdown(timeout=3)",
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 0, proc.stderr
    seconds = float(proc.stdout.split()[-1])
    assert seconds <= 3.5
    if spool:
        assert "500 event(s) not yet delivered, kept in the spool" in proc.stderr
        server.clear_faults()
        with Databuddy(client_id="trickle", api_url=server.url, spool_dir=str(tmp_path)) as again:
            assert again.flush(timeout=20).success
        assert len({e["eventId"] for e in server.events()}) == 500
    else:
        assert "shut down with 500 queued event(s) undelivered" in proc.stderr


def test_a_trickling_answer_cannot_hold_the_exit(server: DevServer, tmp_path: Path) -> None:
    """An exit without flush ends within shutdown_timeout + 1 s, the events kept on disk."""
    server.trickle_next(10_000, interval=0.5, store=False)
    script = _tracking_script(server.url, str(tmp_path), "pass")
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30
    )
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    assert elapsed <= 5.0 + 1.0 + 1.0  # the default shutdown_timeout, + 1 s, + start-up
    assert "kept in the spool" in proc.stderr


def test_a_huge_answer_is_read_only_up_to_a_bound(server: DevServer) -> None:
    """A 400 MB body: the client reads its start, says what it was, and stays small."""
    server.reply_next(1_000, status=200, body="<html>", size=400_000_000)
    script = textwrap.dedent(
        f"""
        import resource
        from databuddy_otel import Databuddy
        client = Databuddy(client_id="huge", api_url={server.url!r}, retry_deadline=1)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        client.track(name="huge")
        print(client.flush(timeout=10).error)
        client.shutdown(timeout=2)
        print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    *_, grown_mib = proc.stdout.split()
    assert int(grown_mib) < 32, proc.stdout  # the peak grew by far less than the body
    assert "<html><html>" in proc.stdout + proc.stderr

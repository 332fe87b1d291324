"""Forked workers (multiprocessing with the fork start method, as prefork servers do)."""

from __future__ import annotations

import multiprocessing
import sys

import pytest

from databuddy_otel import Databuddy
from databuddy_otel.devserver import DevServer
from tests.conftest import MakeClient
from tests.reliability.conftest import Scoreboard

_client: Databuddy | None = None


def _work(n: int) -> list[str]:
    assert _client is not None
    ids = [
        _client.track(name="forked_work", properties={"n": n, "i": i}).event_id for i in range(50)
    ]
    result = _client.flush(timeout=10)
    assert result.success and result.processed == 50
    return [i or "" for i in ids]


@pytest.mark.skipif(sys.platform == "win32", reason="fork start method")
def test_multiprocessing_fork_pool_delivers_once(
    server: DevServer, make_client: MakeClient, scoreboard: Scoreboard
) -> None:
    """Pool workers forked from a parent with queued events deliver theirs; the parent's go once."""
    global _client
    _client = make_client(batch_size=100, batch_timeout=60_000)
    parent_ids = [_client.track(name="parent_queued").event_id or "" for _ in range(30)]
    context = multiprocessing.get_context("fork")
    with context.Pool(2) as pool:
        child_ids = [i for ids in pool.map(_work, range(4)) for i in ids]
    assert _client.flush(timeout=10).success
    score = scoreboard.record(
        "multiprocessing fork pool (4 tasks) + parent queue",
        parent_ids + child_ids,
        server,
    )
    assert (score.sent, score.lost, score.duplicated) == (230, 0, 0)

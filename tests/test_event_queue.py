"""The event queue's own promises: rollback, who may wait, what shutdown reports, the pin."""

from __future__ import annotations

import asyncio
import importlib.metadata
import os
import threading
import time
import warnings
from collections.abc import Sequence
from typing import Any

import pytest

from databuddy_otel import Undelivered
from databuddy_otel._queue.event_queue import EventQueue
from databuddy_otel._queue.otel_batch import BatchQueue
from databuddy_otel.devserver import DevServer
from tests.conftest import MakeClient


def _queue(client: Any) -> EventQueue:
    queue = client._queue
    assert isinstance(queue, EventQueue)
    return queue


def _sdk_version() -> tuple[int, int]:
    major, minor = importlib.metadata.version("opentelemetry-sdk").split(".")[:2]
    return int(major), int(minor)


def test_installed_sdk_takes_the_seam_from_1_33(make_client: MakeClient) -> None:
    """From opentelemetry-sdk 1.33 the queue appends to the SDK's deque; before, it emits."""
    batch = _queue(make_client())._batch
    assert batch.seam is (_sdk_version() >= (1, 33))
    if batch.seam:
        assert batch.put == batch._append
        assert batch._deque is batch._machinery._queue
    else:
        assert batch.put == batch._emit_wrapped


class Batches:
    """An ``on_batch`` that records each batch and the thread it arrived on."""

    def __init__(self) -> None:
        self.batches: list[list[Any]] = []
        self.threads: set[str] = set()
        self.lock = threading.Lock()

    def __call__(self, batch: Sequence[Any]) -> None:
        with self.lock:
            self.batches.append(list(batch))
            self.threads.add(threading.current_thread().name)

    @property
    def items(self) -> list[Any]:
        with self.lock:
            return [item for batch in self.batches for item in batch]

    def wait_for(self, count: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.items) < count:
            assert time.monotonic() < deadline, f"{len(self.items)} of {count} items arrived"
            time.sleep(0.005)


WAYS = pytest.mark.parametrize("use_seam", [True, False], ids=["seam", "public-emit"])


@WAYS
def test_batch_queue_hands_full_batches_to_the_worker_in_order(use_seam: bool) -> None:
    """A full queue loses nothing; the worker hands it over oldest first, batch_size at most."""
    got = Batches()
    queue: BatchQueue[tuple[int, str]] = BatchQueue(
        got, batch_size=5, delay_ms=60_000, max_size=20, use_seam=use_seam
    )
    try:
        items = [(i, f"body-{i}") for i in range(20)]
        for item in items:
            queue.put(item)
        got.wait_for(20)
        assert got.items == items
        assert all(1 <= len(batch) <= 5 for batch in got.batches)
        assert threading.current_thread().name not in got.threads
    finally:
        queue.shutdown()


@WAYS
def test_batch_queue_drain_now_and_shutdown_hand_over_what_waits(use_seam: bool) -> None:
    """drain_now() returns once every waiting item reached on_batch; shutdown() the rest."""
    got = Batches()
    queue: BatchQueue[str] = BatchQueue(
        got, batch_size=100, delay_ms=60_000, max_size=100, use_seam=use_seam
    )
    try:
        for i in range(7):
            queue.put(f"e{i}")
        queue.drain_now()
        assert got.items == [f"e{i}" for i in range(7)]
        queue.put("last")
    finally:
        queue.shutdown()
    assert got.items[-1] == "last"
    queue.drain_now()  # after shutdown: nothing left, nothing raised
    assert len(got.items) == 8


@WAYS
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_batch_queue_in_a_forked_child_starts_empty(use_seam: bool) -> None:
    """A forked child's copy of the queue is emptied; its own items still get through."""
    got = Batches()
    queue: BatchQueue[str] = BatchQueue(
        got, batch_size=100, delay_ms=60_000, max_size=100, use_seam=use_seam
    )
    try:
        queue.put("parent's")
        read, write = os.pipe()
        with warnings.catch_warnings():
            # Python 3.12+ warns about forking a process that runs threads: this one does.
            warnings.filterwarnings(
                "ignore", "This process .* is multi-threaded", DeprecationWarning
            )
            pid = os.fork()
        if pid == 0:  # the child: report what reaches on_batch, then leave at once
            code = 1
            try:
                queue.put("child's")
                queue.drain_now()
                os.write(write, ",".join(got.items).encode() or b"-")
                code = 0
            finally:
                os._exit(code)
        os.close(write)
        seen = os.read(read, 1000).decode()
        os.close(read)
        _, status = os.waitpid(pid, 0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
        assert seen == "child's"
        queue.drain_now()
        assert got.items == ["parent's"]
    finally:
        queue.shutdown()


def test_a_failed_enqueue_gives_back_its_room_and_its_id(
    server: DevServer, make_client: MakeClient
) -> None:
    """Ten enqueues that fail leave no room taken, free their ids and are counted."""
    lost: list[Undelivered] = []
    client = make_client(max_queue_size=10, on_undelivered=lost.extend)
    queue = _queue(client)
    real_put = queue._put

    def broken(item: Any) -> None:
        raise RuntimeError("queue refused")

    queue._put = broken
    responses = [client.track(name="e", event_id=f"id-{i}") for i in range(10)]
    assert all(not r.success and "queue refused" in (r.error or "") for r in responses)
    assert client.stats().queued == 0
    assert client.stats().undelivered == {"export_error": 10}
    assert sorted(u.event_id or "" for u in lost) == sorted(f"id-{i}" for i in range(10))
    queue._put = real_put
    start = time.monotonic()
    again = client.track(name="e", event_id="id-0")  # the id is free again, and room too
    assert again.success and time.monotonic() - start < 0.5
    assert client.flush(timeout=5).success
    assert [e["eventId"] for e in server.events()] == ["id-0"]


def test_on_undelivered_that_tracks_into_a_full_queue_never_stalls(
    server: DevServer, make_client: MakeClient
) -> None:
    """A callback on the sending thread that tracks is refused at once, not made to wait."""
    seen: list[float] = []

    def callback(lost: list[Undelivered]) -> None:
        start = time.monotonic()
        for _ in range(5):
            client.track(name="from_callback")
        seen.append(time.monotonic() - start)

    client = make_client(batch_size=2, max_queue_size=2, on_undelivered=callback, timeout=2.0)
    server.fail_next(1, status=400)
    server.delay_next(3, seconds=0.3)  # keeps the queue full while the callback runs
    for _ in range(6):
        client.track(name="e")
    assert client.flush(timeout=10) is not None
    assert seen and max(seen) < 0.5


def test_event_loop_thread_without_batching_goes_through_admission(
    server: DevServer, make_client: MakeClient
) -> None:
    """enable_batching=False on an event loop: bounded by max_queue_size, refusals at once."""
    client = make_client(enable_batching=False, batch_size=5, max_queue_size=5, timeout=1.0)
    server.set_outage(0)

    async def burst() -> tuple[list[bool], float, int]:
        start = time.monotonic()
        ok = [client.track(name="from_loop").success for _ in range(20)]
        return ok, time.monotonic() - start, client.stats().queued

    ok, elapsed, queued = asyncio.run(burst())
    assert elapsed < 0.5
    assert 1 <= queued <= 5 and sum(ok) <= 5 + 1
    assert client.stats().undelivered.get("queue_full", 0) >= 14
    server.set_outage(None)
    assert client.flush(timeout=10).success
    assert len(server.events()) == sum(ok)


def test_abatch_does_not_block_the_event_loop(server: DevServer, make_client: MakeClient) -> None:
    """await client.abatch() sends while other tasks of the loop keep running."""
    client = make_client()
    server.delay_next(1, seconds=0.3)

    async def main() -> tuple[bool, int]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        task = asyncio.ensure_future(ticker())
        result = await client.abatch([{"name": "a"}, {"name": "b"}])
        task.cancel()
        return result.success, ticks

    success, ticks = asyncio.run(main())
    assert success and ticks >= 10
    assert sorted(e["name"] for e in server.events()) == ["a", "b"]


def test_events_left_at_shutdown_are_reported_with_their_ids(
    server: DevServer, make_client: MakeClient, caplog: Any
) -> None:
    """What a shutdown cannot deliver reaches on_undelivered id by id, with one warning."""
    lost: list[Undelivered] = []
    client = make_client(on_undelivered=lost.extend, batch_timeout=60_000, timeout=0.5)
    server.set_outage(0)
    ids = {client.track(name="stranded").event_id for _ in range(25)}
    with caplog.at_level("WARNING", logger="databuddy"):
        result = client.shutdown(timeout=0.3)
    assert not result.success
    assert {u.event_id for u in lost} == ids
    assert {u.reason for u in lost} == {"shutdown"}
    assert client.stats().undelivered == {"shutdown": 25}
    assert "25 queued event(s) undelivered" in caplog.text


def test_flush_from_a_sending_thread_returns_at_once(
    server: DevServer, make_client: MakeClient
) -> None:
    """flush() inside on_undelivered (the sending thread) cannot wait for itself: it says so."""
    answers: list[Any] = []

    def callback(lost: list[Undelivered]) -> None:
        answers.append(client.flush(timeout=30))

    client = make_client(on_undelivered=callback)
    server.fail_next(1, status=400)
    client.track(name="refused")
    start = time.monotonic()
    client.flush(timeout=10)
    assert answers and not answers[0].success
    assert "cannot wait for itself" in answers[0].error
    assert time.monotonic() - start < 5


def test_dropped_client_still_delivers(server: DevServer) -> None:
    """A client nobody holds any more is flushed and closed in the background."""
    from databuddy_otel import Databuddy

    def work() -> None:
        client = Databuddy(client_id="x", api_url=server.url, batch_timeout=60_000)
        for i in range(25):
            client.track(name="dropped", properties={"i": i})

    work()
    server.wait_for_events(25, timeout=10)
    deadline = time.monotonic() + 5
    while any(t.name == "databuddy-close" for t in threading.enumerate()):
        assert time.monotonic() < deadline
        time.sleep(0.01)

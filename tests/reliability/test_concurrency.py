"""Many threads at once, with flush() and shutdown() racing track()."""

from __future__ import annotations

import threading
import time

from databuddy_otel import EventResponse
from databuddy_otel.devserver import DevServer
from tests.conftest import MakeClient
from tests.reliability.conftest import Scoreboard

THREADS = 8
PER_THREAD = 400


def test_threads_tracking_with_flushes_lose_and_duplicate_nothing(
    server: DevServer, make_client: MakeClient, scoreboard: Scoreboard
) -> None:
    """8 threads track while two others flush in a loop: all arrive once, no deadlock."""
    client = make_client(batch_size=25, max_queue_size=200)
    results: list[list[EventResponse]] = [[] for _ in range(THREADS)]
    stop = threading.Event()

    def producer(slot: int) -> None:
        for i in range(PER_THREAD):
            results[slot].append(client.track(name="threaded", properties={"t": slot, "i": i}))

    def flusher() -> None:
        while not stop.is_set():
            client.flush(timeout=5)

    flushers = [threading.Thread(target=flusher) for _ in range(2)]
    producers = [threading.Thread(target=producer, args=(n,)) for n in range(THREADS)]
    for thread in flushers + producers:
        thread.start()
    for thread in producers:
        thread.join(timeout=60)
    stop.set()
    for thread in flushers:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in flushers + producers), "deadlock"
    assert client.flush(timeout=10).success
    sent = [r for slot in results for r in slot]
    assert all(r.success for r in sent)
    score = scoreboard.record(
        "8 threads + 2 flushing threads", (r.event_id or "" for r in sent), server
    )
    assert (score.sent, score.lost, score.duplicated) == (THREADS * PER_THREAD, 0, 0)


def test_shutdown_racing_track_accounts_for_every_event(
    server: DevServer, make_client: MakeClient, scoreboard: Scoreboard
) -> None:
    """Events accepted before shutdown arrive; later ones are refused, none silently lost."""
    client = make_client(batch_size=20)
    results: list[EventResponse] = []
    lock = threading.Lock()
    started = threading.Barrier(THREADS + 1)

    def producer() -> None:
        started.wait()
        for _ in range(2000):
            response = client.track(name="racing")
            with lock:
                results.append(response)

    threads = [threading.Thread(target=producer) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    started.wait()
    deadline = time.monotonic() + 10
    while len(results) < 1000 and time.monotonic() < deadline:
        time.sleep(0.001)  # let the race start with events in flight
    client.shutdown(timeout=10)
    for thread in threads:
        thread.join(timeout=30)
    accepted = [r.event_id or "" for r in results if r.success]
    refused = [r for r in results if not r.success]
    assert all(r.error == "client is shut down" for r in refused)
    score = scoreboard.record(
        "shutdown() racing 8 tracking threads",
        accepted,
        server,
        note=f"{len(refused)} refused after shutdown, each told so",
    )
    assert score.sent >= 1000 and refused
    assert (score.lost, score.duplicated) == (0, 0)


def test_threads_through_the_logging_handler_and_structlog(
    server: DevServer, make_client: MakeClient, scoreboard: Scoreboard
) -> None:
    """Threads logging through DatabuddyHandler and the structlog processor: all arrive once."""
    import logging

    import structlog

    from databuddy_logging import DatabuddyHandler
    from databuddy_logging.structlog import DatabuddyProcessor

    client = make_client(batch_size=25, max_queue_size=200)
    logger = logging.getLogger("reliability.threads")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    handler = DatabuddyHandler(client=client)
    logger.addHandler(handler)
    ids: list[str] = []
    lock = threading.Lock()

    def remember_id(_: object, __: str, event_dict: dict[str, object]) -> dict[str, object]:
        with lock:
            ids.append(str(event_dict["db_tracked"]))
        return event_dict

    log = structlog.wrap_logger(
        structlog.ReturnLogger(),
        processors=[DatabuddyProcessor(client), remember_id, structlog.processors.JSONRenderer()],
    )

    def via_logging(slot: int) -> None:
        for i in range(PER_THREAD // 2):
            logger.info("via_logging", extra={"db_props": {"t": slot, "i": i}})

    def via_structlog(slot: int) -> None:
        for i in range(PER_THREAD // 2):
            log.info("via_structlog", db_props={"t": slot, "i": i})

    try:
        threads = [threading.Thread(target=via_logging, args=(n,)) for n in range(THREADS // 2)]
        threads += [threading.Thread(target=via_structlog, args=(n,)) for n in range(THREADS // 2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert client.flush(timeout=10).success
    finally:
        logger.removeHandler(handler)
    events = server.events()
    logged = [e["eventId"] for e in events if e["name"] == "via_logging"]
    score = scoreboard.record(
        "4 threads via logging + 4 via structlog",
        logged + ids,
        server,
    )
    assert len(logged) == THREADS // 2 * PER_THREAD // 2
    assert (score.sent, score.lost, score.duplicated) == (THREADS * PER_THREAD // 2, 0, 0)

"""Serverless handlers, SIGTERM, and asyncio: flushing at the edges of a process's life."""

from __future__ import annotations

import asyncio
import signal
import time

import pytest

from databuddy_otel.devserver import DevServer
from databuddy_otel.lifecycle import exit_on_sigterm, flush_after
from tests.conftest import MakeClient


def test_decorated_handler_delivers_before_returning(
    server: DevServer, make_client: MakeClient
) -> None:
    """A handler wrapped in flush_after has delivered every event when it returns."""
    client = make_client(batch_size=100, batch_timeout=60_000)

    @flush_after(client, timeout=5)
    def handler(event: dict[str, str], context: object) -> dict[str, int]:
        for i in range(3):
            client.track(name="lambda_invoked", properties={"i": i, "source": event["source"]})
        return {"statusCode": 200}

    assert handler({"source": "s3"}, None) == {"statusCode": 200}
    assert len(server.events()) == 3


def test_handler_that_raises_still_flushes(server: DevServer, make_client: MakeClient) -> None:
    """flush_after flushes in finally: events tracked before an exception are delivered."""
    client = make_client(batch_size=100, batch_timeout=60_000)
    try:
        with flush_after(client, timeout=5):
            client.track(name="lambda_error")
            raise RuntimeError("handler failed")
    except RuntimeError:
        pass
    assert [e["name"] for e in server.events()] == ["lambda_error"]


def test_async_handler_flushes_without_blocking_the_loop(
    server: DevServer, make_client: MakeClient
) -> None:
    """An async handler wrapped in flush_after awaits the flush; the loop keeps running."""
    client = make_client(batch_size=100, batch_timeout=60_000)
    ticks: list[float] = []

    @flush_after(client, timeout=5)
    async def handler() -> str:
        client.track(name="async_invoked")
        return "ok"

    async def ticker() -> None:
        for _ in range(20):
            ticks.append(time.monotonic())
            await asyncio.sleep(0.01)

    async def main() -> str:
        server.delay_next(1, seconds=0.3)
        tick_task = asyncio.create_task(ticker())
        result = await handler()
        await tick_task
        return result

    assert asyncio.run(main()) == "ok"
    assert [e["name"] for e in server.events()] == ["async_invoked"]
    assert max(b - a for a, b in zip(ticks, ticks[1:])) < 0.2


def test_unbatched_track_never_blocks_the_event_loop(
    server: DevServer, make_client: MakeClient
) -> None:
    """With batching off, track() inside a running loop returns at once and still delivers."""
    client = make_client(enable_batching=False)

    async def main() -> float:
        server.delay_next(1, seconds=0.5)
        start = time.monotonic()
        response = client.track(name="from_async")
        assert response.success
        return time.monotonic() - start

    assert asyncio.run(main()) < 0.2
    assert [e["name"] for e in server.wait_for_events(1)] == ["from_async"]


def test_aflush_waits_for_unbatched_sends_from_the_loop(
    server: DevServer, make_client: MakeClient
) -> None:
    """await aflush() returns once the sends track() started in the background are done."""
    client = make_client(enable_batching=False)

    async def main() -> int:
        server.delay_next(1, seconds=0.3)
        client.track(name="background_send")
        result = await client.aflush(timeout=5)
        return result.processed

    assert asyncio.run(main()) == 1
    assert [e["name"] for e in server.events()] == ["background_send"]


def test_exit_on_sigterm_keeps_the_previous_handler() -> None:
    """An application's own SIGTERM handler still runs before the exit."""
    calls: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: calls.append(signum))
    try:
        exit_on_sigterm(3)
        handler = signal.getsignal(signal.SIGTERM)
        assert callable(handler)
        with pytest.raises(SystemExit) as info:
            handler(signal.SIGTERM, None)
        assert info.value.code == 3
        assert calls == [signal.SIGTERM]
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_full_queue_never_blocks_the_event_loop(server: DevServer, make_client: MakeClient) -> None:
    """On an event-loop thread a full queue refuses at once instead of waiting for room."""
    client = make_client(batch_size=1, max_queue_size=1)

    async def main() -> tuple[float, int]:
        server.delay_next(5, seconds=0.5)
        slowest, refused = 0.0, 0
        for _ in range(5):
            start = time.monotonic()
            refused += not client.track(name="from_loop").success
            slowest = max(slowest, time.monotonic() - start)
        return slowest, refused

    slowest, refused = asyncio.run(main())
    assert slowest < 0.2
    assert refused >= 1
    assert client.stats().undelivered["queue_full"] == refused


def test_a_client_goes_open_closing_closed(server: DevServer, make_client: MakeClient) -> None:
    """While shutdown() delivers, the client refuses new events; afterwards all is closed."""
    import threading

    from databuddy_otel._runtime.state import State

    client = make_client(batch_size=1)
    assert client._state is State.OPEN and client._queue is not None
    server.delay_next(1, seconds=0.5)
    client.track(name="held")
    stopping = threading.Thread(target=client.shutdown, args=(3,))
    stopping.start()
    time.sleep(0.2)
    assert client._state is State.CLOSING
    refused = client.track(name="too_late")
    assert not refused.success and "shut down" in str(refused.error)
    stopping.join()
    assert client._state is State.CLOSED and client._queue.state is State.CLOSED
    assert [e["name"] for e in server.events()] == ["held"]

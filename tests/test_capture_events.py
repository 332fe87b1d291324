"""capture_events() and the databuddy_events fixture: events in a list, nothing sent."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import pytest

import databuddy_otel
from databuddy_otel import default
from databuddy_otel.devserver import DevServer
from databuddy_otel.testing import capture_events
from tests.conftest import MakeClient


@pytest.fixture(autouse=True)
def no_default_client() -> Iterator[None]:
    default.shutdown(2)
    yield
    default.shutdown(2)


def test_the_default_client_with_none_made_yet() -> None:
    """A quiet stand-in takes the block's events and is gone after it."""
    with capture_events() as events:
        assert databuddy_otel.track("signup", {"plan": "pro"}, anonymous_id="anon_1").success
        assert not databuddy_otel.track(name="").success  # refused by the checks: not captured
        assert databuddy_otel.batch([{"name": "b1"}, {"name": "b2"}]).success
    assert [e["name"] for e in events] == ["signup", "b1", "b2"]
    assert events[0]["properties"] == {"plan": "pro"}
    assert events[0]["anonymousId"] == "anon_1" and events[0]["eventId"]
    assert default.current() is None


def test_an_explicit_client_sends_nothing_while_captured(
    server: DevServer, make_client: MakeClient
) -> None:
    client = make_client(middleware=[lambda e: {**e, "properties": {**e["properties"], "m": 1}}])
    client.set_global_properties({"release": "1.2"})
    with capture_events(client) as events:
        threads = [
            threading.Thread(target=client.track, kwargs={"name": f"t{i}", "properties": {}})
            for i in range(4)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert sorted(e["name"] for e in events) == ["t0", "t1", "t2", "t3"]
    assert all(e["properties"] == {"release": "1.2", "m": 1} for e in events)
    assert client.track(name="after").success  # the client sends again after the block
    assert client.flush(5).success
    assert [e["name"] for e in server.events()] == ["after"]


def test_the_default_client_and_a_handler_without_one(server: DevServer) -> None:
    from databuddy_logging import DatabuddyHandler

    databuddy_otel.init(client_id="site", api_url=server.url)
    log = logging.getLogger("test.capture")
    log.setLevel(logging.INFO)
    handler = DatabuddyHandler()
    log.addHandler(handler)
    try:
        with capture_events() as events:
            log.info("from_logging", extra={"db_props": {"k": 1}})
            log.info("untagged")
    finally:
        log.removeHandler(handler)
    assert [(e["name"], e["properties"]["k"]) for e in events] == [("from_logging", 1)]
    assert databuddy_otel.flush(5).success
    assert server.events() == []


def test_the_pytest_fixture(databuddy_events: list[dict[str, object]]) -> None:
    databuddy_otel.track("from_fixture")
    assert [e["name"] for e in databuddy_events] == ["from_fixture"]

"""The loguru sink: tagged messages become events once, the rest send nothing, nothing raises."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from databuddy_logging.loguru import DatabuddySink
from databuddy_otel import Undelivered
from databuddy_otel.devserver import DevServer
from tests.conftest import MakeClient

loguru = pytest.importorskip("loguru")
logger = loguru.logger


@pytest.fixture
def sinks() -> Iterator[list[int]]:
    """Handler ids added by a test; removed (and the default stderr sink back) after it."""
    logger.remove()
    added: list[int] = []
    yield added
    for handler_id in added:
        logger.remove(handler_id)


def test_tagged_messages_arrive_once_and_untagged_send_nothing(
    server: DevServer, make_client: MakeClient, sinks: list[int]
) -> None:
    """logger.info("signup", db_props=...) is one event with the record fields."""
    client = make_client()
    sinks.append(logger.add(DatabuddySink(client)))
    logger.info("cache warmed")
    logger.info("signup", db_props={"plan": "pro"})
    logger.bind(db_anonymous_id="anon_1", db_session_id="sess_1").warning("login", db_event=True)
    assert client.flush(timeout=5).success
    events = {e["name"]: e for e in server.events()}
    assert set(events) == {"signup", "login"}
    assert events["signup"]["properties"] == {
        "plan": "pro",
        "log_logger": __name__,
        "log_level": "info",
    }
    assert (events["login"]["anonymousId"], events["login"]["sessionId"]) == ("anon_1", "sess_1")
    assert events["login"]["properties"]["log_level"] == "warning"


def test_exception_fields_and_a_second_sink(
    server: DevServer, make_client: MakeClient, sinks: list[int]
) -> None:
    """logger.exception() adds the exception; two sinks of ours send the message once."""
    client = make_client()
    sinks.append(logger.add(DatabuddySink(client)))
    sinks.append(logger.add(DatabuddySink(client, record_fields=None)))
    try:
        raise KeyError("sku")
    except KeyError:
        logger.exception("checkout_failed", db_props={"cart": 3})
    assert client.flush(timeout=5).success
    [event] = server.events()
    assert event["properties"]["exception_type"] == "KeyError"
    assert event["properties"]["exception_message"] == "'sku'"


def test_middleware_runs_and_bad_events_are_reported_not_raised(
    server: DevServer, make_client: MakeClient, sinks: list[int]
) -> None:
    """The client's middleware sees sink events; a bad one is counted, never raised."""
    lost: list[Undelivered] = []
    client = make_client(on_undelivered=lost.extend)
    client.add_middleware(lambda event: {**event, "properties": {**event["properties"], "m": 1}})
    sinks.append(logger.add(DatabuddySink(client), catch=False))
    logger.info("ok", db_props={"a": 1})
    logger.info("x" * 300, db_props={"a": 1})  # a name over the server's limit
    logger.info("bad_props", db_props="not a mapping")
    assert client.flush(timeout=5).success
    assert [(e["name"], e["properties"]) for e in server.events()] == [
        ("ok", {"a": 1, "m": 1, "log_logger": __name__, "log_level": "info"})
    ]
    assert [u.reason for u in lost] == ["invalid", "middleware_error"]


def test_the_sdks_own_logs_routed_to_loguru_do_not_loop(
    server: DevServer, make_client: MakeClient, sinks: list[int]
) -> None:
    """With stdlib logging intercepted into loguru, the SDK's warnings are not tracked."""
    seen: list[str] = []

    class Intercept(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            logger.opt(depth=6).log(record.levelname, record.getMessage())

    intercept = Intercept()
    logging.getLogger("databuddy").addHandler(intercept)
    try:
        client = make_client()
        sinks.append(logger.add(DatabuddySink(client)))
        sinks.append(logger.add(lambda m: seen.append(m.record["message"])))
        client.track(name="y" * 300)  # refused: the SDK warns, through loguru
    finally:
        logging.getLogger("databuddy").removeHandler(intercept)
    client.flush(timeout=5)
    assert any("not tracked" in text for text in seen)
    assert server.events() == []  # neither the refused event nor the SDK's warning


def test_a_sink_that_builds_its_client_delivers_on_remove(server: DevServer) -> None:
    """DatabuddySink(client_id=..., api_url=...) owns its client: logger.remove() sends."""
    logger.remove()
    sink = DatabuddySink(client_id="loguru-site", api_url=server.url, batch_timeout=60_000)
    handler_id = logger.add(sink)
    logger.info("from_loguru", db_props={"k": "v"})
    logger.remove(handler_id)
    assert [e["name"] for e in server.events()] == ["from_loguru"]
    assert sink.client.stats().delivered == 1
    logger.info("after_remove", db_props={})
    assert len(server.events()) == 1


@pytest.mark.parametrize(
    ("args", "kwargs", "needle"),
    [
        ((object(),), {}, "must be a databuddy_otel.Databuddy"),
        ((), {"clientId": "x"}, "did you mean client_id?"),
        ((), {"record_fields": "level"}, "list of names"),
    ],
)
def test_bad_arguments_are_clear_errors(
    args: tuple[Any, ...], kwargs: dict[str, Any], needle: str
) -> None:
    with pytest.raises(TypeError, match=needle):
        DatabuddySink(*args, **kwargs)

"""DatabuddyProcessor: structlog events arrive as Databuddy events, sent exactly once."""

from __future__ import annotations

import importlib
import io
import json
import logging
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

import databuddy_logging.structlog as db_structlog
from databuddy_logging import DatabuddyHandler
from databuddy_logging.structlog import DatabuddyProcessor
from databuddy_otel import Databuddy
from databuddy_otel.devserver import DevServer
from tests.conftest import MakeClient


@pytest.fixture(autouse=True)
def clean_structlog() -> Iterator[None]:
    """Reset structlog's global configuration and bound context after each test."""
    yield
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


def native_logger(*processors: Any) -> Any:
    """A structlog logger whose calls return the final event dict (no global config)."""
    return structlog.wrap_logger(structlog.ReturnLogger(), processors=list(processors))


def keep_dict(_: Any, __: str, event_dict: Any) -> Any:
    """A terminal processor that hands the event dict to ReturnLogger as is."""
    return ((event_dict,), {})


def test_native_event_arrives_and_dict_goes_on(server: DevServer, make_client: MakeClient) -> None:
    """log.info(name, db_props=..., db_*=...) is tracked and the dict reaches the renderer."""
    client = make_client()
    log = native_logger(structlog.processors.add_log_level, DatabuddyProcessor(client), keep_dict)
    out = log.info(
        "user_signup",
        db_props={"plan": "pro"},
        db_anonymous_id="anon_1",
        db_session_id="sess_1",
        db_timestamp=1_700_000_000_000,
        user="ann",
    )
    client.flush()
    [event] = server.events()
    assert event["name"] == "user_signup"
    assert event["properties"] == {"plan": "pro", "log_level": "info"}
    assert (event["anonymousId"], event["sessionId"]) == ("anon_1", "sess_1")
    assert event["timestamp"] == 1_700_000_000_000
    assert out["user"] == "ann" and out["db_props"] == {"plan": "pro"}
    assert out["db_tracked"] == event["eventId"]


def test_json_renderer_chain_via_configure(server: DevServer, make_client: MakeClient) -> None:
    """With structlog.configure and JSONRenderer, the event is tracked and the line rendered."""
    client = make_client()
    stream = io.StringIO()
    structlog.configure(
        processors=[DatabuddyProcessor(client, strip=True), structlog.processors.JSONRenderer()],
        logger_factory=structlog.PrintLoggerFactory(stream),
    )
    structlog.get_logger().info("rendered", db_props={"n": 1}, request="r1")
    client.flush()
    assert [e["name"] for e in server.events()] == ["rendered"]
    assert json.loads(stream.getvalue()) == {"event": "rendered", "request": "r1"}


def test_strip_removes_db_keys(make_client: MakeClient) -> None:
    """strip=True removes every db_* key (bound ones too) before the renderer."""
    log = native_logger(DatabuddyProcessor(make_client(), strip=True), keep_dict)
    out = log.info("x", db_props={}, db_anonymous_id="a", db_event_id="e", other=1)
    untagged = log.info("y", db_session_id="s")
    assert out == {"event": "x", "other": 1}
    assert untagged == {"event": "y"}


def test_untagged_events_are_not_sent(server: DevServer, make_client: MakeClient) -> None:
    """Events without db_props or db_event=True never reach the server, and pass unchanged."""
    client = make_client()
    log = native_logger(DatabuddyProcessor(client), keep_dict)
    assert log.info("plain", user="ann") == {"event": "plain", "user": "ann"}
    log.info("almost", db_event="yes", db_anonymous_id="a")
    client.flush()
    assert server.request_count == 0


def test_bound_contextvars_apply_to_every_event(server: DevServer, make_client: MakeClient) -> None:
    """db_* ids bound with bind_contextvars reach every event logged in that context."""
    client = make_client()
    log = native_logger(
        structlog.contextvars.merge_contextvars, DatabuddyProcessor(client), keep_dict
    )
    structlog.contextvars.bind_contextvars(db_anonymous_id="anon_ctx", db_session_id="sess_ctx")
    log.info("one", db_props={})
    log.info("two", db_event=True, db_session_id="sess_own")
    structlog.contextvars.clear_contextvars()
    log.info("three", db_props={})
    client.flush()
    ids = {e["name"]: (e["anonymousId"], e["sessionId"]) for e in server.events()}
    assert ids == {
        "one": ("anon_ctx", "sess_ctx"),
        "two": ("anon_ctx", "sess_own"),
        "three": (None, None),
    }


def test_exception_is_recorded(server: DevServer, make_client: MakeClient) -> None:
    """log.exception(...) inside except carries exception_type and exception_message."""
    client = make_client()
    log = native_logger(structlog.processors.add_log_level, DatabuddyProcessor(client), keep_dict)
    try:
        raise ValueError("card declined")
    except ValueError:
        log.exception("payment_failed", db_props={"amount": 5})
    client.flush()
    [event] = server.events()
    assert event["properties"] == {
        "amount": 5,
        "log_level": "error",
        "exception_type": "ValueError",
        "exception_message": "card declined",
    }


def test_garbage_is_reported_and_the_dict_returned(
    server: DevServer, make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    """Props the client refuses are reported on the databuddy logger; the chain goes on."""
    client = make_client()
    log = native_logger(DatabuddyProcessor(client), keep_dict)
    with caplog.at_level(logging.WARNING, logger="databuddy"):
        out = log.info("bad", db_props=["not", "a", "dict"], db_anonymous_id=object())
    assert out["event"] == "bad"
    assert any("not tracked" in r.getMessage() for r in caplog.records if r.name == "databuddy")
    client.flush()
    assert server.events() == []


def test_internal_failure_never_breaks_the_chain(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    """An exception inside the processor is logged to databuddy and the dict is returned."""

    class Broken(DatabuddyProcessor):
        def build_event(self, method_name: str, event_dict: Any) -> dict[str, Any] | None:
            raise RuntimeError("bug")

    log = native_logger(Broken(make_client()), keep_dict)
    with caplog.at_level(logging.ERROR, logger="databuddy"):
        out = log.info("e", db_props={})
    assert out == {"event": "e", "db_props": {}}
    [record] = [r for r in caplog.records if r.name == "databuddy"]
    assert record.exc_info is not None and "DatabuddyProcessor failed" in record.getMessage()


def test_missing_structlog_gives_an_install_hint(
    make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without structlog the module still imports; building the processor names the extra."""
    client = make_client()
    monkeypatch.setitem(sys.modules, "structlog", None)
    try:
        module = importlib.reload(db_structlog)
        with pytest.raises(ImportError, match=r"pip install structlog"):
            module.DatabuddyProcessor(client)
    finally:
        monkeypatch.undo()
        importlib.reload(db_structlog)


# -- stdlib integration ----------------------------------------------------------


@pytest.fixture
def stdlib_logger(restore_logging: None) -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A stdlib logger rendering structlog and foreign records as JSON into a buffer."""
    stream = io.StringIO()
    text = logging.StreamHandler(stream)
    text.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.JSONRenderer(),
            ],
        )
    )
    logger = logging.getLogger("app.structlog")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    logger.addHandler(text)
    yield logger, stream


def stdlib_bound(logger: logging.Logger, *processors: Any) -> Any:
    """A structlog BoundLogger over ``logger`` ending in wrap_for_formatter."""
    return structlog.wrap_logger(
        logger,
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.add_log_level,
            *processors,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        wrapper_class=structlog.stdlib.BoundLogger,
    )


@pytest.mark.parametrize("strip", [False, True])
def test_processor_and_handler_together_send_once(
    server: DevServer,
    make_client: MakeClient,
    stdlib_logger: tuple[logging.Logger, io.StringIO],
    strip: bool,
) -> None:
    """Processor in the chain plus DatabuddyHandler on the stdlib side: one event, not two."""
    logger, stream = stdlib_logger
    client = make_client()
    logger.addHandler(DatabuddyHandler(client=client))
    log = stdlib_bound(logger, DatabuddyProcessor(client, strip=strip))
    log.info("checkout", db_props={"total": 9})
    client.flush()
    [event] = server.events()
    assert event["name"] == "checkout"
    assert event["properties"] == {"total": 9, "log_level": "info"}
    line = json.loads(stream.getvalue())
    assert line["event"] == "checkout"
    assert ("db_props" in line) is not strip


def test_handler_alone_tracks_structlog_events(
    server: DevServer, make_client: MakeClient, stdlib_logger: tuple[logging.Logger, io.StringIO]
) -> None:
    """Without the processor, DatabuddyHandler reads db_* keys from the structlog event dict."""
    logger, _ = stdlib_logger
    client = make_client()
    logger.addHandler(DatabuddyHandler(client=client))
    log = stdlib_bound(logger)
    structlog.contextvars.bind_contextvars(db_anonymous_id="anon_ctx")
    log.warning("quota_hit", db_props={"quota": 3})
    client.flush()
    [event] = server.events()
    assert event["name"] == "quota_hit"
    assert event["anonymousId"] == "anon_ctx"
    assert event["properties"] == {
        "quota": 3,
        "log_logger": "app.structlog",
        "log_level": "warning",
    }


@pytest.mark.parametrize("handler_first", [True, False])
def test_processor_in_formatter_and_handler_send_once(
    server: DevServer,
    make_client: MakeClient,
    restore_logging: None,
    handler_first: bool,
) -> None:
    """Processor inside ProcessorFormatter plus DatabuddyHandler: one event, in either order."""
    client = make_client()
    stream = io.StringIO()
    text = logging.StreamHandler(stream)
    text.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                DatabuddyProcessor(client),
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.JSONRenderer(),
            ],
        )
    )
    logger = logging.getLogger("app.formatter")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    handlers = [DatabuddyHandler(client=client), text]
    for handler in handlers if handler_first else reversed(handlers):
        logger.addHandler(handler)
    stdlib_bound(logger).info("formatted", db_props={})
    client.flush()
    assert [e["name"] for e in server.events()] == ["formatted"]
    assert json.loads(stream.getvalue())["event"] == "formatted"


def test_foreign_records_in_pre_chain_are_left_to_the_handler(
    server: DevServer, make_client: MakeClient, restore_logging: None
) -> None:
    """A stdlib record with extra= is sent once, by the handler, not again by the pre-chain."""
    client = make_client()
    stream = io.StringIO()
    text = logging.StreamHandler(stream)
    text.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.ExtraAdder(), DatabuddyProcessor(client)],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.JSONRenderer(default=str),
            ],
        )
    )
    logger = logging.getLogger("app.foreign")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    logger.addHandler(text)
    logger.addHandler(DatabuddyHandler(client=client))
    logger.info("stdlib_event", extra={"db_props": {"k": 1}})
    client.flush()
    assert [e["name"] for e in server.events()] == ["stdlib_event"]


def test_processor_rejects_a_non_client() -> None:
    """Passing something without track() fails at construction, naming the argument."""
    with pytest.raises(TypeError, match="client"):
        DatabuddyProcessor("not a client")  # type: ignore[arg-type]


def test_processor_uses_the_given_client(server: DevServer) -> None:
    """A processor works with a client the app built itself (not only the test fixture)."""
    with Databuddy(client_id="own", api_url=server.url) as client:
        native_logger(DatabuddyProcessor(client), keep_dict).info("own_client", db_event=True)
    assert [e["name"] for e in server.events()] == ["own_client"]

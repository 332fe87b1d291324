"""DatabuddyHandler on a DEBUG root logger: the SDK's own logging never loops back into it."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from databuddy_logging import DatabuddyHandler
from databuddy_otel._runtime.thread_roles import sending
from databuddy_otel._wire.transport import RequestsTransport
from databuddy_otel.devserver import DevServer
from databuddy_otel.models import HttpAnswer
from tests.conftest import MakeClient

SDK_LOGGERS = ("databuddy", "urllib3", "requests", "opentelemetry")


@pytest.fixture
def debug_root(restore_logging: None) -> Iterator[logging.Logger]:
    """Root at DEBUG, the SDK's loggers at DEBUG, and *every* record tagged as an event.

    Tagging through the record factory is the worst case: without the handler's
    guards every urllib3 and databuddy record would become an event.
    """
    root = logging.getLogger()
    root.setLevel(logging.DEBUG)
    for name in SDK_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG)
    make_record = logging.getLogRecordFactory()

    def tagged(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        record.db_event = True
        return record

    logging.setLogRecordFactory(tagged)
    yield root


class LoggingTransport(RequestsTransport):
    """The real transport, logging a tagged record from the exporting thread on every POST."""

    def post(self, url: str, body: bytes, headers: dict[str, str], timeout: float) -> HttpAnswer:
        logging.getLogger("app.transport").warning("posting", extra={"db_props": {}})
        return super().post(url, body, headers, timeout)


def test_debug_logging_of_the_http_stack_makes_no_events(
    server: DevServer, make_client: MakeClient, debug_root: logging.Logger
) -> None:
    """urllib3/requests/databuddy DEBUG records through the root handler never become events."""
    client = make_client(debug=True)
    debug_root.addHandler(DatabuddyHandler(client=client))
    logging.getLogger("app").info("signup", extra={"db_props": {"plan": "pro"}})
    logging.getLogger("app").info("bad", extra={"db_props": "not a dict"})  # a databuddy warning
    assert client.flush(timeout=5).success
    client.track(name="direct")  # urllib3 logs again on this export
    assert client.flush(timeout=5).success
    assert sorted(e["name"] for e in server.events()) == ["direct", "signup"]
    assert server.request_count == 2


def test_tagged_records_from_sdk_loggers_are_ignored(
    server: DevServer, make_client: MakeClient, debug_root: logging.Logger
) -> None:
    """Even explicitly tagged records from databuddy, urllib3, requests are not tracked."""
    client = make_client()
    debug_root.addHandler(DatabuddyHandler(client=client))
    for name in ("databuddy", "databuddy.worker", "urllib3.connectionpool", "requests"):
        logging.getLogger(name).info("sdk", extra={"db_props": {}})
    logging.getLogger("databuddy_app").info("lookalike", extra={"db_props": {}})
    client.flush()
    assert [e["name"] for e in server.events()] == ["lookalike"]


def test_records_logged_while_exporting_are_ignored(
    server: DevServer, make_client: MakeClient, debug_root: logging.Logger
) -> None:
    """A tagged record from any logger, on a thread that is exporting, is not tracked."""
    client = make_client(transport=LoggingTransport())
    debug_root.addHandler(DatabuddyHandler(client=client))
    logging.getLogger("app").info("first", extra={"db_props": {}})
    assert client.flush(timeout=5).success
    with sending():
        logging.getLogger("app").info("on_exporting_thread", extra={"db_props": {}})
    client.flush(timeout=5)  # a loop would have queued "posting" by now and sent it here
    assert [e["name"] for e in server.events()] == ["first"]


def test_records_logged_inside_emit_are_ignored(
    server: DevServer, make_client: MakeClient, debug_root: logging.Logger
) -> None:
    """A record the handler's own hook logs (same thread, inside emit) is not tracked."""

    class Chatty(DatabuddyHandler):
        def build_event(self, record: logging.LogRecord, tags: Any) -> dict[str, Any] | None:
            logging.getLogger("app.hook").info("nested", extra={"db_props": {}})
            return super().build_event(record, tags)

    client = make_client()
    debug_root.addHandler(Chatty(client=client))
    logging.getLogger("app").info("outer", extra={"db_props": {}})
    client.flush()
    assert [e["name"] for e in server.events()] == ["outer"]

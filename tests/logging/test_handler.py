"""DatabuddyHandler: tagged records arrive as events; everything else is left alone."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import databuddy_logging
from databuddy_logging import DatabuddyHandler, bind_ids
from databuddy_otel.devserver import DevServer
from tests.conftest import MakeClient


class RecordingHandler(DatabuddyHandler):
    """A handler that remembers every handleError call instead of printing it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.errors: list[logging.LogRecord] = []

    def handleError(self, record: logging.LogRecord) -> None:
        self.errors.append(record)


def test_tagged_record_arrives_with_every_field(
    server: DevServer, make_client: MakeClient, app_logger: logging.Logger
) -> None:
    """Each db_* key of extra fills its event field; db_props become the properties."""
    client = make_client()
    app_logger.addHandler(DatabuddyHandler(client=client, record_fields=None))
    app_logger.info(
        "user_signup",
        extra={
            "db_props": {"plan": "pro", "seats": 3},
            "db_anonymous_id": "anon_1",
            "db_session_id": "sess_1",
            "db_event_id": "evt_1",
            "db_timestamp": 1_700_000_000_000,
            "db_namespace": "billing",
            "db_source": "worker",
        },
    )
    client.flush()
    [event] = server.events()
    assert event["name"] == "user_signup"
    assert event["properties"] == {"plan": "pro", "seats": 3}
    assert (event["anonymousId"], event["sessionId"], event["eventId"]) == (
        "anon_1",
        "sess_1",
        "evt_1",
    )
    assert event["timestamp"] == 1_700_000_000_000
    assert (event["namespace"], event["source"]) == ("billing", "worker")


def test_record_fields_are_added_under_documented_keys(
    server: DevServer, make_client: MakeClient, app_logger: logging.Logger
) -> None:
    """By default the logger name and lower-case level are added; log_message only with args."""
    client = make_client()
    app_logger.addHandler(DatabuddyHandler(client=client))
    app_logger.warning("plain", extra={"db_props": {"a": 1}})
    client.flush()
    [event] = server.events()
    assert event["properties"] == {"a": 1, "log_logger": "app.test", "log_level": "warning"}


def test_percent_args_keep_the_template_as_name(
    server: DevServer, make_client: MakeClient, app_logger: logging.Logger
) -> None:
    """logger.info("signup %s", user) is the event 'signup %s'; the text goes to log_message."""
    client = make_client()
    app_logger.addHandler(DatabuddyHandler(client=client))
    for user in ("ann", "bob"):
        app_logger.info("signup %s", user, extra={"db_props": {}})
    client.flush()
    events = server.events()
    assert [e["name"] for e in events] == ["signup %s", "signup %s"]
    assert [e["properties"]["log_message"] for e in events] == ["signup ann", "signup bob"]


def test_record_fields_can_be_chosen_or_switched_off(
    server: DevServer, make_client: MakeClient, app_logger: logging.Logger
) -> None:
    """record_fields picks the added keys; None adds none."""
    client = make_client()
    level_only = DatabuddyHandler(client=client, record_fields=["level"])
    level_only.addFilter(lambda r: r.msg == "one")
    nothing = DatabuddyHandler(client=client, record_fields=None)
    nothing.addFilter(lambda r: r.msg == "two")
    app_logger.addHandler(level_only)
    app_logger.addHandler(nothing)
    app_logger.info("one", extra={"db_props": {"k": "v"}})
    app_logger.info("two", extra={"db_props": {"k": "v"}})
    client.flush()
    props = {e["name"]: e["properties"] for e in server.events()}
    assert props == {"one": {"k": "v", "log_level": "info"}, "two": {"k": "v"}}


def test_db_props_win_over_record_fields(
    server: DevServer, make_client: MakeClient, app_logger: logging.Logger
) -> None:
    """A db_props key that clashes with a record field keeps the caller's value."""
    client = make_client()
    app_logger.addHandler(DatabuddyHandler(client=client))
    app_logger.info("clash", extra={"db_props": {"log_level": "custom"}})
    client.flush()
    [event] = server.events()
    assert event["properties"]["log_level"] == "custom"


def test_db_event_true_tags_a_record_without_props(
    server: DevServer, make_client: MakeClient, app_logger: logging.Logger
) -> None:
    """extra={"db_event": True} is enough to make an event."""
    client = make_client()
    app_logger.addHandler(DatabuddyHandler(client=client))
    app_logger.info("heartbeat", extra={"db_event": True})
    client.flush()
    [event] = server.events()
    assert event["name"] == "heartbeat"
    assert event["properties"] == {"log_logger": "app.test", "log_level": "info"}


def test_untagged_records_never_reach_the_server(
    server: DevServer, make_client: MakeClient, app_logger: logging.Logger
) -> None:
    """Records without db_props or db_event=True send nothing at all."""
    client = make_client()
    app_logger.addHandler(DatabuddyHandler(client=client))
    app_logger.info("hello")
    app_logger.info("hello %s", "world", extra={"plan": "pro", "db_event": "yes"})
    app_logger.error("boom", exc_info=ValueError("x"))
    client.flush()
    assert server.request_count == 0
    assert client.stats().queued == 0


def test_untagged_record_is_never_formatted(make_client: MakeClient) -> None:
    """The tag check runs before any formatting: an untagged record's args are never str()-ed."""

    class Spy:
        calls = 0

        def __str__(self) -> str:
            Spy.calls += 1
            return "spy"

    handler = DatabuddyHandler(client=make_client())
    record = logging.makeLogRecord({"name": "app", "msg": "value %s", "args": (Spy(),)})
    assert handler.handle(record) is False
    handler.emit(record)
    assert Spy.calls == 0


def test_exc_info_adds_exception_type_and_message(
    server: DevServer, make_client: MakeClient, app_logger: logging.Logger
) -> None:
    """A record logged with exc_info carries exception_type and exception_message."""
    client = make_client()
    app_logger.addHandler(DatabuddyHandler(client=client))
    try:
        raise KeyError("missing plan")
    except KeyError:
        app_logger.exception("checkout_failed", extra={"db_props": {"cart": 3}})
    client.flush()
    [event] = server.events()
    assert event["name"] == "checkout_failed"
    assert event["properties"]["exception_type"] == "KeyError"
    assert event["properties"]["exception_message"] == "'missing plan'"
    assert event["properties"]["log_level"] == "error"


def test_timestamp_is_the_record_creation_time(
    server: DevServer, make_client: MakeClient, restore_logging: None
) -> None:
    """Without db_timestamp the event is stamped with record.created, not the send time."""
    client = make_client()
    handler = DatabuddyHandler(client=client)
    created = time.time() - 600
    record = logging.makeLogRecord(
        {"name": "app", "msg": "late", "created": created, "db_props": {}}
    )
    handler.handle(record)
    client.flush()
    [event] = server.events()
    assert event["timestamp"] == int(created * 1000)


def test_bound_ids_apply_to_handler_events(
    server: DevServer, make_client: MakeClient, app_logger: logging.Logger
) -> None:
    """Ids bound with databuddy_logging.bind_ids fill events that do not name their own."""
    client = make_client()
    app_logger.addHandler(DatabuddyHandler(client=client))
    with bind_ids(anonymous_id="anon_b", session_id="sess_b"):
        app_logger.info("bound", extra={"db_props": {}})
        app_logger.info("own", extra={"db_props": {}, "db_anonymous_id": "anon_own"})
    client.flush()
    ids = {e["name"]: (e["anonymousId"], e["sessionId"]) for e in server.events()}
    assert ids == {"bound": ("anon_b", "sess_b"), "own": ("anon_own", "sess_b")}


def test_unencodable_properties_are_converted_not_fatal(
    server: DevServer, make_client: MakeClient, app_logger: logging.Logger
) -> None:
    """Objects and sets in db_props arrive converted; logging goes on."""
    client = make_client()
    handler = RecordingHandler(client=client, record_fields=None)
    app_logger.addHandler(handler)

    class Plan:
        def __str__(self) -> str:
            return "Plan(pro)"

    app_logger.info("odd_props", extra={"db_props": {"plan": Plan(), "tags": {"a"}}})
    client.flush()
    [event] = server.events()
    assert event["properties"] == {"plan": "Plan(pro)", "tags": ["a"]}
    assert handler.errors == []


def test_garbage_props_are_reported_not_raised(
    server: DevServer,
    make_client: MakeClient,
    app_logger: logging.Logger,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """db_props that is not a mapping is reported on the databuddy logger; nothing raises."""
    client = make_client()
    handler = RecordingHandler(client=client)
    app_logger.addHandler(handler)
    with caplog.at_level(logging.WARNING, logger="databuddy"):
        app_logger.info("bad", extra={"db_props": "not a dict"})
    client.flush()
    assert server.events() == []
    assert handler.errors == []
    assert any(
        r.name == "databuddy"
        and "not tracked" in r.getMessage()
        and "properties must be a mapping" in r.getMessage()
        for r in caplog.records
    )


def test_shut_down_client_is_reported_not_raised(
    server: DevServer,
    make_client: MakeClient,
    app_logger: logging.Logger,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Logging a tagged record after the client shut down warns once and raises nothing."""
    client = make_client()
    handler = RecordingHandler(client=client)
    app_logger.addHandler(handler)
    client.shutdown()
    with caplog.at_level(logging.WARNING, logger="databuddy"):
        app_logger.info("late_event", extra={"db_props": {}})
    assert handler.errors == []
    [warning] = [r for r in caplog.records if r.name == "databuddy"]
    assert "tracked after shutdown" in warning.getMessage()


_garbage = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=20)
    | st.binary(max_size=10)
    | st.builds(object),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.frozensets(st.integers(), max_size=3)
        | st.dictionaries(st.text(max_size=5) | st.integers(), inner, max_size=3)
    ),
    max_leaves=8,
)
_extras = st.dictionaries(
    st.sampled_from(
        [
            "db_props",
            "db_event",
            "db_anonymous_id",
            "db_session_id",
            "db_event_id",
            "db_timestamp",
            "db_namespace",
            "db_source",
        ]
    ),
    _garbage,
)


def test_handler_never_raises_on_any_extra(
    make_client: MakeClient, app_logger: logging.Logger
) -> None:
    """Whatever the db_* values are, logging returns normally and handleError is never called."""
    handler = RecordingHandler(client=make_client(disabled=True))
    app_logger.addHandler(handler)
    logging.getLogger("databuddy").disabled = True  # the rejections' warnings are noise here

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(msg=_garbage, extra=_extras)
    def check(msg: Any, extra: dict[str, Any]) -> None:
        app_logger.info(msg, extra=extra)

    check()
    assert handler.errors == []


def test_record_seen_twice_is_sent_once(
    server: DevServer, make_client: MakeClient, restore_logging: None
) -> None:
    """A record that propagates to a second logger carrying the same handler is tracked once."""
    client = make_client()
    handler = DatabuddyHandler(client=client)
    parent, child = logging.getLogger("twice"), logging.getLogger("twice.child")
    parent.setLevel(logging.INFO)
    parent.propagate = False
    parent.addHandler(handler)
    child.addHandler(handler)
    child.info("once", extra={"db_props": {}})
    client.flush()
    assert [e["name"] for e in server.events()] == ["once"]


def test_level_option_filters_records(
    server: DevServer, make_client: MakeClient, app_logger: logging.Logger
) -> None:
    """level= works like any handler's: records below it are not tracked."""
    client = make_client()
    app_logger.addHandler(DatabuddyHandler(client=client, level="WARNING"))
    app_logger.info("quiet", extra={"db_props": {}})
    app_logger.warning("loud", extra={"db_props": {}})
    client.flush()
    assert [e["name"] for e in server.events()] == ["loud"]


def test_many_threads_lose_and_duplicate_nothing(
    server: DevServer, make_client: MakeClient, app_logger: logging.Logger
) -> None:
    """8 threads x 200 tagged records: every one arrives exactly once."""
    client = make_client(batch_size=100, max_queue_size=2000)
    app_logger.addHandler(DatabuddyHandler(client=client))

    def work(thread: int) -> None:
        for i in range(200):
            app_logger.info("tick", extra={"db_props": {"thread": thread, "i": i}})

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert client.flush(timeout=20).success
    events = server.events()
    assert len({e["eventId"] for e in events}) == len(events) == 1600
    seen = {(e["properties"]["thread"], e["properties"]["i"]) for e in events}
    assert seen == {(t, i) for t in range(8) for i in range(200)}


def test_handle_does_not_take_the_handler_lock(
    server: DevServer, make_client: MakeClient, app_logger: logging.Logger
) -> None:
    """A tagged record is tracked even while another thread holds the handler lock."""
    client = make_client()
    handler = DatabuddyHandler(client=client)
    app_logger.addHandler(handler)
    handler.acquire()
    try:
        done = threading.Event()

        def log() -> None:
            app_logger.info("unlocked", extra={"db_props": {}})
            done.set()

        threading.Thread(target=log).start()
        assert done.wait(5)
    finally:
        handler.release()
    client.flush()
    assert [e["name"] for e in server.events()] == ["unlocked"]


@pytest.mark.slow
def test_flush_returns_without_waiting_for_the_network(
    server: DevServer, make_client: MakeClient, app_logger: logging.Logger
) -> None:
    """handler.flush() starts delivery in the background and returns at once."""
    client = make_client(batch_timeout=60_000)
    handler = DatabuddyHandler(client=client)
    app_logger.addHandler(handler)
    app_logger.info("slow", extra={"db_props": {}})
    server.delay_next(1, seconds=1.5)
    started = time.monotonic()
    handler.flush()
    assert time.monotonic() - started < 1.0
    assert [e["name"] for e in server.wait_for_events(1)] == ["slow"]


def test_close_shuts_down_a_client_it_built(server: DevServer, restore_logging: None) -> None:
    """A handler built from client options flushes and shuts its client down in close()."""
    handler = DatabuddyHandler(client_id="test-site", api_url=server.url, batch_timeout=60_000)
    handler.handle(logging.makeLogRecord({"name": "app", "msg": "owned", "db_props": {}}))
    handler.close()
    assert [e["name"] for e in server.events()] == ["owned"]
    assert handler.client.track(name="after").error == "client is shut down"


def test_close_leaves_a_passed_in_client_running(
    server: DevServer, make_client: MakeClient, restore_logging: None
) -> None:
    """close() flushes a client it was given but does not shut it down."""
    client = make_client(batch_timeout=60_000)
    handler = DatabuddyHandler(client=client)
    handler.handle(logging.makeLogRecord({"name": "app", "msg": "given", "db_props": {}}))
    handler.close()
    assert [e["name"] for e in server.events()] == ["given"]
    assert client.track(name="after").success


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"client_id": "x", "bogus": 1}, TypeError, "bogus"),
        ({"client": "myapp.client"}, TypeError, "ext://"),
        ({"record_fields": ["level", "colour"]}, ValueError, "colour"),
        ({"record_fields": "level"}, TypeError, "record_fields"),
        ({"close_timeout": "soon", "client_id": "x"}, TypeError, "close_timeout"),
    ],
)
def test_bad_construction_fails_early_with_the_argument_named(
    kwargs: dict[str, Any], error: type[Exception], words: str
) -> None:
    """Mistakes raise at construction, naming the argument at fault."""
    with pytest.raises(error, match=words):
        DatabuddyHandler(**kwargs)


def test_client_and_client_options_together_are_refused(make_client: MakeClient) -> None:
    """Passing a client and client options at once is a TypeError naming both forms."""
    with pytest.raises(TypeError, match="not both"):
        DatabuddyHandler(client=make_client(), batch_size=5)


def test_public_names_are_sorted_and_exported() -> None:
    """databuddy_logging.__all__ is sorted and every name in it exists."""
    assert databuddy_logging.__all__ == sorted(databuddy_logging.__all__)
    assert all(hasattr(databuddy_logging, name) for name in databuddy_logging.__all__)


def test_importing_the_package_does_not_import_structlog() -> None:
    """structlog stays optional: `import databuddy_logging` leaves it unimported."""
    code = "import sys, databuddy_logging; sys.exit('structlog' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0

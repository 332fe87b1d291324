"""Conformance with the Node SDK reference, and the paths where an event used to vanish."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
import warnings
from typing import Any

import pytest

from databuddy_otel import Databuddy, Undelivered
from databuddy_otel.devserver import DevServer
from tests.conftest import MakeClient


# -- middleware -------------------------------------------------------------------------
async def _async_scrub(event: dict[str, Any]) -> dict[str, Any]:
    return event


class _AsyncCallable:
    async def __call__(self, event: dict[str, Any]) -> dict[str, Any]:
        return event


@pytest.mark.parametrize("middleware", [_async_scrub, _AsyncCallable()])
def test_async_middleware_is_refused_with_what_to_do(
    make_client: MakeClient, middleware: Any
) -> None:
    """An async middleware is a TypeError, given at construction or added later."""
    with pytest.raises(TypeError, match="async"):
        make_client(middleware=[middleware])
    client = make_client()
    with pytest.raises(TypeError, match="plain function"):
        client.add_middleware(middleware)


def test_a_middleware_returning_a_coroutine_never_sends_the_event(
    server: DevServer, make_client: MakeClient
) -> None:
    """A middleware that returns an awaitable drops the event: it was never scrubbed."""
    lost: list[Undelivered] = []

    def sneaky(event: dict[str, Any]) -> Any:
        return _async_scrub(event)

    client = make_client(middleware=[sneaky], on_undelivered=lost.extend)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "coroutine was never awaited" would be a defect
        response = client.track(name="signup", properties={"email": "secret@example.com"})
    assert not response.success and "coroutine" in (response.error or "")
    client.flush()
    assert server.events() == []
    assert client.stats().undelivered == {"middleware_error": 1}
    assert [u.reason for u in lost] == ["middleware_error"]


def test_a_middleware_returning_a_new_dict_keeps_the_fields_it_leaves_out(
    server: DevServer, make_client: MakeClient
) -> None:
    """Fields absent from the middleware's result keep the event's own values."""
    client = make_client(middleware=[lambda e: {"name": e["name"], "properties": {"plan": "pro"}}])
    response = client.track(
        name="signup", properties={"email": "x"}, anonymous_id="anon_1", timestamp=1_700_000_000_000
    )
    assert response.success
    client.flush()
    [event] = server.events()
    assert event["properties"] == {"plan": "pro"}
    assert (event["anonymousId"], event["timestamp"]) == ("anon_1", 1_700_000_000_000)
    assert event["eventId"] == response.event_id


# -- ids and deduplication ---------------------------------------------------------------
def test_disabled_client_leaks_no_deduplication_entries(make_client: MakeClient) -> None:
    """disabled=True never claims ids: a repeated id is accepted, the cache stays empty."""
    client = make_client(disabled=True)
    assert client.track(name="e", event_id="same").success
    assert client.track(name="e", event_id="same").success
    assert client.get_deduplication_cache_size() == 0
    assert client.stats().deduplicated == 0


def test_deduplication_cache_size_and_clear(server: DevServer, make_client: MakeClient) -> None:
    """get_deduplication_cache_size() counts remembered ids; clear makes a repeat go out."""
    client = make_client()
    client.track(name="e", event_id="a")
    client.track(name="e", event_id="b")
    client.flush()
    assert client.get_deduplication_cache_size() == 2
    client.track(name="e", event_id="a")
    client.clear_deduplication_cache()
    assert client.get_deduplication_cache_size() == 0
    client.track(name="e", event_id="a")
    client.flush()
    assert [e["eventId"] for e in server.events()] == ["a", "b", "a"]


def test_random_seed_does_not_repeat_event_ids() -> None:
    """An application's random.seed() leaves the SDK's event ids alone."""
    import random

    from databuddy_otel.ids import uuid4_text

    random.seed(42)
    first = uuid4_text()
    random.seed(42)
    assert uuid4_text() != first


def test_forked_children_draw_different_event_ids() -> None:
    """Two children forked from one parent never share an id sequence."""
    import os

    from databuddy_otel.ids import uuid4_text

    ids = []
    for _ in range(2):
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.write(write, uuid4_text().encode())
            os._exit(0)
        os.close(write)
        ids.append(os.read(read, 100).decode())
        os.close(read)
        os.waitpid(pid, 0)
    assert ids[0] != ids[1] and len(ids[0]) == 36


# -- the mapping and keyword forms --------------------------------------------------------
def test_mapping_accepts_python_and_wire_spellings(
    server: DevServer, make_client: MakeClient
) -> None:
    """anonymous_id, session_id and event_id work in a mapping, as do the camelCase keys."""
    client = make_client()
    assert client.track({"name": "a", "anonymous_id": "anon_1", "session_id": "sess_1"}).success
    assert client.track({"name": "b", "anonymousId": "anon_2", "event_id": "evt-b"}).success
    client.flush()
    events = {e["name"]: e for e in server.events()}
    assert (events["a"]["anonymousId"], events["a"]["sessionId"]) == ("anon_1", "sess_1")
    assert (events["b"]["anonymousId"], events["b"]["eventId"]) == ("anon_2", "evt-b")


@pytest.mark.parametrize(
    ("args", "kwargs", "needle"),
    [
        (({"name": "c", "anonymus_id": "x"},), {}, "unknown event field 'anonymus_id'"),
        ((), {"name": "c", "anonymousId": "x"}, "did you mean anonymous_id=?"),
        (({"name": "c"},), {"session_id": "s"}, "not both"),
        ((), {"name": "c", "props": {"a": 1}}, "did you mean properties=?"),
        ((), {"nme": "c"}, "did you mean name=?"),
        (("c", {"a": 1}), {"properties": {"a": 2}}, "given twice"),
        (("c",), {"name": "d"}, "given twice"),
        ((None, {"a": 1}), {"name": "c"}, "need the event's name"),
    ],
)
def test_every_refused_call_is_logged_and_counted(
    make_client: MakeClient,
    caplog: pytest.LogCaptureFixture,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    needle: str,
) -> None:
    """Unknown keys, camelCase keywords and mixed forms: refused, logged once, counted."""
    lost: list[Undelivered] = []
    client = make_client(on_undelivered=lost.extend)
    with caplog.at_level(logging.WARNING, logger="databuddy"):
        response = client.track(*args, **kwargs)
    assert not response.success and needle in (response.error or "")
    assert [r for r in caplog.records if needle in r.getMessage()]
    assert client.stats().undelivered == {"invalid": 1}
    assert [u.reason for u in lost] == ["invalid"]


@pytest.mark.parametrize(
    "stamp",
    [
        dt.datetime(2026, 1, 31, 12, 0, tzinfo=dt.timezone.utc),
        "2026-01-31T12:00:00Z",
        "2026-01-31T13:00:00+01:00",
    ],
)
def test_timestamps_as_datetime_or_iso_text_become_milliseconds(
    server: DevServer, make_client: MakeClient, stamp: Any
) -> None:
    """A datetime or an ISO 8601 string is sent as integer milliseconds."""
    client = make_client()
    assert client.track(name="stamped", timestamp=stamp).success
    client.flush()
    assert server.events()[0]["timestamp"] == 1_769_860_800_000


@pytest.mark.parametrize("stamp", [0, None])
def test_zero_or_none_timestamp_means_now(
    server: DevServer, make_client: MakeClient, stamp: Any
) -> None:
    """timestamp=0 or None is the time of the call, as in the reference."""
    client = make_client()
    before = int(time.time() * 1000)
    assert client.track(name="now", timestamp=stamp).success
    client.flush()
    assert before <= server.events()[0]["timestamp"] <= int(time.time() * 1000)


# -- 2.6 fields, ids and limits per protocol -------------------------------------------------
def test_profile_id_and_anonymize_visitor_ids_go_on_track(
    server: DevServer, make_client: MakeClient
) -> None:
    """profileId and anonymizeVisitorIds reach /track."""
    client = make_client()
    client.track(name="a", profile_id="prof_1", anonymize_visitor_ids="auto")
    client.track({"name": "b", "profileId": "prof_2", "anonymizeVisitorIds": False})
    client.flush()
    got = {e["name"]: (e["profileId"], e["anonymizeVisitorIds"]) for e in server.events()}
    assert got == {"a": ("prof_1", "auto"), "b": ("prof_2", False)}


def test_the_legacy_protocol_never_sends_the_2_6_fields(
    server: DevServer, make_client: MakeClient
) -> None:
    """The legacy generation has no profileId: the event goes without it."""
    from databuddy_otel._event.event import serialize
    from databuddy_otel._wire.protocol import PROTOCOLS

    wire = serialize(
        {
            "name": "old",
            "eventId": "1",
            "timestamp": 1_700_000_000_000,
            "profileId": "p",
            "anonymizeVisitorIds": True,
        },
        protocol=PROTOCOLS["legacy"],
    )
    assert "profileId" not in wire and "anonymizeVisitorIds" not in wire
    client = make_client(protocol="legacy")
    assert client.track(name="old", profile_id="prof_1", anonymize_visitor_ids=True).success
    client.flush()
    [event] = server.events()
    assert (event["profileId"], event["anonymizeVisitorIds"]) == (None, None)


def test_anonymize_visitor_ids_takes_true_false_or_auto(make_client: MakeClient) -> None:
    """Any other value is refused with the accepted ones named."""
    response = make_client().track(name="a", anonymize_visitor_ids="yes")
    assert not response.success and "True, False or 'auto'" in (response.error or "")


def test_event_id_limit_applies_to_the_legacy_protocol_only(make_client: MakeClient) -> None:
    """The 512-character eventId limit is the legacy schema's; /track strips the field."""
    long_id = "e" * 600
    assert make_client().track(name="t", event_id=long_id).success
    legacy = make_client(protocol="legacy").track(name="l", event_id=long_id)
    assert not legacy.success and "eventId too long" in (legacy.error or "")


def test_a_session_id_the_server_drops_is_warned_about_once_and_counted(
    server: DevServer, make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    """A session id with characters the server refuses: sent, one warning, counted."""
    client = make_client()
    with caplog.at_level(logging.WARNING, logger="databuddy"):
        for _ in range(3):
            assert client.track(name="s", session_id="sess 1/2").success
    assert len([r for r in caplog.records if "stored as absent" in r.getMessage()]) == 1
    assert client.stats().invalid_session_ids == 3
    client.flush()
    assert [e["sessionId"] for e in server.events()] == [None, None, None]


# -- retries -----------------------------------------------------------------------------------
@pytest.mark.slow
def test_retry_after_past_the_deadline_waits_what_the_deadline_allows(
    server: DevServer, make_client: MakeClient
) -> None:
    """A Retry-After longer than the deadline: one more try near the deadline, not none."""
    client = make_client(enable_batching=False, retry_deadline=1.0, timeout=0.3)
    server.fail_next(1, status=429, retry_after=60)
    start = time.monotonic()
    assert client.track(name="patient").success
    assert 0.4 <= time.monotonic() - start < 1.5
    server.fail_next(2, status=429, retry_after=60)
    response = client.track(name="refused_twice")
    assert not response.success
    assert "the server asked to retry after 60s" in (response.error or "")


# -- logging --------------------------------------------------------------------------------------
class _Collecting:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def debug(self, message: str) -> None:
        self.lines.append(("debug", message))

    def info(self, message: str) -> None:
        self.lines.append(("info", message))

    def warning(self, message: str) -> None:
        self.lines.append(("warning", message))

    def error(self, message: str) -> None:
        self.lines.append(("error", message))


def test_any_logger_object_receives_formatted_messages(
    server: DevServer, make_client: MakeClient
) -> None:
    """logger= takes an object with debug/info/warning/error, as the Node SDK does."""
    mine = _Collecting()
    client = make_client(logger=mine, debug=True, enable_batching=False)
    client.track(name="")
    client.track(name="fine")
    assert (
        "warning",
        "Databuddy event not tracked: Event name is required and must be a string",
    ) in mine.lines
    assert any(level == "debug" and "delivered 1 event" in text for level, text in mine.lines)


def test_a_logger_adapter_is_accepted(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    """logging.LoggerAdapter works as logger=."""
    adapter = logging.LoggerAdapter(logging.getLogger("myapp"), {"tenant": "t1"})
    client = make_client(logger=adapter)
    with caplog.at_level(logging.WARNING, logger="myapp"):
        client.track(name="")
    assert [r.name for r in caplog.records] == ["myapp"]


def test_an_object_that_cannot_log_is_refused(make_client: MakeClient) -> None:
    """A logger without the methods the SDK calls is a TypeError naming them."""
    with pytest.raises(TypeError, match="debug, info, warning, error"):
        make_client(logger=object())


def test_debug_logs_each_successful_send(
    server: DevServer, make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    """debug=True shows the sends that worked, not only the failures."""
    client = make_client(debug=True)
    with caplog.at_level(logging.DEBUG, logger="databuddy"):
        client.track(name="seen")
        client.flush()
    assert any("delivered 1 event(s)" in r.getMessage() for r in caplog.records)


# -- answers and their messages -------------------------------------------------------------------
def test_processed_counts_only_accepted_events(server: DevServer, make_client: MakeClient) -> None:
    """batch().processed counts what the server accepted; success means all of them."""
    client = make_client()
    result = client.batch([{"name": "ok"}, {"name": "bad", "properties": [1]}, {"name": "ok2"}])
    assert (result.success, result.processed, len(result.results)) == (False, 2, 3)


def test_processed_never_counts_events_that_were_not_sent(
    server: DevServer, make_client: MakeClient
) -> None:
    """A duplicate skipped, an event a middleware dropped, a disabled client: not processed."""
    client = make_client(middleware=[lambda e: None if e["name"] == "dropped" else e])
    result = client.batch(
        [{"name": "a", "eventId": "same"}, {"name": "b", "eventId": "same"}, {"name": "dropped"}]
    )
    assert (result.success, result.processed) == (True, 1)
    assert len(server.events()) == 1
    disabled = make_client(disabled=True).batch([{"name": "nowhere"}])
    assert (disabled.success, disabled.processed) == (True, 0)


def test_an_unknown_api_key_names_the_likely_cause(server: DevServer) -> None:
    """A 403 says to check the API key and its scope."""
    with DevServer(api_keys=["dbdy_right"]) as keyed:
        client = Databuddy(api_key="dbdy_wrong", api_url=keyed.url, enable_batching=False)
        response = client.track(name="e")
        client.shutdown()
    assert not response.success
    assert "check api_key" in (response.error or "") and "track:events" in (response.error or "")


def test_an_api_url_with_a_path_names_the_likely_cause(server: DevServer) -> None:
    """api_url ending in /track is a 404 whose message says to drop the path."""
    client = Databuddy(client_id="x", api_url=server.url + "/track", enable_batching=False)
    response = client.track(name="e")
    client.shutdown()
    assert not response.success
    assert "without a path" in (response.error or "") and "'/track'" in (response.error or "")


def test_abatch_and_aflush_exist_for_async_code(server: DevServer, make_client: MakeClient) -> None:
    """The async spellings return the same answers."""
    client = make_client()

    async def main() -> tuple[bool, bool]:
        sent = await client.abatch([{"name": "x"}])
        client.track(name="y")
        flushed = await client.aflush()
        return sent.success, flushed.success

    assert asyncio.run(main()) == (True, True)

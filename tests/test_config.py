"""Construction: arguments, environment fallbacks and clear errors."""

from __future__ import annotations

import logging

import pytest

from databuddy_otel import Databuddy
from databuddy_otel.devserver import DevServer
from databuddy_otel.span_exporter import DatabuddySpanExporter


def test_missing_credentials_disable_the_client_with_one_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """No credentials anywhere: a disabled client, one WARNING naming what to set."""
    monkeypatch.delenv("DATABUDDY_CLIENT_ID", raising=False)
    monkeypatch.delenv("DATABUDDY_API_KEY", raising=False)
    monkeypatch.setattr("databuddy_otel._runtime.config._warned_no_credentials", False)
    with caplog.at_level(logging.WARNING, logger="databuddy"):
        first, second = Databuddy(), Databuddy()
    assert first.settings.disabled and second.settings.disabled
    assert first.track(name="nowhere").success
    [warning] = [r for r in caplog.records if r.name == "databuddy"]
    for word in ("client_id", "api_key", "DATABUDDY_CLIENT_ID", "DATABUDDY_API_KEY"):
        assert word in warning.getMessage()
    first.shutdown()
    second.shutdown()


@pytest.mark.parametrize("blank", ["", "   "])
@pytest.mark.parametrize("argument", ["client_id", "api_key"])
def test_blank_credentials_are_a_value_error(argument: str, blank: str) -> None:
    """A credential that is given but blank is refused, naming the argument."""
    with pytest.raises(ValueError, match=f"{argument} is blank"):
        Databuddy(**{argument: blank})


def test_credentials_are_trimmed(server: DevServer) -> None:
    """Whitespace around client_id (as pasted from a dashboard) is removed."""
    client = Databuddy(client_id="  site-1\n", api_url=server.url, enable_batching=False)
    assert client.settings.client_id == "site-1"
    assert client.track(name="trimmed").success
    client.shutdown()
    assert server.events()[0]["websiteId"] == "site-1"


@pytest.mark.parametrize("variable", ["DATABUDDY_DISABLED", "DATABUDDY_DEBUG"])
def test_unrecognised_boolean_variable_is_an_error(
    monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    """DATABUDDY_DISABLED=maybe is a ValueError naming the variable, not a silent 'off'."""
    monkeypatch.setenv(variable, "maybe")
    with pytest.raises(ValueError, match=variable):
        Databuddy(client_id="x")


def test_batch_timeout_in_seconds_gets_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    """batch_timeout under 10 warns that the unit is milliseconds."""
    with caplog.at_level(logging.WARNING, logger="databuddy"):
        Databuddy(client_id="x", batch_timeout=2.0, disabled=True).shutdown()
    assert "milliseconds" in caplog.text and "2000" in caplog.text


def test_environment_fallbacks(monkeypatch: pytest.MonkeyPatch, server: DevServer) -> None:
    """DATABUDDY_CLIENT_ID, DATABUDDY_API_URL and DATABUDDY_DEBUG configure the client."""
    monkeypatch.setenv("DATABUDDY_CLIENT_ID", "env-site")
    monkeypatch.setenv("DATABUDDY_API_URL", server.url)
    monkeypatch.setenv("DATABUDDY_DEBUG", "true")
    client = Databuddy(enable_batching=False)
    try:
        assert client.settings.debug
        assert client.track(name="from_env").success
    finally:
        client.shutdown()
    assert server.events()[0]["websiteId"] == "env-site"


def test_api_key_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """DATABUDDY_API_KEY is used when api_key is not passed."""
    monkeypatch.setenv("DATABUDDY_API_KEY", "dbdy_env")
    with DevServer(api_keys=["dbdy_env"]) as server:
        client = Databuddy(api_url=server.url, enable_batching=False)
        assert client.track(name="keyed").success
        client.shutdown()
        assert len(server.events()) == 1


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"protocol": "http2"}, "protocol"),
        ({"api_url": "basket.databuddy.cc"}, "api_url"),
        ({"batch_size": 0}, "batch_size"),
        ({"max_queue_size": -1}, "max_queue_size"),
        ({"batch_timeout": 0}, "batch_timeout"),
        ({"timeout": -1}, "timeout"),
        ({"retry_deadline": "30"}, "retry_deadline"),
        ({"on_queue_full": "explode"}, "on_queue_full"),
    ],
)
def test_bad_settings_are_refused_at_construction(kwargs: dict[str, object], needle: str) -> None:
    """Each invalid setting raises ValueError naming the argument."""
    with pytest.raises(ValueError, match=needle):
        Databuddy(client_id="x", **kwargs)  # type: ignore[arg-type]


def test_legacy_protocol_needs_client_id(monkeypatch: pytest.MonkeyPatch) -> None:
    """protocol='legacy' with only an API key is refused with the reason."""
    monkeypatch.delenv("DATABUDDY_CLIENT_ID", raising=False)
    with pytest.raises(ValueError, match="client_id"):
        Databuddy(api_key="k", protocol="legacy")


def test_disabled_client_sends_nothing(server: DevServer) -> None:
    """disabled=True validates and answers but never sends."""
    client = Databuddy(client_id="x", api_url=server.url, disabled=True)
    assert client.track(name="e").success
    assert not client.track(name="").success
    assert client.batch([{"name": "b"}]).success
    client.flush()
    client.shutdown()
    assert server.request_count == 0


def test_shutdown_is_idempotent_and_refuses_later_events(server: DevServer) -> None:
    """shutdown() flushes once; later calls are no-ops and track() reports the closed client."""
    with Databuddy(client_id="x", api_url=server.url) as client:
        client.track(name="before")
    assert client.shutdown().success
    after = client.track(name="after")
    assert not after.success and after.error == "client is shut down"
    assert [e["name"] for e in server.events()] == ["before"]


def test_repr_hides_the_api_key() -> None:
    """The client's repr never shows the API key."""
    client = Databuddy(api_key="dbdy_topsecret", disabled=True)
    assert "dbdy_topsecret" not in repr(client)
    client.shutdown()


def test_custom_logger_receives_the_sdk_messages(
    server: DevServer, caplog: pytest.LogCaptureFixture
) -> None:
    """logger= gets the client's and the delivery's messages instead of 'databuddy'."""
    import logging

    mine = logging.getLogger("myapp.analytics")
    caplog.set_level(logging.DEBUG, logger="myapp.analytics")
    client = Databuddy(
        client_id="x", api_url=server.url, logger=mine, enable_batching=False, retry_deadline=2
    )
    server.fail_next(1, status=400)
    client.track(name="refused")
    client.track(name="")
    client.shutdown()
    names = {r.name for r in caplog.records}
    assert "myapp.analytics" in names and "databuddy" not in names
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "refused 1 event" in messages and "not tracked" in messages


def test_disabled_from_the_environment(monkeypatch: pytest.MonkeyPatch, server: DevServer) -> None:
    """DATABUDDY_DISABLED=1 turns sending off without credentials."""
    monkeypatch.delenv("DATABUDDY_CLIENT_ID", raising=False)
    monkeypatch.delenv("DATABUDDY_API_KEY", raising=False)
    monkeypatch.setenv("DATABUDDY_DISABLED", "1")
    client = Databuddy(api_url=server.url)
    assert client.track(name="nowhere").success
    client.shutdown()
    assert server.request_count == 0


def test_shutdown_timeout_bounds_the_exit_flush(server: DevServer) -> None:
    """shutdown() waits at most shutdown_timeout (plus one request timeout) for a slow server."""
    import time

    client = Databuddy(
        client_id="x", api_url=server.url, shutdown_timeout=0.3, timeout=0.2, retry_deadline=30
    )
    server.set_outage(503)
    client.track(name="stuck")
    start = time.monotonic()
    result = client.shutdown()
    assert time.monotonic() - start < 0.3 + 0.2 + 0.5 + 0.5
    assert not result.success
    assert client.stats().undelivered.get("shutdown") == 1


def test_a_shut_down_client_can_be_garbage_collected(server: DevServer) -> None:
    """Nothing global (exit or fork hooks) keeps a finished client and its queue alive."""
    import gc
    import weakref

    client = Databuddy(client_id="x", api_url=server.url)
    client.track(name="short_lived")
    client.shutdown()
    refs = [weakref.ref(client), weakref.ref(client._ledger), weakref.ref(client._queue)]
    del client
    gc.collect()
    assert [r() for r in refs] == [None, None, None]


def test_timeout_and_retry_deadline_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """DATABUDDY_TIMEOUT and DATABUDDY_RETRY_DEADLINE fill in what the arguments leave out."""
    monkeypatch.setenv("DATABUDDY_TIMEOUT", "2.5")
    monkeypatch.setenv("DATABUDDY_RETRY_DEADLINE", "7")
    with Databuddy(client_id="x", api_url="http://127.0.0.1:1") as client:
        assert (client.settings.timeout, client.settings.retry_deadline) == (2.5, 7.0)
    with Databuddy(client_id="x", api_url="http://127.0.0.1:1", timeout=1, retry_deadline=3) as c:
        assert (c.settings.timeout, c.settings.retry_deadline) == (1.0, 3.0)
    exporter = DatabuddySpanExporter(client_id="x", api_url="http://127.0.0.1:1")
    assert exporter._outlet.bound == 2.5  # type: ignore[union-attr]
    exporter.shutdown()


@pytest.mark.parametrize("value", ["soon", "0", "-1", "nan", "inf"])
def test_a_bad_seconds_variable_is_an_error_naming_it(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    """A timeout variable that is not a positive number of seconds raises, naming the variable."""
    monkeypatch.setenv("DATABUDDY_RETRY_DEADLINE", value)
    with pytest.raises(ValueError, match="DATABUDDY_RETRY_DEADLINE"):
        Databuddy(client_id="x")


def test_typed_options_are_the_settings_fields() -> None:
    """The keyword types of the client and the exporters name exactly the settings' fields."""
    from databuddy_otel._runtime import config

    assert set(config.ClientOptions.__annotations__) == set(config.FIELDS)
    assert set(config.ConnectionOptions.__annotations__) < set(config.FIELDS)
    defaults = Databuddy(client_id="x", disabled=True).settings
    for name in ("batch_size", "max_queue_size", "timeout", "retry_deadline", "spool_fsync"):
        assert getattr(defaults, name) == getattr(config.DEFAULTS, name), name


@pytest.mark.parametrize(
    ("kwargs", "hint"),
    [
        ({"clientId": "x"}, "clientId (did you mean client_id?)"),
        ({"apiUrl": "http://x"}, "apiUrl (did you mean api_url?)"),
        ({"batch_sise": 5}, "batch_sise (did you mean batch_size?)"),
    ],
)
def test_unknown_options_name_the_closest(kwargs: dict[str, object], hint: str) -> None:
    """A camelCase or misspelt option is a TypeError that names the option meant."""
    with pytest.raises(TypeError) as caught:
        Databuddy(**kwargs)  # type: ignore[arg-type]
    assert hint in str(caught.value)
    with pytest.raises(TypeError, match=f"{next(iter(kwargs))}.*client_id"):
        DatabuddySpanExporter(**kwargs)  # type: ignore[arg-type]


def test_none_means_the_default_or_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """An option passed as None is left out: the variable fills it, else the default."""
    monkeypatch.setenv("DATABUDDY_TIMEOUT", "4")
    client = Databuddy(client_id="x", disabled=True, timeout=None, batch_size=None)
    assert client.settings.timeout == 4.0
    assert client.settings.batch_size == 10

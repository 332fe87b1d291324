"""init(integrations=...): what the SDK wires in by itself, listed, each switchable.

Every case runs in a fresh interpreter: the switches are process-wide.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import textwrap
import uuid

import pytest

import databuddy_otel
from databuddy_otel.devserver import DevServer


def _run(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONWARNINGS": "ignore::DeprecationWarning"},
    )


def test_each_integration_is_listed_with_its_default() -> None:
    assert databuddy_otel.integrations() == {
        "sigterm": True,
        "multiprocessing": True,
        "fork": True,
        "rq": True,
        "celery": True,
        "logging": False,
    }


@pytest.mark.parametrize(
    ("switches", "error", "words"),
    [
        ({"loging": True}, ValueError, ["'loging'", "did you mean 'logging'"]),
        ({"sigterm": "off"}, TypeError, ["'sigterm'", "True or False"]),
    ],
)
def test_a_bad_switch_is_a_clear_error_and_changes_nothing(
    switches: dict[str, object], error: type[Exception], words: list[str]
) -> None:
    before, client = databuddy_otel.integrations(), databuddy_otel.default.current()
    with pytest.raises(error) as raised:
        databuddy_otel.init(client_id="x", integrations=switches)  # type: ignore[arg-type]
    assert all(word in str(raised.value) for word in words), raised.value
    assert databuddy_otel.integrations() == before
    assert databuddy_otel.default.current() is client


def test_logging_integration_tracks_tagged_records_of_every_logger(server: DevServer) -> None:
    """No handler to add: a tagged record of any logger arrives once (even with a
    DatabuddyHandler also attached), untagged ones send nothing, and basicConfig()
    called afterwards still configures the root logger."""
    done = _run(
        """
        import logging, sys
        import databuddy_otel
        from databuddy_logging import DatabuddyHandler
        databuddy_otel.init(client_id="logs", api_url=sys.argv[1],
                            integrations={"logging": True})
        logging.basicConfig(level="INFO", format="line: %(message)s")
        log = logging.getLogger("app.signup")
        log.addHandler(DatabuddyHandler())
        log.info("user_signup", extra={"db_props": {"plan": "pro"}})
        log.warning("disk almost full")
        """,
        server.url,
    )
    assert done.returncode == 0, done.stderr
    assert "line: disk almost full" in done.stderr, done.stderr
    assert [(e["name"], e["properties"]["plan"]) for e in server.events()] == [
        ("user_signup", "pro")
    ]


def test_logging_integration_off_again_sends_nothing(server: DevServer) -> None:
    done = _run(
        """
        import logging, sys
        import databuddy_otel
        databuddy_otel.init(client_id="logs", api_url=sys.argv[1],
                            integrations={"logging": True})
        databuddy_otel.init(client_id="logs", api_url=sys.argv[1],
                            integrations={"logging": False})
        logging.getLogger("app").warning("signup", extra={"db_props": {}})
        databuddy_otel.track("direct")
        """,
        server.url,
    )
    assert done.returncode == 0, done.stderr
    assert [e["name"] for e in server.events()] == ["direct"]


@pytest.mark.parametrize("when", ["before the first client", "after it"])
def test_sigterm_switched_off_keeps_the_default_action(server: DevServer, when: str) -> None:
    """Off before the first client: no handler is installed. Off later: the installed
    handler ends the process at once, without the flush."""
    done = _run(
        """
        import os, signal, sys
        import databuddy_otel
        from databuddy_otel import Databuddy
        off = {"sigterm": False}
        if sys.argv[2] == "before the first client":
            databuddy_otel.init(client_id="t", api_url=sys.argv[1], integrations=off,
                                batch_size=100, batch_timeout=60_000)
            print(signal.getsignal(signal.SIGTERM) == signal.SIG_DFL, flush=True)
        else:
            Databuddy(client_id="t", api_url=sys.argv[1])  # installs the handler
            databuddy_otel.init(client_id="t", api_url=sys.argv[1], integrations=off,
                                batch_size=100, batch_timeout=60_000)
            print(signal.getsignal(signal.SIGTERM) != signal.SIG_DFL, flush=True)
        databuddy_otel.track("queued")
        os.kill(os.getpid(), signal.SIGTERM)
        """,
        server.url,
        when,
    )
    assert done.returncode == -signal.SIGTERM, done.stderr
    assert done.stdout.strip() == "True", done.stdout
    assert server.events() == []


@pytest.mark.parametrize("name", ["fork", "rq", "multiprocessing"])
@pytest.mark.parametrize("on", [True, False], ids=["on", "off"])
def test_child_exit_integrations(server: DevServer, name: str, on: bool) -> None:
    """A child's queued events go out as it ends while the integration is on, and stay
    unsent when it is off: a forked child's os._exit (``fork``), the same in an RQ
    work-horse (``rq``: rq.worker loaded), a multiprocessing child ending normally."""
    if name == "rq" and importlib.util.find_spec("rq") is None:
        pytest.skip("rq is not installed")
    prefix = uuid.uuid4().hex[:8]
    done = _run(
        """
        import multiprocessing, os, sys
        import databuddy_otel
        url, name, on, prefix = sys.argv[1], sys.argv[2], sys.argv[3] == "True", sys.argv[4]
        if name == "rq":
            import rq.worker
        databuddy_otel.init(client_id="c", api_url=url, batch_size=100,
                            batch_timeout=60_000, integrations={name: on})

        def job():
            for i in range(3):
                databuddy_otel.track("child", event_id=f"{prefix}-{i}")

        if name == "multiprocessing":
            child = multiprocessing.get_context("fork").Process(target=job)
            child.start()
            child.join()
        else:
            pid = os.fork()
            if pid == 0:
                job()
                os._exit(0)
            os.waitpid(pid, 0)
        databuddy_otel.track("parent", event_id=f"{prefix}-parent")
        """,
        server.url,
        name,
        str(on),
        prefix,
    )
    assert done.returncode == 0, done.stderr
    ids = sorted(e["eventId"] for e in server.events())
    children = [f"{prefix}-{i}" for i in range(3)] if on else []
    assert ids == sorted([*children, f"{prefix}-parent"])


def test_celery_integration_switched_off_leaves_the_queue_open() -> None:
    """Celery's worker_process_shutdown closes the queues only while ``celery`` is on: a
    track() after it is still accepted, then refused once the switch is back on."""
    pytest.importorskip("celery")
    done = _run(
        """
        import celery.signals
        import databuddy_otel
        from databuddy_otel import Databuddy
        nowhere = {"client_id": "c", "api_url": "http://127.0.0.1:9", "shutdown_timeout": 0.2}
        client = Databuddy(**nowhere)
        databuddy_otel.init(**nowhere, integrations={"celery": False})
        celery.signals.worker_process_shutdown.send(sender=None)
        print(client.track("after the first signal").success)
        databuddy_otel.init(**nowhere, integrations={"celery": True})
        celery.signals.worker_process_shutdown.send(sender=None)
        print(client.track("after the second").success)
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "False"], done.stdout + done.stderr

"""A SIGTERM that the main thread's wait never sees still runs the SDK's handler.

The kernel may hand SIGTERM to any thread that does not block it; Python runs the
handler only once the main thread runs Python code again. A main thread waiting in
a lock that nothing releases (as an idle pool worker waits in the task queue's
lock) would wait forever, where SIGTERM's default action would have ended the
process: the relay sends the signal again, to the main thread.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import uuid

import pytest

from databuddy_otel.devserver import DevServer

pytestmark = pytest.mark.skipif(
    not hasattr(signal, "pthread_kill"), reason="needs POSIX threads and signals"
)

#: The client queues five events; the main thread then blocks for good in a
#: multiprocessing lock while SIGTERM is delivered to an application thread.
SCRIPT = textwrap.dedent(
    """
    import multiprocessing, os, signal, sys, threading, time
    from databuddy_otel import Databuddy

    url, prefix, where = sys.argv[1:4]
    client = Databuddy(api_url=url, client_id="relay", batch_size=100, batch_timeout=60_000)

    def blocked_main(tag):
        for i in range(5):
            client.track(name="relay", event_id=f"{prefix}-{tag}-{i}")
        lock = multiprocessing.Lock()
        lock.acquire()
        app = threading.Thread(target=time.sleep, args=(60,), daemon=True)
        app.start()
        def deliver():
            time.sleep(0.3)
            signal.pthread_kill(app.ident, signal.SIGTERM)
        threading.Thread(target=deliver, daemon=True).start()
        lock.acquire()  # nothing releases it
        print("the lock was released", flush=True)

    if where == "parent":
        blocked_main("parent")
    else:
        pid = os.fork()
        if pid == 0:
            blocked_main("child")
            os._exit(3)
        _, status = os.waitpid(pid, 0)
        print("child", os.WTERMSIG(status) if os.WIFSIGNALED(status) else -1, flush=True)
        client.shutdown()
    """
)


@pytest.mark.parametrize("where", ["parent", "child"])
def test_sigterm_on_another_thread_flushes_and_ends_the_process(
    server: DevServer, where: str
) -> None:
    """SIGTERM lands on an application thread while the main thread waits in a lock
    nothing releases: the queued events are delivered and the process dies by the
    signal, as it would without the SDK (in a forked child too, with its own relay)."""
    prefix = uuid.uuid4().hex[:8]
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, server.url, prefix, where],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "PYTHONWARNINGS": "ignore::DeprecationWarning"},
    )
    if where == "parent":
        assert done.returncode == -signal.SIGTERM, (done.returncode, done.stdout, done.stderr)
    else:
        assert done.returncode == 0, done.stderr
        assert done.stdout.split() == ["child", str(int(signal.SIGTERM))], done.stdout
    assert "released" not in done.stdout and "Traceback" not in done.stderr, done.stderr
    ids = sorted(e["eventId"] for e in server.events())
    assert ids == [f"{prefix}-{where}-{i}" for i in range(5)]


def test_a_wakeup_fd_of_the_application_is_left_alone() -> None:
    """A process that set its own wakeup fd (as an asyncio loop does) keeps it."""
    script = textwrap.dedent(
        """
        import os, signal
        read, write = os.pipe()
        os.set_blocking(write, False)
        signal.set_wakeup_fd(write)
        from databuddy_otel import Databuddy
        client = Databuddy(api_url="http://127.0.0.1:9", client_id="relay")
        print(signal.set_wakeup_fd(-1) == write)
        client.shutdown(timeout=0.1)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30
    )
    assert done.stdout.strip() == "True", done.stdout + done.stderr


def test_sigterm_while_the_thread_reads_the_queue_registry(server: DevServer) -> None:
    """SIGTERM lands while the main thread holds the registry's lock (an exit close
    listing the open queues as a pool terminates its worker): the handler, on that
    same thread, still closes the queues and ends the process by the signal."""
    prefix = uuid.uuid4().hex[:8]
    script = textwrap.dedent(
        """
        import os, signal, sys
        from databuddy_otel import Databuddy
        from databuddy_otel._runtime import exit_hooks
        client = Databuddy(api_url=sys.argv[1], client_id="relay", batch_size=100,
                           batch_timeout=60_000)
        for i in range(3):
            client.track(name="registry", event_id=f"{sys.argv[2]}-{i}")
        with exit_hooks._lock:  # where open_queues() is when the signal comes
            os.kill(os.getpid(), signal.SIGTERM)
            print("the handler returned", flush=True)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script, server.url, prefix],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == -signal.SIGTERM, (done.returncode, done.stdout, done.stderr)
    ids = sorted(e["eventId"] for e in server.events())
    assert ids == [f"{prefix}-{i}" for i in range(3)]

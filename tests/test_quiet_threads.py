"""The SDK's threads block SIGTERM and SIGINT, in the process and in a forked child.

A signal sent to a process goes to any thread that does not block it, and Python
handles it only when the main thread runs Python code again: one that lands on a
sender thread of an idle pool worker (its main thread waiting in the task queue's
lock) is never handled, and ``Pool.terminate()`` waits for that worker forever.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from databuddy_otel.devserver import DevServer

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/task").is_dir(), reason="reads thread signal masks from /proc"
)

#: Prints, for the parent and for a forked child, each thread's name and whether it
#: blocks SIGTERM and SIGINT (read from /proc/self/task/TID/status).
SCRIPT = textwrap.dedent(
    """
    import json, os, signal, sys, threading
    from databuddy_otel import Databuddy

    def masks():
        seen = {}
        for thread in threading.enumerate():
            me = thread is threading.current_thread()
            tid = threading.get_native_id() if me else thread.native_id
            with open(f"/proc/{os.getpid()}/task/{tid}/status") as status:
                line = next(l for l in status if l.startswith("SigBlk:"))
            blocked = int(line.split()[1], 16)
            bits = [bool(blocked >> (s - 1) & 1) for s in (signal.SIGTERM, signal.SIGINT)]
            name = "main" if thread is threading.main_thread() else thread.name.split("-")[0]
            seen.setdefault(name, []).append(all(bits) if name != "main" else any(bits))
        return seen

    client = Databuddy(api_url=sys.argv[1], client_id="quiet", spool_dir=sys.argv[2],
                       batch_size=2)
    for i in range(20):
        client.track(name="e")
    client.flush()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            for i in range(20):
                client.track(name="child")
            client.flush()
            os.write(write, json.dumps(masks()).encode())
        finally:
            os._exit(0)
    os.close(write)
    child = os.read(read, 65536)
    os.waitpid(pid, 0)
    print(json.dumps({"parent": masks(), "child": json.loads(child or b"null")}))
    client.shutdown()
    """
)


def test_every_sdk_thread_leaves_the_signals_to_the_main_thread(
    server: DevServer, tmp_path: Path
) -> None:
    """Senders, the watchdog, the spool thread and OpenTelemetry's batch worker block
    SIGTERM and SIGINT; the main thread blocks neither, in the parent and after a fork."""
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, server.url, str(tmp_path / "spool")],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONWARNINGS": "ignore::DeprecationWarning", "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    for process in ("parent", "child"):
        threads = seen[process]
        assert threads.pop("main") == [False], process
        assert {"databuddy", "OtelBatchLogRecordProcessor"} <= set(threads), threads
        assert all(all(blocked) for blocked in threads.values()), (process, threads)

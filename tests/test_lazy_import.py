"""What the first ``track()`` imports, and imports a fork never cuts in half."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from databuddy_otel._runtime import lazy_import


def test_a_client_and_its_first_track_do_not_load_requests() -> None:
    """``requests`` (about 50 ms) waits for the first request; track() does not need it."""
    code = textwrap.dedent(
        """
        import os, sys
        from databuddy_otel import Databuddy
        client = Databuddy(client_id="c", api_url="http://127.0.0.1:9")
        assert client.track(name="signup", properties={"plan": "pro"}).success
        print(sorted(m for m in ("requests", "urllib3", "ssl", "email.utils") if m in sys.modules))
        os._exit(0)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "[]"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_fork_waits_for_an_import_under_way(tmp_path: Path) -> None:
    """A child forked while another thread imports gets the whole module, not half."""
    (tmp_path / "slow_module.py").write_text("import time\ntime.sleep(0.5)\nDONE = True\n")
    sys.path.insert(0, str(tmp_path))
    try:
        loader = threading.Thread(target=lazy_import.load, args=("slow_module",))
        loader.start()
        time.sleep(0.1)  # the import is under way, sleeping half-way through
        started = time.monotonic()
        pid = os.fork()
        if pid == 0:  # the child: the module must be complete here
            module = sys.modules.get("slow_module")
            os._exit(0 if getattr(module, "DONE", False) else 3)
        waited = time.monotonic() - started
        loader.join()
        _, status = os.waitpid(pid, 0)
        assert os.WEXITSTATUS(status) == 0, "the child saw a half-imported module"
        assert waited >= 0.3  # the fork waited for the import
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("slow_module", None)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_child_forked_per_job_inherits_requests() -> None:
    """A parent that made a client but never sent loads ``requests`` before it forks,
    so a child forked per job (an RQ work-horse) does not pay the import itself."""
    code = textwrap.dedent(
        """
        import os, sys
        from databuddy_otel import Databuddy
        client = Databuddy(client_id="c", api_url="http://127.0.0.1:9")
        assert "requests" not in sys.modules
        pid = os.fork()
        if pid == 0:
            os._exit(0 if "requests" in sys.modules else 3)
        _, status = os.waitpid(pid, 0)
        print(os.WEXITSTATUS(status), "requests" in sys.modules)
        os._exit(0)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.split() == ["0", "True"]

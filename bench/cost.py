"""Where an SDK's CPU goes per request, all threads counted: ``python3 bench/cost.py``.

Serves ``bench/web_app.py``'s Flask app in this process, one request after another at
a steady rate (``--rate`` per second, as one busy gunicorn worker sees them), for each
variant; every SDK sends to the counting sink. For each run it reads the CPU time of
every thread of this process and of the sink from ``/proc``, and prints µs of CPU per
request by thread role (the request thread, the SDK's background threads, the sink):
what the SDK costs the machine, not only the caller.

Variants run in interleaved rounds (``--rounds``, in a shuffled order each round);
each line shows the median run and the spread. A last ``ours`` run times the SDK's
steps (record to event, check and serialize, queue, hand-over, request, settle) with
``time.thread_time`` around each; a
function-level profile of the request thread is ``bench/profile_track.py``'s job.
Writes ``docs/benchmarks-cost.md``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import re
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import run  # noqa: E402  (bench/run.py: the virtualenv and the sink)
from sink_client import SinkClient  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def _cpu(pid: int, tid: int | None = None) -> float:
    """CPU seconds (user + system) of a process, or of one of its threads."""
    path = f"/proc/{pid}/task/{tid}/stat" if tid else f"/proc/{pid}/stat"
    with open(path) as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def _environ() -> dict[str, Any]:
    return {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1:8000",
        "HTTP_USER_AGENT": "wrk",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }


def _start_response(status: str, headers: Any, exc_info: Any = None) -> None:
    return None


#: What ``--phases`` times in the ``ours`` run: (label, module, owner, attribute).
PHASES = (
    ("handler: record to event", "databuddy_logging.handler", "DatabuddyHandler", "_emit"),
    (
        "track: check, enrich, serialize",
        "databuddy_otel._event.preparation",
        "Preparation",
        "prepare",
    ),
    ("track: queue", "databuddy_otel._queue.event_queue", "EventQueue", "offer"),
    ("worker: hand over", "databuddy_otel._queue.senders", "Senders", "put"),
    ("sender: take a chunk", "databuddy_otel._queue.senders", "Senders", "_take"),
    ("sender: request + answer", "databuddy_otel._wire.transport", "RequestsTransport", "post"),
    ("sender: settle", "databuddy_otel._queue.event_queue", "EventQueue", "_settle"),
    ("sender: whole send", "databuddy_otel._queue.senders", "Senders", "_send"),
)


class Phases:
    """CPU time (``time.thread_time``) spent inside a few functions, on whichever thread.

    Each function is wrapped before the app builds its client; a wrapper costs
    about 1 µs, so the figures are a little high and the whole-thread CPU of the
    table without ``--phases`` is the one to quote.
    """

    def __init__(self) -> None:
        self.spent: dict[str, float] = {}
        self.calls: dict[str, int] = {}

    def install(self) -> None:
        import importlib

        for label, module, owner, attribute in PHASES:
            cls = getattr(importlib.import_module(module), owner)
            setattr(cls, attribute, self._timed(label, getattr(cls, attribute)))

    def _timed(self, label: str, function: Any) -> Any:
        spent, calls, clock = self.spent, self.calls, time.thread_time

        def timed(*args: Any, **kwargs: Any) -> Any:
            begun = clock()
            try:
                return function(*args, **kwargs)
            finally:
                spent[label] = spent.get(label, 0.0) + clock() - begun
                calls[label] = calls.get(label, 0) + 1

        return timed

    def reset(self) -> None:
        self.spent.clear()
        self.calls.clear()


def serve(variant: str, sink: str, rate: float, seconds: float) -> dict[str, Any]:
    """Run in a child: serve requests at ``rate``/s, return CPU µs per request by thread."""
    os.environ["BENCH_VARIANT"] = variant
    os.environ["BENCH_SINK"] = sink
    phases = Phases()
    if os.environ.get("BENCH_PHASES") == "1":
        phases.install()
    import web_app

    app = web_app.flask_app.wsgi_app
    environ = _environ()
    for _ in range(200):  # warm-up: imports, routing caches, the first connection
        b"".join(app(dict(environ), _start_response))
    pid = os.getpid()
    main = threading.get_native_id()
    phases.reset()
    before = {t.native_id: _cpu(pid, t.native_id) for t in threading.enumerate()}
    requests = int(rate * seconds)
    started = time.perf_counter()
    for n in range(requests):
        due = started + n / rate
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        body = app(dict(environ), _start_response)
        b"".join(body)
        close = getattr(body, "close", None)
        if close is not None:
            close()
    elapsed = time.perf_counter() - started
    time.sleep(0.5)  # the background threads' share of the last requests
    roles: dict[str, float] = {}
    for thread in threading.enumerate():
        tid = thread.native_id
        assert tid is not None
        spent = _cpu(pid, tid) - before.get(tid, 0.0)
        role = "request thread" if tid == main else re.sub(r"[-_ ]?\(?\d+\)?$", "", thread.name)
        roles[role] = roles.get(role, 0.0) + spent
    result = {
        "variant": variant,
        "requests": requests,
        "late": elapsed > seconds * 1.05,
        "us_per_request": {role: spent / requests * 1e6 for role, spent in roles.items()},
    }
    result["phases"] = {
        label: (spent / requests * 1e6, phases.calls[label])
        for label, spent in phases.spent.items()
    }
    if web_app.sdk is not None and hasattr(web_app.sdk, "shutdown"):
        web_app.sdk.shutdown()
    return result


def _run_child(
    variant: str, sink: str, sink_pid: int, args: argparse.Namespace, phases: bool
) -> dict[str, Any]:
    sink_before = _cpu(sink_pid)
    child = subprocess.run(
        [sys.executable, __file__, "--child", variant, sink, f"{args.rate}", f"{args.seconds}"],
        env={**run.worker_env(), "BENCH_PHASES": "1" if phases else "0"},
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(child.stdout.strip().splitlines()[-1])
    result["sink"] = (_cpu(sink_pid) - sink_before) / result["requests"] * 1e6
    return result


def _total(row: dict[str, Any]) -> float:
    return float(sum(row["us_per_request"].values()) + row["sink"])


def _thread_table(rounds: list[list[dict[str, Any]]], variants: list[str]) -> list[str]:
    """One line per variant: the threads of its median run, and the spread over rounds."""
    lines = [
        "| variant | request thread | the SDK's threads | sink | all: median [min–max] "
        "| over no SDK: median [min–max] |",
        "|---|---:|---|---:|---:|---:|",
    ]
    for variant in variants:
        runs = [row for rows in rounds for row in rows if row["variant"] == variant]
        runs.sort(key=_total)
        row = runs[len(runs) // 2]
        spent = dict(row["us_per_request"])
        request = spent.pop("request thread", 0.0)
        threads = ", ".join(f"{name} {us:.1f}" for name, us in sorted(spent.items()) if us >= 0.5)
        totals = [_total(r) for r in runs]
        over = []
        for rows in rounds:  # against the no-SDK run of the same round
            by = {r["variant"]: _total(r) for r in rows}
            if "none" in by and variant in by:
                over.append(by[variant] - by["none"])
        late = " (could not keep the rate)" if any(r["late"] for r in runs) else ""
        lines.append(
            f"| {variant}{late} | {request:.1f} | {threads or '–'} | {row['sink']:.1f} "
            f"| {_spread(totals)} | {_spread(over, sign='+')} |"
        )
    return lines


def _spread(values: list[float], sign: str = "") -> str:
    if not values:
        return "–"
    low, mid, high = min(values), statistics.median(values), max(values)
    return f"{mid:{sign}.1f} [{low:{sign}.1f}–{high:{sign}.1f}]"


def _phase_table(row: dict[str, Any]) -> list[str]:
    lines = ["| step | µs per request | calls | µs per call |", "|---|---:|---:|---:|"]
    for label, _, _, _ in PHASES:
        if label in row["phases"]:
            per_request, calls = row["phases"][label]
            per_call = per_request * row["requests"] / calls
            lines.append(f"| {label} | {per_request:.1f} | {calls:,} | {per_call:.1f} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=2000.0)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--round-trip-ms", type=float, default=0.0, help="answer uploads late")
    parser.add_argument(
        "--variants", nargs="+", default=["none", "ours", "floor", "sentry", "posthog"]
    )
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    args = parser.parse_args()
    sink_proc, sink = run.start_sink()
    try:
        SinkClient(sink).reset(delay_ms=args.round_trip_ms)
        rounds = []
        for n in range(args.rounds):
            order = random.Random(n).sample(args.variants, len(args.variants))
            rows = [_run_child(v, sink, sink_proc.pid, args, phases=False) for v in order]
            rounds.append(rows)
            print(
                f"round {n + 1}/{args.rounds}: "
                + ", ".join(f"{r['variant']} {_total(r):.1f}" for r in rows),
                flush=True,
            )
        steps = _run_child("ours", sink, sink_proc.pid, args, phases=True)
    finally:
        sink_proc.terminate()
    threads, phases = _thread_table(rounds, args.variants), _phase_table(steps)
    print("\n".join(["", *threads, "", *phases]))
    late = args.round_trip_ms
    page = [
        "# Where the CPU goes per request" + (f", {late:g} ms from the server" if late else ""),
        "",
        "Written by `python3 bench/cost.py` (do not edit by hand). `bench/web_app.py`'s "
        f"Flask endpoint served in one process at {args.rate:g} requests a second (about what "
        "one busy gunicorn worker of bench/web.py serves) for "
        f"{args.seconds:g} s per variant in {args.rounds} interleaved rounds, each SDK "
        "sending to the counting sink; a line shows its median run, with the spread of "
        "the totals (and of each round's difference to its no-SDK run). CPU time "
        "(user + system, from `/proc`) of every thread, in µs per request, whatever the "
        "thread: what the SDK costs the machine, not only the caller. Variants as in "
        "[benchmarks-web.md](benchmarks-web.md) (`ours`: the middleware, one tagged log "
        "record and one `track()`, so two events per request; `floor`: the same record and "
        "event through `bench/floor.py`, the least any SDK that batches JSON over `requests` "
        "does, with no checks, no retries and no accounting, so `ours` minus `floor` is our "
        "own overhead and `floor` minus `none` what no SDK of this shape avoids)."
        + (f" The sink answers every upload {late:g} ms late (`--round-trip-ms`)." if late else ""),
        "",
        *threads,
        "",
        "## The steps of `ours`",
        "",
        "A second `ours` run with each step wrapped in a `time.thread_time()` timer "
        "(inclusive: the handler's figure contains one `track()`; a timer costs about "
        "1 µs, so these run a little high).",
        "",
        *phases,
        "",
    ]
    name = f"benchmarks-cost-{late:g}ms.md" if late else "benchmarks-cost.md"
    (run.ROOT / "docs" / name).write_text("\n".join(page), encoding="utf-8")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        print(json.dumps(serve(sys.argv[2], sys.argv[3], float(sys.argv[4]), float(sys.argv[5]))))
    else:
        run.ensure_venv(Path(__file__))
        main()

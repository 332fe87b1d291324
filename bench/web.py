"""What each SDK costs a trivial web endpoint: ``python3 bench/web.py [--rounds N]``.

Flask under gunicorn (sync, 2 workers) and FastAPI under uvicorn (1 worker) serve
``bench/web_app.py`` once per SDK variant (none, ours, floor, sentry, posthog, otel), every
SDK sending to the same counting sink; ``wrk`` drives each server for a few seconds
after a warm-up. Runs are interleaved: each round runs every variant on both servers,
in a shuffled order, so that a slow minute of the machine hits all variants alike.
Each run's req/s and p50/p99 latency are divided by the no-SDK run of the same round
and server; the table shows the median ratio and the worst round's.

Needs ``wrk`` (Debian: ``apt install wrk``). Writes ``docs/benchmarks-web.md`` and the
raw runs to ``bench/results/web-<time>.json``; with ``--round-trip-ms N`` the sink
answers every upload N ms late (an emulated network round trip) and the page is
``docs/benchmarks-web-<N>ms.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import run  # noqa: E402  (bench/run.py: the virtualenv, the sink, the environment)
from sink import free_port  # noqa: E402
from sink_client import SinkClient  # noqa: E402

VARIANTS = ("none", "ours", "floor", "sentry", "posthog", "otel")
SERVERS = {
    "gunicorn+flask": ["-m", "gunicorn", "-w", "2", "-k", "sync", "web_app:flask_app"],
    # One worker: two share one listening socket unevenly (the first connections
    # decide which worker serves each of wrk's keep-alive connections), which made
    # the no-SDK figure swing between runs from 1.6k to 3.7k req/s.
    "uvicorn+fastapi": ["-m", "uvicorn", "--workers", "1", "--log-level", "warning"],
}


def start(server: str, variant: str, sink: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    args = [sys.executable, *SERVERS[server]]
    if server.startswith("gunicorn"):
        args += ["-b", f"127.0.0.1:{port}", "--log-level", "warning"]
    else:
        args += ["--host", "127.0.0.1", "--port", str(port), "web_app:asgi_app"]
    env = {**run.worker_env(), "BENCH_VARIANT": variant, "BENCH_SINK": sink}
    proc = subprocess.Popen(
        args,
        cwd=BENCH,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as answer:
                if answer.read() == b"ok":
                    return proc, port
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.1)
    stop(proc)
    errors = proc.stderr.read().decode(errors="replace")[-2000:] if proc.stderr else ""
    raise SystemExit(f"{server} with {variant} did not start:\n{errors}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)
    except ProcessLookupError:
        pass


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if not match:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def drive(port: int, seconds: float, connections: int) -> dict[str, float]:
    """One wrk run: req/s, p50 and p99 in ms."""
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{connections}",
            f"-d{seconds:g}s",
            "--latency",
            f"http://127.0.0.1:{port}/",
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 30,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "p50": p50, "p99": p99, "non2xx": int(errors.group(1)) if errors else 0}


def measure(args: argparse.Namespace, sink: str) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = []
    order = random.Random(24)
    for round_ in range(args.rounds):
        plan = [(s, v) for s in SERVERS for v in args.variants]
        order.shuffle(plan)
        for server, variant in plan:
            proc, port = start(server, variant, sink)
            try:
                drive(port, 1, args.connections)  # warm-up: imports, connections, JIT-free caches
                result = drive(port, args.seconds, args.connections)
            finally:
                stop(proc)
            runs.append({"round": round_, "server": server, "variant": variant, **result})
            print(
                f"round {round_ + 1}/{args.rounds} {server:16} {variant:8} "
                f"{result['rps']:9,.0f} req/s  p50 {result['p50']:6.2f} ms  "
                f"p99 {result['p99']:6.2f} ms",
                flush=True,
            )
    return runs


def ratios(
    runs: list[dict[str, Any]], server: str, variant: str, key: str, base: str
) -> list[float]:
    """Per round: ``variant``'s ``key`` over ``base``'s, on one server."""
    by = {(r["round"], r["variant"]): r[key] for r in runs if r["server"] == server}
    rounds = sorted({r["round"] for r in runs})
    both = [n for n in rounds if (n, variant) in by and (n, base) in by]
    return [by[(n, variant)] / by[(n, base)] for n in both]


def table(runs: list[dict[str, Any]], variants: list[str]) -> list[str]:
    lines = [
        "| server | variant | req/s (median) | req/s vs none: median, worst | "
        "p50 ms | p99 ms | p99 vs none: median, worst |",
        "|---|---|---:|---|---:|---:|---|",
    ]
    for server in SERVERS:
        for variant in variants:
            mine = [r for r in runs if r["server"] == server and r["variant"] == variant]
            if not mine:
                continue
            rps = ratios(runs, server, variant, "rps", "none")
            p99 = ratios(runs, server, variant, "p99", "none")
            lines.append(
                f"| {server} | {variant} | {statistics.median(r['rps'] for r in mine):,.0f} | "
                f"{statistics.median(rps):.2f}×, {min(rps):.2f}× | "
                f"{statistics.median(r['p50'] for r in mine):.2f} | "
                f"{statistics.median(r['p99'] for r in mine):.2f} | "
                f"{statistics.median(p99):.2f}×, {max(p99):.2f}× |"
            )
    return lines


def verdicts(runs: list[dict[str, Any]]) -> list[str]:
    lines = ["| server | target | worst round | met |", "|---|---|---:|---|"]
    for server in SERVERS:

        def worst(key: str, base: str, pick: Any, missing: float, server: str = server) -> float:
            return float(pick(ratios(runs, server, "ours", key, base) or [missing]))

        checks = [
            ("req/s ≥ 0.9× none", worst("rps", "none", min, 0), 0.9, ">="),
            ("p99 ≤ 1.2× none", worst("p99", "none", max, 99), 1.2, "<="),
            ("req/s ≥ 1.5× sentry", worst("rps", "sentry", min, 0), 1.5, ">="),
            ("req/s ≥ 0.95× floor", worst("rps", "floor", min, 0), 0.95, ">="),
        ]
        for name, worst, bound, sense in checks:
            met = worst >= bound if sense == ">=" else worst <= bound
            lines.append(f"| {server} | {name} | {worst:.2f}× | {'yes' if met else 'NO'} |")
    return lines


def write(runs: list[dict[str, Any]], args: argparse.Namespace) -> None:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    results = BENCH / "results"
    results.mkdir(exist_ok=True)
    (results / f"web-{stamp}.json").write_text(json.dumps(runs, indent=1))
    late = args.round_trip_ms
    name = f"benchmarks-web-{late:g}ms.md" if late else "benchmarks-web.md"
    page = [
        "# What an SDK costs a web endpoint" + (f", {late:g} ms from the server" if late else ""),
        "",
        "Written by `python3 bench/web.py` (do not edit by hand). A trivial endpoint on "
        "this machine, Flask under gunicorn (sync, 2 workers) and FastAPI under uvicorn "
        "(1 worker, an async endpoint), driven by `wrk -t2 "
        f"-c{args.connections} -d{args.seconds:g}s` after a 1 s warm-up; {args.rounds} "
        "interleaved rounds; each ratio is taken against the no-SDK run of the same round "
        "and server. Per request: `ours` is the WSGI/ASGI middleware, one tagged log record "
        "through `DatabuddyHandler` and one `track()` at the defaults; `sentry` is "
        "`sentry-sdk` with `enable_logs=True` and the same record; `posthog` one "
        "`capture()`; `otel` OpenTelemetry's WSGI/ASGI instrumentation with the OTLP/HTTP "
        "span exporter; `floor` the same record and event as `ours` through "
        "`bench/floor.py`, the least an SDK that batches JSON over `requests` can do "
        "(no checks, no retries, no accounting). Every SDK sends to the same local sink; "
        "the load generator, the servers and the SDKs' threads share the machine's cores."
        + (
            f" The sink answers every upload {late:g} ms late (`--round-trip-ms`): an "
            "emulated network round trip, which loopback hides."
            if late
            else ""
        ),
        "",
        *table(runs, args.variants),
        "",
        "## Targets (worst round)",
        "",
        *verdicts(runs),
        "",
    ]
    (run.ROOT / "docs" / name).write_text("\n".join(page), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument(
        "--round-trip-ms",
        type=float,
        default=0.0,
        help="answer every upload this late (writes docs/benchmarks-web-<N>ms.md)",
    )
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    args = parser.parse_args()
    if "none" not in args.variants:
        args.variants.insert(0, "none")
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (Debian: apt install wrk)")
    sink_proc, sink = run.start_sink()
    try:
        SinkClient(sink).reset(delay_ms=args.round_trip_ms)
        runs = measure(args, sink)
    finally:
        sink_proc.terminate()
    print("\n".join(["", *table(runs, args.variants), "", *verdicts(runs)]))
    write(runs, args)


if __name__ == "__main__":
    run.ensure_venv(Path(__file__))
    main()

"""Benchmark databuddy_otel against its peers: ``python3 bench/run.py [--quick]``.

Bootstraps ``bench/.venv`` (this SDK in editable mode plus the pinned peers,
see ``bench/requirements.txt``) and re-executes itself inside it. Then it starts
the counting sink, runs every scenario for every SDK in fresh worker processes
(round-robin, repeated), prints the table, saves the raw runs under
``bench/results/`` and writes ``docs/benchmarks.md`` with its chart.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
VENV = BENCH / ".venv"
VENV_PYTHON = VENV / "bin" / "python"
REQUIREMENTS = BENCH / "requirements.txt"
STAMP = VENV / ".requirements.sha256"
WORKER_TIMEOUT = 600


def ensure_venv(script: Path | None = None) -> None:
    """Create/refresh bench/.venv when needed, then re-exec ``script`` (this one by
    default) inside it."""
    if Path(sys.prefix).resolve() == VENV.resolve():
        return
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    if not VENV_PYTHON.exists():
        print(f"creating {VENV.relative_to(ROOT)} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    if not STAMP.exists() or STAMP.read_text().strip() != digest:
        print("installing bench requirements (this SDK, peers, matplotlib) ...", flush=True)
        subprocess.run(
            [str(VENV_PYTHON), "-m", "pip", "install", "-q", "-r", str(REQUIREMENTS)],
            check=True,
            cwd=BENCH,
        )
        STAMP.write_text(digest)
    target = (script or Path(__file__)).resolve()
    os.execv(str(VENV_PYTHON), [str(VENV_PYTHON), str(target), *sys.argv[1:]])


def worker_env() -> dict[str, str]:
    """The environment minus anything that would change an SDK's behaviour or route."""
    prefixes = ("DATABUDDY_", "POSTHOG_", "OTEL_", "SEGMENT_")
    proxies = {"http_proxy", "https_proxy", "all_proxy"}
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(prefixes) and k.lower() not in proxies
    }
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env["PYTHONPATH"] = str(ROOT)
    return env


def start_sink() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, str(BENCH / "sink.py"), "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
        env=worker_env(),
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().split()
    if len(line) != 2 or line[0] != "READY":
        proc.kill()
        raise SystemExit(f"the sink did not start: {line!r}")
    return proc, f"http://127.0.0.1:{line[1]}"


def run_worker(module: str, sdk: str, params: dict[str, Any]) -> dict[str, Any]:
    with tempfile.TemporaryFile("w+") as errors:
        try:
            out = subprocess.run(
                [sys.executable, "-m", "bench.worker", module, sdk, json.dumps(params)],
                cwd=ROOT,
                env=worker_env(),
                stdout=subprocess.PIPE,
                stderr=errors,
                text=True,
                timeout=WORKER_TIMEOUT,
            ).stdout
        except subprocess.TimeoutExpired:
            return {"error": f"timed out after {WORKER_TIMEOUT}s"}
        for line in reversed(out.splitlines()):
            if line.startswith("RESULT "):
                result: dict[str, Any] = json.loads(line[len("RESULT ") :])
                break
        else:
            errors.seek(0)
            tail = errors.read()[-1500:]
            result = {"error": "worker printed no result", "stderr": tail}
        if "error" in result:
            errors.seek(0)
            result.setdefault("stderr", errors.read()[-1500:])
    return result


def short(result: dict[str, Any], keys: list[str]) -> str:
    if "error" in result:
        return f"ERROR {result['error']}"
    if "skipped" in result:
        return str(result["skipped"])
    parts = []
    for key in keys:
        value = result.get(key)
        if isinstance(value, float):
            parts.append(f"{key}={value:,.2f}")
        elif value is not None:
            parts.append(f"{key}={value}")
    return " ".join(parts)


def environment(quick: bool) -> dict[str, Any]:
    from importlib.metadata import version

    packages = ("databuddy-otel", "opentelemetry-sdk", "posthog", "segment-analytics-python")
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "loadavg_start": os.getloadavg(),
        "mode": "quick" if quick else "full",
        "versions": {name: version(name) for name in packages},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="Benchmark databuddy_otel against its peers.")
    parser.add_argument("--quick", action="store_true", help="small N, fewer repeats (~2 min)")
    parser.add_argument("--repeats", type=int, help="repeats for the main scenarios (default 5)")
    parser.add_argument(
        "--only", help="comma-separated scenario keys, e.g. caller_cost,import_time"
    )
    parser.add_argument("--no-docs", action="store_true", help="do not write docs/benchmarks.md")
    parser.add_argument(
        "--from-results", type=Path, help="re-render the table and docs from a saved run's JSON"
    )
    args = parser.parse_args()
    ensure_venv()

    sys.path.insert(0, str(ROOT))
    from bench import plan, report
    from bench.sink import free_port

    sizes = plan.QUICK if args.quick else plan.FULL
    if args.repeats:
        sizes = plan.Sizes(**{**sizes.__dict__, "repeats": args.repeats})
    if args.from_results:
        rerender(args.from_results, sizes, write_docs=not args.no_docs)
        return
    sink, url = start_sink()
    scenarios = plan.build(sizes, url, f"http://127.0.0.1:{free_port()}")
    if args.only:
        wanted = set(args.only.split(","))
        scenarios = [s for s in scenarios if s.key in wanted]
    env = environment(args.quick)
    raw: dict[str, dict[str, list[dict[str, Any]]]] = {}
    began = time.monotonic()
    try:
        for scenario in scenarios:
            print(f"\n== {scenario.title} ({scenario.repeats} repeat(s))", flush=True)
            scenario_began = time.monotonic()
            runs = raw.setdefault(scenario.key, {sdk: [] for sdk in scenario.sdks})
            keys = [m.key for m in scenario.metrics]
            for repeat in range(scenario.repeats):
                for sdk in scenario.sdks:
                    if repeat >= scenario.repeats_for(sdk):
                        continue
                    if repeat and runs[sdk] and "skipped" in runs[sdk][0]:
                        continue
                    result = run_worker(scenario.module, sdk, scenario.params_for(sdk))
                    runs[sdk].append(result)
                    print(f"  #{repeat + 1} {sdk:<22} {short(result, keys)}", flush=True)
            took = round(time.monotonic() - scenario_began, 1)
            env.setdefault("scenario_s", {})[scenario.key] = took
            print(f"  ({took:g} s)", flush=True)
    finally:
        sink.terminate()
        sink.wait(10)
    env["loadavg_end"] = os.getloadavg()
    env["elapsed_s"] = round(time.monotonic() - began, 1)

    results_dir = BENCH / "results"
    results_dir.mkdir(exist_ok=True)
    saved = results_dir / f"{time.strftime('%Y%m%d-%H%M%S')}-{env['mode']}.json"
    saved.write_text(json.dumps({"environment": env, "runs": raw}, indent=1))
    publish(report, scenarios, report.summarize(scenarios, raw), env, write_docs=not args.no_docs)
    print(f"raw runs saved to {saved.relative_to(ROOT)}")


def rerender(path: Path, sizes: Any, *, write_docs: bool) -> None:
    """Table and docs from a saved run (``bench/results/*.json``) without re-running."""
    from bench import plan, report

    saved = json.loads(path.read_text())
    env, raw = saved["environment"], saved["runs"]
    if env["mode"] == "quick":
        sizes = plan.QUICK
    scenarios = [s for s in plan.build(sizes, "", "") if s.key in raw]
    publish(report, scenarios, report.summarize(scenarios, raw), env, write_docs=write_docs)


def publish(
    report: Any, scenarios: list[Any], summary: Any, env: dict[str, Any], *, write_docs: bool
) -> None:
    print()
    print(report.text(scenarios, summary, env))
    if write_docs:
        docs = ROOT / "docs"
        report.write_docs(scenarios, summary, env, docs / "benchmarks.md", docs / "benchmarks.png")
        print("wrote docs/benchmarks.md and docs/benchmarks.png")


if __name__ == "__main__":
    main()

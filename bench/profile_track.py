"""Profile the caller's side of ``Databuddy.track()`` as scenario 1 runs it.

``bench/.venv/bin/python -m bench.profile_track [--n 100000] [--top 20]`` (from the
repository root; ``python3 bench/run.py`` creates the venv). Starts the sink,
builds the scenario-1 client (batches of 100, queue ≥ N), and runs cProfile on
the calling thread only (the sender thread still runs, unprofiled, as in the
benchmark). Prints the top entries by own time and by cumulative time.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import subprocess
import sys
from pathlib import Path

from bench.sdks import EVENT, make_props


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--top", type=int, default=20)
    args = parser.parse_args()
    sink = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("sink.py"))],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert sink.stdout is not None
        url = f"http://127.0.0.1:{sink.stdout.readline().split()[1]}"
        from databuddy_otel import Databuddy

        client = Databuddy(
            client_id="bench", api_url=url, batch_size=100, max_queue_size=args.n + 100
        )
        track = client.track
        for i in range(100):
            track(name=EVENT, properties=make_props(i))
        profiler = cProfile.Profile()
        profiler.enable()
        for i in range(args.n):
            track(name=EVENT, properties=make_props(i))
        profiler.disable()
        client.shutdown()
        for order in ("tottime", "cumulative"):
            print(f"\n--- top {args.top} by {order} ({args.n:,} track() calls) ---")
            pstats.Stats(profiler).strip_dirs().sort_stats(order).print_stats(args.top)
    finally:
        sink.terminate()
        sink.wait(10)


if __name__ == "__main__":
    main()

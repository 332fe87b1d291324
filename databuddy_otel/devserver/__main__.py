"""``python -m databuddy_otel.devserver`` (also installed as ``databuddy-devserver``).

Prints ``Databuddy dev server listening on http://HOST:PORT (events: http://HOST:PORT/)``
as its first line (the event viewer's address in parentheses), then one line per ingest
request unless ``--quiet``, and serves until SIGINT or SIGTERM, then closes the database
and exits 0.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import signal
import sqlite3
import sys
import threading
import time
from collections.abc import Mapping
from types import FrameType
from typing import Any

from databuddy_otel.devserver import DevServer
from databuddy_otel.devserver._traffic import banner

#: Every option may come from the environment instead: DATABUDDY_DEVSERVER_ + its name.
ENV_PREFIX = "DATABUDDY_DEVSERVER_"


def _parser(environ: Mapping[str, str] = os.environ) -> argparse.ArgumentParser:
    def env(name: str, default: Any = None) -> Any:
        return environ.get(ENV_PREFIX + name, "").strip() or default

    parser = argparse.ArgumentParser(
        prog="databuddy-devserver",
        description="Local Databuddy ingest server (POST /track, legacy POST / and /batch)."
        f" Each option can also be set as {ENV_PREFIX}<NAME> (for example"
        f" {ENV_PREFIX}PORT=0); a command-line option wins.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    parser.add_argument(
        "--host", default=env("HOST", "127.0.0.1"), help="address to bind (default: %(default)s)"
    )
    parser.add_argument(
        "--port",
        type=int,
        default=env("PORT", 8910),
        help="port to bind, 0 picks a free one (default: %(default)s)",
    )
    parser.add_argument(
        "--db",
        default=env("DB", ":memory:"),
        help="SQLite file to keep events in (default: %(default)s)",
    )
    parser.add_argument(
        "--client-id",
        action="append",
        metavar="ID",
        default=_names(env("CLIENT_ID", "")) or None,
        help="accept only this website/client id (repeatable; CLIENT_ID in the environment"
        " is comma-separated; default: accept any)",
    )
    parser.add_argument(
        "--api-key",
        action="append",
        metavar="KEY",
        default=_names(env("API_KEY", "")) or None,
        help="accept only this API key on /track (repeatable; API_KEY in the environment"
        " is comma-separated; default: accept any)",
    )
    parser.add_argument(
        "--allowed-hosts",
        metavar="NAMES",
        type=_names,
        default=_names(env("ALLOWED_HOSTS", "")),
        help="comma-separated extra Host names to answer to, each optionally with :port"
        " (default: only localhost, 127.0.0.1, [::1] and --host)",
    )
    parser.add_argument(
        "--quiet",
        action="store_true",
        default=env("QUIET", "").lower() in ("1", "true", "yes", "on"),
        help="print only the first line, not one line per ingest request",
    )
    return parser


def _version() -> str:
    try:
        return importlib.metadata.version("databuddy-otel")
    except importlib.metadata.PackageNotFoundError:
        return "unknown (not installed)"


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def main(argv: list[str] | None = None) -> int:
    """Run the dev server until SIGINT or SIGTERM; return the exit code."""
    args = _parser().parse_args(argv)
    try:
        server = DevServer(
            host=args.host,
            port=args.port,
            db=args.db,
            client_ids=args.client_id,
            api_keys=args.api_key,
            allowed_hosts=args.allowed_hosts,
            request_log=None if args.quiet else sys.stdout,
        )
    except (TypeError, ValueError) as exc:
        print(f"databuddy-devserver: {exc}", file=sys.stderr)
        return 2
    stop_requested = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop_requested.set()

    # Handlers go in before the socket opens, so a signal right after the banner is
    # always a clean stop. Only the main thread may install them.
    previous: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, request_stop)
    try:
        try:
            server.start()
        except (OSError, sqlite3.Error) as exc:
            where = f"{args.host}:{args.port}"
            print(f"databuddy-devserver: cannot start on {where}: {exc}", file=sys.stderr)
            return 1
        try:
            # Without --quiet the request log writes the banner, before any request line.
            if args.quiet:
                print(banner(server.url), flush=True)
            # A short sleep, not Event.wait(): setting an Event from a signal handler
            # while the main thread waits on it can deadlock on the Event's own lock.
            while not stop_requested.is_set():
                time.sleep(0.1)
        finally:
            server.stop()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 0


if __name__ == "__main__":
    sys.exit(main())

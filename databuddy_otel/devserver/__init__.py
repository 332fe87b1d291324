"""A local Databuddy ingest server for tests and development.

It speaks both wire generations (``POST /track``; legacy ``POST /`` and
``POST /batch``) with the basket server's validation, stores what it accepts in
SQLite, shows it at ``GET /events`` and, live, on the page at ``GET /``, keeps the
last refusals with their reasons (``GET /rejections``), and can fail, delay or drop
requests on demand so clients' retry paths can be tested::

    with DevServer() as server:
        requests.post(f"{server.url}/track", json={"name": "signup"}, params={"website_id": "w"})
        assert server.wait_for_events(1)[0]["name"] == "signup"

Command line: ``python -m databuddy_otel.devserver --port 8910``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from types import TracebackType
from typing import Any, TextIO

from databuddy_otel.devserver._http import IngestHTTPServer
from databuddy_otel.devserver._state import Fault, IngestState
from databuddy_otel.devserver._store import Store
from databuddy_otel.devserver._traffic import RequestLog, banner

#: How long stop() waits for open viewers and the request log to finish.
_STOP_GRACE_SECONDS = 2.0

__all__ = ["DevServer"]


class DevServer:
    """An ingest server on a background thread; a ``with`` block starts and stops it.

    Lifecycle: new → running (:meth:`start`) → stopped (:meth:`stop`); a stopped
    server cannot be started again (make a new one on the same ``db`` file to keep
    its events). ``client_ids`` / ``api_keys``, when given and non-empty, are the only
    website ids and API keys accepted; otherwise any is. A request with an API key is
    judged by the key alone, as on the live service. With ``request_log`` (a text
    stream such as ``sys.stdout``) it writes ``Databuddy dev server listening on URL
    (events: URL/)`` there, then one line per ingest request, as the command does.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        db: str = ":memory:",
        client_ids: Iterable[str] | None = None,
        api_keys: Iterable[str] | None = None,
        request_log: TextIO | None = None,
    ) -> None:
        if not isinstance(host, str) or not host:
            raise ValueError(f"host must be a non-empty string such as '127.0.0.1', not {host!r}")
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError(f"port must be an int in 0..65535 (0 picks a free port), not {port!r}")
        if not isinstance(db, str) or not db:
            raise ValueError(f"db must be a file path or ':memory:', not {db!r}")
        self._host = host
        self._port = port
        self._db = db
        self._client_ids = _string_set("client_ids", client_ids)
        self._api_keys = _string_set("api_keys", api_keys)
        if request_log is not None and not callable(getattr(request_log, "write", None)):
            raise TypeError(
                f"request_log must be a text stream such as sys.stdout, not {request_log!r}"
            )
        self._request_log_stream = request_log
        self._request_log: RequestLog | None = None
        self._lifecycle_lock = threading.Lock()
        self._phase = "new"
        self._state: IngestState | None = None
        self._server: IngestHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._url: str | None = None

    def __repr__(self) -> str:
        return f"<DevServer {self._phase} url={self._url!r} db={self._db!r}>"

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> DevServer:
        """Open the database, bind the socket and serve on a daemon thread."""
        with self._lifecycle_lock:
            if self._phase != "new":
                raise RuntimeError(
                    f"DevServer.start() on a {self._phase} server; create a new DevServer instead"
                )
            store = Store(self._db)
            try:
                state = IngestState(store, client_ids=self._client_ids, api_keys=self._api_keys)
                server = IngestHTTPServer((self._host, self._port), state)
            except BaseException:
                store.close()
                raise
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.02},
                name="databuddy-devserver",
                daemon=True,
            )
            thread.start()
            host = f"[{self._host}]" if ":" in self._host else self._host
            self._url = f"http://{host}:{server.server_address[1]}"
            if self._request_log_stream is not None:
                self._request_log = RequestLog(
                    state.feed, self._request_log_stream, first_line=banner(self._url)
                )
            self._state, self._server, self._thread = state, server, thread
            self._phase = "running"
        return self

    def stop(self) -> None:
        """Stop serving, cut open connections and close the database; idempotent."""
        with self._lifecycle_lock:
            phase, self._phase = self._phase, "stopped"
            if phase != "running":
                return
            assert self._state is not None and self._server is not None and self._thread is not None
            self._state.stopping.set()  # wakes requests sleeping in delay_next()
            self._state.feed.close()  # wakes viewers' streams and the request log
            self._server.shutdown()
            self._server.server_close()
            self._server.close_connections()
            self._thread.join()
            if self._request_log is not None:
                self._request_log.join(_STOP_GRACE_SECONDS)
            self._state.feed.wait_released(_STOP_GRACE_SECONDS)
            self._state.store.close()

    def __enter__(self) -> DevServer:
        # ``with DevServer().start() as server:`` is fine too.
        return self if self._phase == "running" else self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """``http://HOST:PORT`` with the real port; valid once started."""
        if self._url is None:
            raise RuntimeError("DevServer.url is known only after start()")
        return self._url

    def _running(self) -> IngestState:
        if self._phase != "running" or self._state is None:
            raise RuntimeError(
                f"the DevServer is {self._phase}; call start() (or use it as a with block) first"
            )
        return self._state

    def _started(self) -> IngestState:
        """The state of a running or stopped server: counters outlive the socket."""
        if self._state is None:
            raise RuntimeError("the DevServer has not been started; call start() first")
        return self._state

    # -- what was received ---------------------------------------------------------

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        """The stored events, oldest first, as ``GET /events`` shows them."""
        return self._running().store.events(name)

    def clear(self) -> None:
        """Delete every stored event, the legacy path's dedup memory and the kept
        refusals, as ``DELETE /events`` and the page's Clear button do."""
        self._running().clear()

    def rejections(self) -> list[dict[str, Any]]:
        """The last few hundred refused requests and events, newest first, as
        ``GET /rejections`` shows them.

        Each is a dict with ``status`` (None when the connection was dropped), the
        server's ``message`` and ``errors``, the offending ``body`` (cut to 4096
        characters; ``bodyTruncated`` says so), ``index`` (the event's position in a
        legacy batch), ``injected`` (the fault control that staged it, or None),
        ``path``, ``protocol``, ``requestId``, ``receivedAt`` and an increasing ``id``.
        """
        return self._started().refusals.newest_first()

    @property
    def request_count(self) -> int:
        """Ingest requests received (``POST /track``, ``/``, ``/batch``), faulted ones too."""
        return self._started().request_count

    def wait_for_events(
        self, count: int, *, timeout: float = 10.0, name: str | None = None
    ) -> list[dict[str, Any]]:
        """Poll until at least ``count`` events (named ``name``) are stored; return them.

        Raises AssertionError, with the counts, when ``timeout`` seconds pass first.
        """
        store = self._running().store
        deadline = time.monotonic() + timeout
        while True:
            stored = store.count(name)
            if stored >= count:
                return store.events(name)
            if time.monotonic() >= deadline:
                named = f" named {name!r}" if name is not None else ""
                raise AssertionError(
                    f"expected at least {count} events{named} within {timeout}s, got {stored}"
                )
            time.sleep(0.01)

    # -- fault injection -------------------------------------------------------------

    def fail_next(
        self, n: int = 1, *, status: int = 503, retry_after: float | str | None = None
    ) -> None:
        """Answer the next ``n`` ingest requests with ``status`` and store nothing."""
        fault = Fault(
            "fail",
            status=_status(status),
            retry_after=_retry_after(retry_after),
            source="fail_next",
        )
        self._running().arm(fault, _count(n))

    def delay_next(self, n: int = 1, *, seconds: float) -> None:
        """Store the next ``n`` ingest requests' events, then wait ``seconds`` to answer."""
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds >= 0:
            raise ValueError(f"seconds must be a number >= 0, not {seconds!r}")
        fault = Fault("delay", seconds=float(seconds), source="delay_next")
        self._running().arm(fault, _count(n))

    def drop_next(self, n: int = 1, *, after_processing: bool = False) -> None:
        """Close the next ``n`` ingest connections without an answer.

        With ``after_processing`` the events are stored first, as when a response is
        lost on the way back.
        """
        fault = Fault("drop", after_processing=bool(after_processing), source="drop_next")
        self._running().arm(fault, _count(n))

    def set_outage(self, status: int | None) -> None:
        """Answer every ingest request with ``status`` (0: drop it) until ``set_outage(None)``."""
        if status is None:
            fault = None
        elif status == 0 and not isinstance(status, bool):
            fault = Fault("drop", source="set_outage")
        else:
            fault = Fault("fail", status=_status(status), source="set_outage")
        self._running().set_outage(fault)

    def set_flaky(self, rate: float, *, seed: int | None = None) -> None:
        """Fail a random ``rate`` of the ingest requests (0 turns it off).

        Each failed request gets one of: 503, 429 with ``Retry-After: 1``, 500, or a
        connection dropped without an answer. Armed faults and outages come first.
        """
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
            raise ValueError(f"rate must be a fraction in 0..1, not {rate!r}")
        self._running().set_flaky(float(rate), seed)

    def clear_faults(self) -> None:
        """Disarm every pending fault, end an outage and stop being flaky."""
        self._running().clear_faults()

    def faulted_request_ids(self) -> set[int]:
        """Request ids whose events were stored but whose answer was delayed or dropped."""
        return self._started().faulted_request_ids()


def _string_set(argument: str, values: Iterable[str] | None) -> frozenset[str] | None:
    if values is None:
        return None
    if isinstance(values, str):
        raise TypeError(f"{argument} must be an iterable of strings; wrap {values!r} in a list")
    result = frozenset(values)
    if not all(isinstance(value, str) and value for value in result):
        raise ValueError(f"{argument} must hold non-empty strings, got {sorted(map(repr, result))}")
    return result or None


def _count(n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an int >= 1 (how many requests), not {n!r}")
    return n


def _status(status: int) -> int:
    if isinstance(status, bool) or not isinstance(status, int) or not 200 <= status <= 599:
        raise ValueError(f"status must be an HTTP status code in 200..599, not {status!r}")
    return status


def _retry_after(value: float | str | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise ValueError(f"retry_after must be seconds >= 0 or an HTTP date string, not {value!r}")
    return str(int(value)) if float(value).is_integer() else repr(float(value))

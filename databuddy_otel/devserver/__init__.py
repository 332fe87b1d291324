"""A local Databuddy ingest server for tests and development.

It speaks both wire generations (``POST /track``; legacy ``POST /`` and
``POST /batch``) with the basket server's validation, stores what it accepts in
SQLite, shows it at ``GET /events`` and, live, on the page at ``GET /``, keeps the
last refusals with their reasons (``GET /rejections``), and can fail, delay, drop,
trickle or answer requests like a bad proxy on demand, so clients' retry paths can be
tested::

    with DevServer() as server:
        requests.post(f"{server.url}/track", json={"name": "signup"}, params={"website_id": "w"})
        assert server.wait_for_events(1)[0]["name"] == "signup"

Command line: ``python -m databuddy_otel.devserver --port 8910``.

It is safe to leave running on a laptop: it answers only to its own names (no DNS
rebinding), refuses writes a web page could forge, caps its connections and closes
connections that take too long to send a request. See docs/devserver.md.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any, TextIO

from databuddy_otel.devserver import _arguments as check
from databuddy_otel.devserver._http import IngestHTTPServer
from databuddy_otel.devserver._staged import Trickle
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

    Safety (docs/devserver.md, "Safe on a laptop"): a request whose ``Host`` is not
    ``localhost``, ``127.0.0.1``, ``[::1]``, ``host``, one of ``allowed_hosts`` (names,
    optionally ``name:port``) or, when bound to ``0.0.0.0`` / ``::``, an IP address, is
    refused with 421; a write (ingest, ``DELETE /events``) from a foreign ``Origin``
    must be ``Content-Type: application/json`` or gets 403. At most ``max_connections``
    connections are open at once (viewer streams included); past that a connection
    gets an immediate 503 with ``Retry-After: 1``. A connection must send each whole
    request within ``request_timeout`` seconds of being ready for it, or is closed.
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
        allowed_hosts: Iterable[str] | None = None,
        max_connections: int = 64,
        request_timeout: float = 10.0,
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
        self._client_ids = check.string_set("client_ids", client_ids)
        self._api_keys = check.string_set("api_keys", api_keys)
        self._allowed_hosts = check.host_names(allowed_hosts)
        self._max_connections = check.positive_int("max_connections", max_connections)
        self._request_timeout = check.seconds("request_timeout", request_timeout, interval=True)
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
                server = IngestHTTPServer(
                    (self._host, self._port),
                    state,
                    allowed_hosts=self._allowed_hosts,
                    max_connections=self._max_connections,
                    request_timeout=self._request_timeout,
                )
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
        """Answer the next ``n`` ingest requests with ``status`` and store nothing.

        ``retry_after`` becomes a ``Retry-After`` header: a number as seconds, a string
        verbatim (``"0"``, ``"-5"``, an HTTP date in the past: whatever a test needs).
        """
        fault = Fault(
            "fail",
            status=check.status(status),
            retry_after=check.retry_after(retry_after),
            source="fail_next",
        )
        self._running().arm(fault, check.count(n))

    def delay_next(self, n: int = 1, *, seconds: float) -> None:
        """Store the next ``n`` ingest requests' events, then wait ``seconds`` to answer."""
        fault = Fault("delay", seconds=check.seconds("seconds", seconds), source="delay_next")
        self._running().arm(fault, check.count(n))

    def drop_next(self, n: int = 1, *, after_processing: bool = False) -> None:
        """Close the next ``n`` ingest connections without an answer.

        With ``after_processing`` the events are stored first, as when a response is
        lost on the way back.
        """
        fault = Fault("drop", after_processing=bool(after_processing), source="drop_next")
        self._running().arm(fault, check.count(n))

    def reply_next(
        self,
        n: int = 1,
        *,
        status: int = 200,
        body: bytes | str = b"",
        content_type: str | None = "text/html; charset=utf-8",
        headers: Mapping[str, str] | None = None,
        size: int | None = None,
    ) -> None:
        """Answer the next ``n`` ingest requests with exactly this, and store nothing.

        What a captive portal or a proxy in the way answers: an HTML 200, an empty 200,
        a ``308`` with ``headers={"Location": ...}``. ``status`` is in 200..599; a ``str``
        ``body`` goes out as UTF-8; ``content_type=None`` sends no Content-Type;
        ``headers`` are sent verbatim after it (Content-Type, Content-Length and
        Transfer-Encoding come from the other arguments). ``size`` makes the body that
        many bytes, ``body`` repeated (spaces when empty) and streamed in 64 KiB pieces,
        so a 400 MB answer costs the server no more memory than a small one.
        """
        reply = check.canned_reply(
            status_code=status, body=body, content_type=content_type, headers=headers, size=size
        )
        fault = Fault("reply", status=reply.status, answer=reply, source="reply_next")
        self._running().arm(fault, check.count(n))

    def trickle_next(
        self, n: int = 1, *, interval: float = 0.5, store: bool = True, headers_too: bool = False
    ) -> None:
        """Answer the next ``n`` ingest requests one byte every ``interval`` seconds.

        With ``store`` the request is processed first (its events stored, as when the
        server did its job but the answer is slow) and the answer is its usual status
        and JSON; without, nothing is stored and the answer is a 200 with ``{}``. Either
        way it declares ``Content-Type: application/json`` and a ``Content-Length`` of
        1 MiB (the JSON, then spaces) and sends the body a byte at a time until the
        client disconnects or the server stops. With ``headers_too`` the status line
        and headers are trickled too. Requests whose events were stored show in
        :meth:`faulted_request_ids`.
        """
        trickled = Trickle(check.seconds("interval", interval, interval=True), bool(headers_too))
        fault = Fault(
            "trickle",
            seconds=trickled.interval,
            after_processing=bool(store),
            answer=trickled,
            source="trickle_next",
        )
        self._running().arm(fault, check.count(n))

    def set_outage(self, status: int | None, *, retry_after: float | str | None = None) -> None:
        """Answer every ingest request with ``status`` (0: drop it) until ``set_outage(None)``.

        ``retry_after`` is sent as by :meth:`fail_next`.
        """
        if status is None:
            fault = None
        elif status == 0 and not isinstance(status, bool):
            fault = Fault("drop", source="set_outage")
        else:
            fault = Fault(
                "fail",
                status=check.status(status),
                retry_after=check.retry_after(retry_after),
                source="set_outage",
            )
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
        """Request ids whose events were stored but whose answer was delayed, dropped or
        trickled."""
        return self._started().faulted_request_ids()

"""Sending bytes: the only module that talks to the network.

:class:`~databuddy_otel.models.Transport` is the seam tests and alternative HTTP
stacks plug into (``transport=``);
:class:`RequestsTransport` is the default, one pooled ``requests.Session`` per
process (a forked child gets a fresh one: sockets are never shared with the parent).

A request's ``timeout`` is its whole life: connecting, sending, and reading the
entire answer (the :mod:`~databuddy_otel._wire.watchdog` cuts it when the time is
up). Only the first :data:`MAX_ANSWER_BYTES` of an answer are read; the
server's own answers are a few hundred bytes.
"""

from __future__ import annotations

import errno
import os
import socket
import ssl
import threading
import urllib.parse
from typing import TYPE_CHECKING, Any

from databuddy_otel._wire.watchdog import WATCHDOG
from databuddy_otel.models import HttpAnswer, TransportError, Verify

if TYPE_CHECKING:
    import requests

#: Bytes of an answer read at most (the rest is not read; the connection is closed).
MAX_ANSWER_BYTES = 64 * 1024


class RequestsTransport:
    """POSTs through a ``requests`` connection pool; TLS verified unless ``verify=False``.

    Two things ``Session.post`` would redo on every request are done once: the
    environment lookup (proxy variables, ``REQUESTS_CA_BUNDLE`` /
    ``CURL_CA_BUNDLE``, ``~/.netrc``) and the preparation of URL and headers,
    which is copied per request from a template. Together they were about 40 %
    of the CPU each request costs, on the thread that competes with the
    application for the GIL. The request goes straight to the session's
    ``HTTPAdapter``, so redirects are not followed (``requests`` would turn a
    redirected POST into a GET): point ``api_url`` at the final address.
    Changing those environment variables afterwards needs a new client.
    """

    def __init__(self, *, verify: Verify = True, pool_size: int = 10) -> None:
        # Imported here, not at module import (``import databuddy_otel`` stays
        # cheap) and not lazily on the worker thread: a fork while another
        # thread is half-way through an import leaves the child a broken module.
        import requests

        self._requests = requests
        self._adapter_class = _watched_adapter_class()
        if verify is True:
            verify = (
                os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
            )
        self._verify = verify
        self._pool_size = pool_size
        self._templates: dict[
            tuple[str, tuple[tuple[str, str], ...]], tuple[Any, dict[str, str]]
        ] = {}
        self._lock = threading.Lock()
        self._session: requests.Session | None = None
        self._pid = os.getpid()
        WATCHDOG.ensure_running()  # now, while threads can still start

    def _get_session(self) -> requests.Session:
        if self._pid != os.getpid():
            # A child of fork: the parent's pooled sockets are not ours.
            self._lock = threading.Lock()
            self._session = None
            self._pid = os.getpid()
        session = self._session
        if session is None:
            with self._lock:
                if self._session is None:
                    session = self._requests.Session()
                    session.trust_env = False
                    # One pooled connection per request that may be in flight at once.
                    adapter = self._adapter_class(pool_maxsize=self._pool_size)
                    session.mount("https://", adapter)
                    session.mount("http://", adapter)
                    self._session = session
                session = self._session
        return session

    def _template(self, url: str, headers: dict[str, str]) -> tuple[Any, dict[str, str]]:
        key = (url, tuple(headers.items()))
        found = self._templates.get(key)
        if found is None:
            request = self._requests.Request("POST", url, headers=headers, data=b"").prepare()
            proxies = self._requests.utils.get_environ_proxies(url)
            with self._lock:
                found = self._templates.setdefault(key, (request, proxies))
        return found

    def post(self, url: str, body: bytes, headers: dict[str, str], timeout: float) -> HttpAnswer:
        """POST ``body``; the whole exchange, answer included, ends within ``timeout``."""
        watch = WATCHDOG.watch(timeout)
        try:
            template, proxies = self._template(url, headers)
            request = template.copy()
            request.body = body
            request.headers["Content-Length"] = str(len(body))
            session = self._get_session()
            response = session.get_adapter(url).send(
                request, stream=True, timeout=timeout, verify=self._verify, proxies=proxies
            )
            try:
                return _read_answer(response)
            finally:
                response.close()
        except Exception as exc:
            if watch.cut:
                raise TransportError(
                    f"Network request failed: no complete answer within {timeout:g}s"
                ) from None
            if isinstance(exc, self._requests.RequestException):
                what, certain = _describe(exc, url)
                raise TransportError(what, certain=certain) from None
            raise TransportError(
                f"Network request failed: {type(exc).__name__}: {exc}"[:300]
            ) from None
        finally:
            WATCHDOG.release(watch)

    def close(self) -> None:
        with self._lock:
            if self._session is not None:
                self._session.close()
                self._session = None


def _read_answer(response: Any) -> HttpAnswer:
    """Status, headers and at most :data:`MAX_ANSWER_BYTES` of the body."""
    raw = response.raw
    data = raw.read(MAX_ANSWER_BYTES + 1, decode_content=True) or b""
    if len(data) <= MAX_ANSWER_BYTES:
        raw.release_conn()  # read to the end: the connection can be used again
    text = data[:MAX_ANSWER_BYTES].decode("utf-8", "replace")
    return HttpAnswer(
        response.status_code, text, {k.lower(): v for k, v in response.headers.items()}
    )


_ADAPTER: Any = None


def _watched_adapter_class() -> Any:
    """``requests``' adapter, with connections that tell the watchdog about each request."""
    global _ADAPTER
    if _ADAPTER is not None:
        return _ADAPTER
    import urllib3
    from requests.adapters import HTTPAdapter
    from urllib3 import connection, connectionpool

    class Watched:
        """Reports each request and the start of its answer to the watchdog."""

        def request(self, *args: Any, **kwargs: Any) -> Any:
            WATCHDOG.attach(self)
            return super().request(*args, **kwargs)  # type: ignore[misc]

        def getresponse(self, *args: Any, **kwargs: Any) -> Any:
            WATCHDOG.answer_started(self)
            return super().getresponse(*args, **kwargs)  # type: ignore[misc]

    class WatchedHTTPConnection(Watched, connection.HTTPConnection):
        pass

    class WatchedHTTPSConnection(Watched, connection.HTTPSConnection):
        pass

    class WatchedHTTPPool(connectionpool.HTTPConnectionPool):
        ConnectionCls = WatchedHTTPConnection

    class WatchedHTTPSPool(connectionpool.HTTPSConnectionPool):
        ConnectionCls = WatchedHTTPSConnection

    def watched(manager: Any) -> Any:
        pools = getattr(manager, "pool_classes_by_scheme", None)
        # Only urllib3's own pools are replaced (a SOCKS proxy keeps its own).
        if isinstance(pools, dict) and pools.get("http") is urllib3.HTTPConnectionPool:
            manager.pool_classes_by_scheme = {"http": WatchedHTTPPool, "https": WatchedHTTPSPool}
        return manager

    class WatchedAdapter(HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            super().init_poolmanager(*args, **kwargs)
            watched(self.poolmanager)

        def proxy_manager_for(self, proxy: str, **kwargs: Any) -> Any:
            return watched(super().proxy_manager_for(proxy, **kwargs))

    _ADAPTER = WatchedAdapter
    return _ADAPTER


def _describe(exc: Any, url: str) -> tuple[str, bool]:
    """``Network request failed: <cause>`` naming the cause a reader can act on, and
    whether that cause is certain (refused, DNS, TLS) rather than possibly a blip."""
    import requests

    cause = _cause(exc)
    certain = True
    if isinstance(exc, requests.exceptions.SSLError) or isinstance(cause, ssl.SSLError):
        what = f"TLS error ({cause})" if cause is not None else "TLS error"
    elif isinstance(exc, requests.Timeout):
        what, certain = "timed out", False
    elif isinstance(cause, ConnectionRefusedError) or (
        isinstance(cause, OSError) and cause.errno == errno.ECONNREFUSED
    ):
        what = f"connection refused by {_where(url)}"
    elif isinstance(cause, socket.gaierror):
        what = f"name not resolved (DNS): {_where(url)}"
    elif isinstance(exc, requests.ConnectionError):
        what, certain = "connection error" + (f" ({cause})" if cause is not None else ""), False
    else:
        what, certain = type(exc).__name__, False
    return f"Network request failed: {what}"[:300], certain


def _where(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return parts.netloc.rpartition("@")[2] or url


def _cause(exc: BaseException) -> BaseException | None:
    """The innermost exception below ``requests``' and ``urllib3``'s wrappers."""
    seen: set[int] = set()
    current: BaseException | None = exc
    found: BaseException | None = None
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        found = current
        reason = getattr(current, "reason", None)
        if isinstance(reason, BaseException):
            current = reason
            continue
        args = getattr(current, "args", ())
        inner = next((a for a in args if isinstance(a, BaseException)), None)
        current = inner or current.__cause__ or current.__context__
    return None if found is exc else found

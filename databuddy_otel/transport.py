"""Sending bytes: the only module that talks to the network.

:class:`Transport` is the seam tests and alternative HTTP stacks plug into;
:class:`RequestsTransport` is the default, one pooled ``requests.Session`` per
process (a forked child gets a fresh one: sockets are never shared with the parent).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, Union

if TYPE_CHECKING:
    import requests

#: ``verify`` as ``requests`` takes it: True, False, or a CA bundle path.
Verify = Union[bool, str]


@dataclass(frozen=True)
class HttpAnswer:
    """A response as far as delivery needs it (header names lower-cased)."""

    status: int
    text: str
    headers: dict[str, str]


class TransportError(Exception):
    """The request got no HTTP answer (refused, reset, timed out, DNS)."""


class Transport(Protocol):
    def post(
        self, url: str, body: bytes, headers: dict[str, str], timeout: float
    ) -> HttpAnswer: ...

    def close(self) -> None: ...


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
        if verify is True:
            verify = (
                os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
            )
        self._verify = verify
        self._pool_size = pool_size
        self._templates: dict[tuple[str, tuple[tuple[str, str], ...]], Any] = {}
        self._lock = threading.Lock()
        self._session: requests.Session | None = None
        self._pid = os.getpid()

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
                    adapter = self._requests.adapters.HTTPAdapter(pool_maxsize=self._pool_size)
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
            found = self._templates[key] = (request, self._requests.utils.get_environ_proxies(url))
        return found

    def post(self, url: str, body: bytes, headers: dict[str, str], timeout: float) -> HttpAnswer:
        try:
            template, proxies = self._template(url, headers)
            request = template.copy()
            request.body = body
            request.headers["Content-Length"] = str(len(body))
            session = self._get_session()
            response = session.get_adapter(url).send(
                request, timeout=timeout, verify=self._verify, proxies=proxies
            )
            with response:
                return HttpAnswer(
                    response.status_code,
                    response.text,
                    {k.lower(): v for k, v in response.headers.items()},
                )
        except self._requests.RequestException as exc:
            raise TransportError(_describe(exc)) from None

    def close(self) -> None:
        with self._lock:
            if self._session is not None:
                self._session.close()
                self._session = None


class SharedTransport:
    """A transport several deliveries use; the last one to let go closes it.

    The client's queue holds the first share; exporters built with ``client=``
    take one each, so the order in which the client and the OpenTelemetry
    providers shut down never closes the connection pool under a sender.
    """

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self._shares = 1
        self._lock = threading.Lock()

    def post(self, url: str, body: bytes, headers: dict[str, str], timeout: float) -> HttpAnswer:
        return self.transport.post(url, body, headers, timeout)

    def acquire(self) -> SharedTransport:
        """Take one more share (usable even after the others let go)."""
        with self._lock:
            self._shares += 1
        return self

    def close(self) -> None:
        """Give back one share; the last one closes the transport."""
        with self._lock:
            self._shares -= 1
            last = self._shares == 0
        if last:
            self.transport.close()


def _describe(exc: Any) -> str:
    import requests

    if isinstance(exc, requests.Timeout):
        return "Network request failed: timed out"
    if isinstance(exc, requests.ConnectionError):
        return "Network request failed: connection error"
    return f"Network request failed: {type(exc).__name__}"

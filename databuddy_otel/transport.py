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
    """POSTs over a keep-alive ``requests.Session``; TLS verified unless ``verify=False``."""

    def __init__(self, *, verify: Verify = True) -> None:
        # Imported here, not at module import (``import databuddy_otel`` stays
        # cheap) and not lazily on the worker thread: a fork while another
        # thread is half-way through an import leaves the child a broken module.
        import netrc  # noqa: F401 - requests imports it lazily at the first request

        import requests

        self._requests = requests
        self._verify = verify
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
                    self._session = self._requests.Session()
                    self._session.trust_env = True
                session = self._session
        return session

    def post(self, url: str, body: bytes, headers: dict[str, str], timeout: float) -> HttpAnswer:
        try:
            response = self._get_session().post(
                url, data=body, headers=headers, timeout=timeout, verify=self._verify
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


def _describe(exc: Any) -> str:
    import requests

    if isinstance(exc, requests.Timeout):
        return "Network request failed: timed out"
    if isinstance(exc, requests.ConnectionError):
        return "Network request failed: connection error"
    return f"Network request failed: {type(exc).__name__}"

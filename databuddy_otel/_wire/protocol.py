"""The wire generations of the Databuddy ingest API, one strategy object each.

A :class:`Protocol` says everything that differs between generations: where events
go and how a request is framed (:meth:`~Protocol.url`, :meth:`~Protocol.headers`,
:meth:`~Protocol.body`), what a successful answer means (:meth:`~Protocol.read`),
how an event is written (the serializer reads :attr:`~Protocol.opening` and the
field tables) and how the spool finds an event's name and id again
(:meth:`~Protocol.identity`). ``protocol=`` picks one from :data:`PROTOCOLS`: a new
generation, or a framing such as compressed bodies, is one subclass registered there.

``track`` (the default) posts to ``/track`` and authenticates with a Bearer API
key or a ``website_id`` query parameter; errors come back as real HTTP status
codes. ``legacy`` posts to ``/`` and ``/batch`` with a ``client_id`` query
parameter and reports most errors inside an HTTP 200. See docs/protocol.md.

Only the server's own verdict loses an event: a final 4xx (other than 408, 425
and 429) or the server's error body. Anything else that comes back (a redirect,
a proxy's HTML page, an empty 200, a body that is not the server's JSON) means
the events have not been delivered *yet*: they are retried, and they stay in the
spool. Such an answer did not come from a Databuddy server, so it does not count
as the server being reachable either.

This module only builds requests and reads answers; sending and retrying live
in :mod:`databuddy_otel._wire.transport` and :mod:`databuddy_otel._wire.delivery`.
"""

from __future__ import annotations

import abc
import email.utils
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

from databuddy_otel._event.limits import (
    MAX_EVENT_ID_LENGTH_LEGACY,
    MAX_ID_LENGTH,
    MAX_NAME_LENGTH_LEGACY,
    MAX_NAME_LENGTH_TRACK,
    MAX_NAMESPACE_LENGTH,
    MAX_SOURCE_LENGTH,
    MAX_WEBSITE_ID_LENGTH,
)
from databuddy_otel._version import __version__

USER_AGENT = f"databuddy-otel-python/{__version__}"

#: The hosted ingest's base address: ``api_url``'s default.
DEFAULT_API_URL = "https://basket.databuddy.cc"

#: Statuses worth another try: the request may succeed unchanged later.
RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})

SUCCESS, RETRY, SPLIT, FAIL = "success", "retry", "split", "fail"


@dataclass(frozen=True)
class Outcome:
    """What one HTTP answer means for the events it carried.

    ``verdict`` is ``success``, ``retry`` (send the same events again),
    ``split`` (the body was too large: send halves) or ``fail`` (do not retry).
    ``errors`` holds one entry per event: ``None`` when that event was accepted,
    else the server's message (legacy batches can accept some and refuse others).
    """

    verdict: str
    message: str | None = None
    retry_after: float | None = None
    errors: list[str | None] = field(default_factory=list)
    #: The answer did not come from a Databuddy server (a redirect, a proxy's page).
    foreign: bool = False


class Protocol(abc.ABC):
    """One wire generation; see the module's docstring. Subclasses set the fields."""

    name = ""
    #: What an event's JSON starts with, up to the value of its name.
    opening = '{"name":'
    name_limit = MAX_NAME_LENGTH_TRACK
    event_id_limit = 1 << 30
    #: The optional text fields an event carries: (key, what precedes the value, max length).
    fields: tuple[tuple[str, str, int], ...] = ()
    #: Whether ``anonymizeVisitorIds`` is sent.
    anonymize = False
    #: Whether ``website_id=`` becomes every event's ``websiteId``.
    sends_website_id = False
    #: Whether ``client_id`` is needed (no other credential authenticates).
    needs_client_id = False

    def __init__(self) -> None:
        # Instance attributes: the serializer reads these for every event, and an
        # instance's own dict answers faster than a lookup through the classes.
        for attribute in ("opening", "name_limit", "event_id_limit", "fields", "anonymize"):
            setattr(self, attribute, getattr(self, attribute))
        self._identity = re.compile(
            "^"
            + re.escape(self.opening)
            + r'("(?:[^"\\]|\\.)*")(?:,"eventId":("(?:[^"\\]|\\.)*"))?'
        )

    @abc.abstractmethod
    def url(self, base: str, client_id: str | None, api_key: str | None, *, batch: bool) -> str:
        """Where a request of one event (``batch=False``) or several goes."""

    def headers(self, api_key: str | None) -> dict[str, str]:
        return {"Content-Type": "application/json", "User-Agent": USER_AGENT}

    def body(self, events: list[str], *, batch: bool) -> bytes:
        """The request body for already-serialized events (ASCII JSON)."""
        text = "[" + ",".join(events) + "]" if batch else events[0]
        return text.encode("ascii")

    @abc.abstractmethod
    def read(
        self, payload: dict[str, Any], status: int, text: str, count: int, *, batch: bool
    ) -> Outcome:
        """What a 2xx answer with a JSON object means for the ``count`` events it carried."""

    def identity(self, body: str) -> tuple[str, str]:
        """The name and id of an event this protocol serialized, read from its front."""
        match = self._identity.match(body)
        if match is None:
            return "", ""
        name, event_id = match.groups()
        try:
            return json.loads(name), json.loads(event_id) if event_id else ""
        except ValueError:
            return "", ""


_ID_FIELDS = (
    ("anonymousId", ',"anonymousId":', MAX_ID_LENGTH),
    ("sessionId", ',"sessionId":', MAX_ID_LENGTH),
)


class Track(Protocol):
    """``POST /track``: a Bearer API key or a ``website_id`` query parameter; real statuses."""

    name = "track"
    fields = (
        *_ID_FIELDS,
        ("namespace", ',"namespace":', MAX_NAMESPACE_LENGTH),
        ("source", ',"source":', MAX_SOURCE_LENGTH),
        ("websiteId", ',"websiteId":', MAX_WEBSITE_ID_LENGTH),
        ("profileId", ',"profileId":', MAX_ID_LENGTH),
    )
    anonymize = True
    sends_website_id = True

    def url(self, base: str, client_id: str | None, api_key: str | None, *, batch: bool) -> str:
        if api_key:
            return f"{base}/track"
        return f"{base}/track?website_id={quote(client_id or '', safe='')}"

    def headers(self, api_key: str | None) -> dict[str, str]:
        headers = super().headers(api_key)
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        return headers

    def read(
        self, payload: dict[str, Any], status: int, text: str, count: int, *, batch: bool
    ) -> Outcome:
        verdict = payload.get("status")
        if verdict == "success":
            return Outcome(SUCCESS, errors=[None] * count)
        if verdict == "error" or payload.get("success") is False:
            return Outcome(FAIL, _message(payload) or "Unknown error from server")
        return _not_understood(status, text)


class Legacy(Protocol):
    """``POST /`` and ``/batch`` with a ``client_id`` query parameter; errors in a 200."""

    name = "legacy"
    opening = '{"type":"custom","name":'
    name_limit = MAX_NAME_LENGTH_LEGACY
    event_id_limit = MAX_EVENT_ID_LENGTH_LEGACY
    fields = _ID_FIELDS
    needs_client_id = True

    def url(self, base: str, client_id: str | None, api_key: str | None, *, batch: bool) -> str:
        path = "/batch" if batch else "/"
        return f"{base}{path}?client_id={quote(client_id or '', safe='')}"

    def read(
        self, payload: dict[str, Any], status: int, text: str, count: int, *, batch: bool
    ) -> Outcome:
        verdict = payload.get("status")
        if verdict == "error":
            message = _message(payload) or "Unknown error from server"
            if message == "Payload too large" or message == "Batch too large":
                return Outcome(SPLIT, message)
            return Outcome(FAIL, message)
        if verdict != "success":
            return _not_understood(status, text)
        if not batch:
            return Outcome(SUCCESS, errors=[None])
        results = payload.get("results")
        if not isinstance(results, list) or len(results) != count:
            return Outcome(SUCCESS, errors=[None] * count)
        errors: list[str | None] = []
        for result in results:
            if isinstance(result, dict) and result.get("status") not in (None, "success"):
                errors.append(_message(result) or "Unknown error from server")
            else:
                errors.append(None)
        return Outcome(SUCCESS, errors=errors)


#: Every protocol ``protocol=`` accepts, by name.
PROTOCOLS: dict[str, Protocol] = {p.name: p for p in (Track(), Legacy())}


@dataclass(frozen=True)
class Wire:
    """Requests of one protocol for one set of credentials."""

    api_url: str
    protocol: Protocol
    client_id: str | None = None
    api_key: str | None = field(default=None, repr=False)

    def url(self, *, batch: bool) -> str:
        return self.protocol.url(
            self.api_url.rstrip("/"), self.client_id, self.api_key, batch=batch
        )

    def headers(self) -> dict[str, str]:
        return self.protocol.headers(self.api_key)

    def body(self, events: list[str], *, batch: bool) -> bytes:
        return self.protocol.body(events, batch=batch)

    def interpret(
        self, status: int, text: str, headers: dict[str, str], count: int, *, batch: bool
    ) -> Outcome:
        """Read one answer for a request that carried ``count`` events."""
        if status in RETRYABLE_STATUSES or 500 <= status < 600:
            return Outcome(
                RETRY,
                _http_message(status, text),
                retry_after=parse_retry_after(headers.get("retry-after")),
            )
        if status == 413:
            return Outcome(SPLIT, _http_message(status, text))
        if 300 <= status < 400:
            location = headers.get("location")
            where = f"a redirect to {location!r}" if location else "a redirect without a Location"
            return Outcome(
                RETRY,
                f"HTTP {status}: {where}; redirects are not followed, "
                f"so point api_url at the final address (now {self.api_url!r})",
                foreign=True,
            )
        if 400 <= status < 500:
            return Outcome(FAIL, _http_message(status, text) + self._hint(status, text))
        payload = _json(text)
        if not 200 <= status < 300 or not isinstance(payload, dict):
            return _not_understood(status, text)
        return self.protocol.read(payload, status, text, count, batch=batch)

    def _hint(self, status: int, text: str) -> str:
        """The likely cause of a refusal that is the caller's to fix, in parentheses."""
        detail = _message(_json(text)) or ""
        path = urlsplit(self.api_url).path.rstrip("/")
        if status == 404 and path:
            return (
                f" (api_url is the base address without a path, such as {DEFAULT_API_URL}; "
                f"this one ends in {path!r})"
            )
        if status == 404 and "website" in detail.lower():
            return " (check client_id or website_id: no such website)"
        if status == 403:
            return " (check api_key: it must exist and carry the track:events scope)"
        if status == 401:
            return " (pass api_key=... or client_id=...)"
        return ""


#: How much of an answer's body a message quotes.
QUOTED_BYTES = 80


def quote_body(text: str) -> str:
    """The first bytes of an answer's body, for a message."""
    if not text.strip():
        return "an empty body"
    cut = text[:QUOTED_BYTES]
    return f"{cut!r}{'...' if len(text) > QUOTED_BYTES else ''}"


def _not_understood(status: int, text: str) -> Outcome:
    """An answer that is not the server's: the events are not delivered yet."""
    return Outcome(
        RETRY,
        f"HTTP {status} with an answer that is not Databuddy's ({quote_body(text)}); "
        "a proxy or captive portal between this process and api_url?",
        foreign=True,
    )


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _message(payload: Any) -> str | None:
    if isinstance(payload, dict):
        for key in ("message", "error"):
            value = payload.get(key)
            if isinstance(value, str) and value:
                return value
    return None


def _http_message(status: int, text: str) -> str:
    """``HTTP <status>: <the server's message>``, or the reason and the body's first bytes."""
    detail = _message(_json(text))
    if detail:
        return f"HTTP {status}: {detail}"
    reason = _REASONS.get(status, "Error")
    return f"HTTP {status}: {reason}" + (f" ({quote_body(text)})" if text.strip() else "")


_REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    408: "Request Timeout",
    413: "Payload Too Large",
    425: "Too Early",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date).

    Zero, negative and past values read as 0 and absurd ones as infinity: the
    retry policy clamps both (:meth:`~databuddy_otel._wire.delivery.RetryPolicy.backoff`).
    """
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        seconds = when.timestamp() - time.time()
    if seconds != seconds:
        return None
    return max(0.0, seconds)

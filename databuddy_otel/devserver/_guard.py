"""Who may talk to the dev server from a developer's browser: the ``Host`` names it
answers to, and the cross-origin writes it accepts.

A web page cannot read the server's answers (no CORS), but two tricks would let one
write to it or read it anyway, and this module refuses both:

- **DNS rebinding**: a page on ``evil.example`` makes its own name resolve to
  127.0.0.1, after which its requests reach the server with ``Host: evil.example``.
  Only the server's own names are answered (:meth:`Guard.check_host`, 421 otherwise).
- **Simple cross-origin writes**: a page may POST a form or a ``text/plain`` fetch to
  any address without asking first. A write that carries a foreign ``Origin`` must
  therefore be ``Content-Type: application/json``, which a browser sends cross-origin
  only after a CORS preflight that this server never grants (:meth:`Guard.check_write`,
  403 otherwise). SDKs and curl send no ``Origin`` and are not affected.

No sockets here: the handler asks, and sends the :class:`Denial` it gets back.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from email.message import Message

#: Names every server answers to, whatever it is bound to.
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")
_HOST_NAME = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*")
_PORT = re.compile(r"[0-9]{1,5}")
#: How much of a refused Host or Origin the error message repeats.
_MAX_SHOWN = 200


@dataclass(frozen=True)
class Denial:
    """Why a request is refused before it is looked at: the status and the message."""

    status: int
    message: str


def split_host(value: str) -> tuple[str, int | None] | None:
    """``(host, port)`` of a ``Host`` value or an origin's authority; None if malformed.

    The host is lower-cased without a trailing dot; an IPv6 literal keeps its brackets
    and is written in its compressed form, so ``[0:0::1]`` and ``[::1]`` compare equal.
    """
    value = value.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return None
        try:
            host = f"[{ipaddress.IPv6Address(value[1:end]).compressed}]"
        except ValueError:
            return None
        rest = value[end + 1 :]
    else:
        host, colon, port_text = value.partition(":")
        rest = colon + port_text
        if host.endswith("."):
            host = host[:-1]
        if not _HOST_NAME.fullmatch(host):
            return None
    if not rest or rest == ":":
        return host, None
    if not rest.startswith(":") or not _PORT.fullmatch(rest[1:]) or int(rest[1:]) > 65535:
        return None
    return host, int(rest[1:])


def allowed_host(entry: str) -> tuple[str, int | None]:
    """An ``allowed_hosts`` entry (``name``, ``name:port``, an IP, ``[v6]:port``) parsed.

    Raises ValueError naming the entry when it is not a host name or address.
    """
    text = entry.strip()
    if text.count(":") > 1 and not text.startswith("["):
        text = f"[{text}]"  # a bare IPv6 address such as ::1
    parsed = split_host(text) if "/" not in text else None
    if parsed is None:
        raise ValueError(
            f"allowed_hosts entries are host names or addresses, optionally with :port "
            f"(such as 'devbox.local' or 'localhost:8080'), not {entry!r}"
        )
    return parsed


class Guard:
    """The Host allow-list and the cross-origin write rule of one listening server.

    It answers to :data:`LOOPBACK_NAMES`, to ``bound_host`` and to each of
    ``allowed_hosts``, each with no port or ``port`` (an entry that names a port allows
    only that one, as behind a port mapping); bound to every interface (``0.0.0.0`` or
    ``::``) it also answers to any IP address, which no DNS rebinding can produce.
    """

    def __init__(self, *, bound_host: str, port: int, allowed_hosts: Iterable[str] = ()) -> None:
        self._port = port
        names = set(LOOPBACK_NAMES)
        exact: set[tuple[str, int]] = set()
        entries = [*allowed_hosts]
        with contextlib.suppress(ValueError):  # an address no Host header could name
            allowed_host(bound_host)
            entries.append(bound_host)
        for entry in entries:
            host, entry_port = allowed_host(entry)
            if entry_port is None:
                names.add(host)
            else:
                exact.add((host, entry_port))
        self._names = frozenset(names)
        self._exact = frozenset(exact)
        self._any_address = _is_unspecified(bound_host)

    def allows(self, host: str, port: int | None) -> bool:
        """Whether a request naming ``host`` (and ``port``) is for this server."""
        if port is not None and (host, port) in self._exact:
            return True
        if port is not None and port != self._port:
            return False
        return host in self._names or (self._any_address and _is_address(host))

    def check_host(self, headers: Message) -> Denial | None:
        """None when the ``Host`` header names this server, or when there is none."""
        values = headers.get_all("Host") or []
        if not values:
            return None  # HTTP/1.0; browsers always send one
        if len(values) > 1:
            return Denial(400, "A request may carry only one Host header")
        parsed = split_host(values[0])
        if parsed is not None and self.allows(*parsed):
            return None
        names = ", ".join(sorted(self._names))
        return Denial(
            421,
            f"Host {values[0][:_MAX_SHOWN]!r} is not a name of this dev server (it answers"
            f" to {names}); add the name with DevServer(allowed_hosts=[...]) or"
            " --allowed-hosts. Other names are refused so that a web page cannot reach"
            " the server through DNS rebinding",
        )

    def check_write(self, headers: Message) -> Denial | None:
        """None unless a write from a foreign ``Origin`` is not ``application/json``."""
        origins = headers.get_all("Origin") or []
        if not origins:
            return None
        if len(origins) == 1 and _same_origin(origins[0], headers.get("Host")):
            return None
        media_type = (headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
        if media_type == "application/json":
            return None
        return Denial(
            403,
            f"Cross-origin write from {origins[0][:_MAX_SHOWN]!r} refused: it must be sent"
            " with Content-Type: application/json, which a web page cannot send to this"
            " server (it needs a CORS preflight, and this server grants none)",
        )


def _same_origin(origin: str, host_header: str | None) -> bool:
    """Whether ``origin`` is ``http://`` plus the authority the ``Host`` header names."""
    scheme, separator, authority = origin.strip().partition("://")
    if host_header is None or not separator or scheme.lower() != "http":
        return False
    own, theirs = split_host(host_header), split_host(authority)
    if own is None or theirs is None:
        return False
    return (own[0], own[1] or 80) == (theirs[0], theirs[1] or 80)


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _is_unspecified(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_unspecified
    except ValueError:
        return False

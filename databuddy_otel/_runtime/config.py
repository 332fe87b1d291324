"""Client settings: arguments, environment fallbacks, and their checks.

Every mistake is caught here, at construction, with a message naming the
argument (and environment variable) and how to fix it; nothing later raises.

Credentials follow the Python ecosystem's habit (Sentry, PostHog): with none
given and none in the environment, the client is disabled and says so once at
WARNING, so ``Databuddy()`` at import time never breaks ``manage.py check`` or
a test run on a machine without them. Credentials that are given but blank are
a ``ValueError``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Optional

from databuddy_otel._event.limits import MAX_EVENTS_PER_REQUEST
from databuddy_otel._wire.protocol import DEFAULT_API_URL, PROTOCOLS, Protocol, Wire
from databuddy_otel.models import Transport, Undelivered, Verify

QUEUE_FULL_POLICIES = ("block", "drop")
SPOOL_FSYNC_POLICIES = ("interval", "always", "never")
#: Requests in flight at once by default: measured in bench/ (docs/benchmarks.md).
DEFAULT_MAX_CONCURRENT_REQUESTS = 8
#: Default bound of one process's spool files.
DEFAULT_SPOOL_MAX_BYTES = 64 * 1024 * 1024
#: Seconds for one request (``DATABUDDY_TIMEOUT``) and for a group's retries
#: (``DATABUDDY_RETRY_DEADLINE``) when neither argument nor variable says otherwise.
DEFAULT_TIMEOUT = 10.0
DEFAULT_RETRY_DEADLINE = 30.0

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
_warned_no_credentials = False

#: A middleware returns the event (possibly changed) or ``None`` to drop it.
Middleware = Callable[[dict[str, Any]], Optional[dict[str, Any]]]


def env_flag(name: str, environ: Mapping[str, str] = os.environ) -> bool:
    """A boolean environment variable; an unrecognised value is a ``ValueError``."""
    value = environ.get(name, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(
        f"{name}={environ[name]!r} is not a boolean: use 1/0, true/false, yes/no or on/off"
    )


def env_seconds(name: str, default: float, environ: Mapping[str, str] = os.environ) -> float:
    """A positive number of seconds from the environment; ``default`` when unset or blank."""
    text = environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0 or value == float("inf"):
        raise ValueError(f"{name}={environ[name]!r} is not a positive number of seconds")
    return value


@dataclass(frozen=True)
class Settings:
    """Resolved, checked client settings (units: seconds unless named ``_ms``)."""

    client_id: str | None
    api_key: str | None = field(repr=False)
    api_url: str
    protocol: str
    website_id: str | None
    namespace: str | None
    source: str | None
    debug: bool
    enable_batching: bool
    batch_size: int
    batch_timeout_ms: float
    max_queue_size: int
    max_concurrent_requests: int
    enable_deduplication: bool
    max_deduplication_cache_size: int
    timeout: float
    retry_deadline: float
    disabled: bool
    on_queue_full: str
    shutdown_timeout: float
    verify: Verify
    spool_dir: str | None = None
    spool_max_bytes: int = DEFAULT_SPOOL_MAX_BYTES
    spool_fsync: str = "interval"
    on_undelivered: Callable[[list[Undelivered]], None] | None = None
    transport: Transport | None = None

    @property
    def wire_protocol(self) -> Protocol:
        """The strategy object of ``protocol``."""
        return PROTOCOLS[self.protocol]

    def wire(self) -> Wire:
        """Requests of this protocol with these credentials."""
        return Wire(self.api_url, self.wire_protocol, self.client_id, self.api_key)

    @property
    def event_defaults(self) -> dict[str, str]:
        """Fields every event gets unless it sets them."""
        pairs = (
            ("namespace", self.namespace),
            ("source", self.source),
            ("websiteId", self.website_id if self.wire_protocol.sends_website_id else None),
        )
        return {key: value for key, value in pairs if value is not None}


def resolve(
    *,
    client_id: str | None = None,
    api_key: str | None = None,
    api_url: str | None = None,
    protocol: str = "track",
    website_id: str | None = None,
    namespace: str | None = None,
    source: str | None = None,
    debug: bool | None = None,
    enable_batching: bool = True,
    batch_size: int = 10,
    batch_timeout: float = 2000,
    max_queue_size: int = 1000,
    max_concurrent_requests: int = DEFAULT_MAX_CONCURRENT_REQUESTS,
    enable_deduplication: bool = True,
    max_deduplication_cache_size: int = 10_000,
    timeout: float | None = None,
    retry_deadline: float | None = None,
    disabled: bool = False,
    on_queue_full: str = "block",
    shutdown_timeout: float = 5.0,
    verify: Verify = True,
    spool_dir: str | os.PathLike[str] | None = None,
    spool_max_bytes: int = DEFAULT_SPOOL_MAX_BYTES,
    spool_fsync: str = "interval",
    on_undelivered: Callable[[list[Undelivered]], None] | None = None,
    transport: Transport | None = None,
    environ: Mapping[str, str] = os.environ,
) -> Settings:
    """Check the client's arguments, filling gaps from ``DATABUDDY_*`` variables."""
    log = logging.getLogger("databuddy")
    client_id = _credential("client_id", client_id, "DATABUDDY_CLIENT_ID", environ)
    api_key = _credential("api_key", api_key, "DATABUDDY_API_KEY", environ)
    api_url = api_url or environ.get("DATABUDDY_API_URL", "").strip() or DEFAULT_API_URL
    if debug is None:
        debug = env_flag("DATABUDDY_DEBUG", environ)
    disabled = bool(disabled) or env_flag("DATABUDDY_DISABLED", environ)
    if spool_dir is None:
        spool_dir = environ.get("DATABUDDY_SPOOL_DIR", "").strip() or None
    if timeout is None:
        timeout = env_seconds("DATABUDDY_TIMEOUT", DEFAULT_TIMEOUT, environ)
    if retry_deadline is None:
        retry_deadline = env_seconds("DATABUDDY_RETRY_DEADLINE", DEFAULT_RETRY_DEADLINE, environ)
    if not (client_id or api_key or disabled):
        _warn_disabled(log)
        disabled = True
    if protocol not in PROTOCOLS:
        names = " or ".join(repr(name) for name in PROTOCOLS)
        raise ValueError(f"protocol must be {names}, not {protocol!r}")
    if PROTOCOLS[protocol].needs_client_id and not (client_id or disabled):
        raise ValueError(
            f"protocol={protocol!r} needs client_id=... (or DATABUDDY_CLIENT_ID): "
            f"the {protocol} endpoints authenticate with the client id only"
        )
    if not isinstance(api_url, str) or not api_url.startswith(("http://", "https://")):
        raise ValueError(
            f"api_url (or DATABUDDY_API_URL) must start with http:// or https://: {api_url!r}"
        )
    if on_queue_full not in QUEUE_FULL_POLICIES:
        raise ValueError(f"on_queue_full must be 'block' or 'drop', not {on_queue_full!r}")
    if spool_fsync not in SPOOL_FSYNC_POLICIES:
        raise ValueError(
            f"spool_fsync must be 'interval', 'always' or 'never', not {spool_fsync!r}"
        )
    _positive("batch_timeout", batch_timeout, "milliseconds")
    _positive("timeout", timeout, "seconds")
    _positive("retry_deadline", retry_deadline, "seconds")
    _positive("shutdown_timeout", shutdown_timeout, "seconds", allow_zero=True)
    for name, value in (
        ("batch_size", batch_size),
        ("max_queue_size", max_queue_size),
        ("max_concurrent_requests", max_concurrent_requests),
        ("max_deduplication_cache_size", max_deduplication_cache_size),
        ("spool_max_bytes", spool_max_bytes),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, not {value!r}")
    if batch_timeout < 10:
        log.warning(
            "batch_timeout=%r is in milliseconds, as in the Node SDK: events wait at most "
            "%gms before they are sent (for %g seconds, pass %g)",
            batch_timeout,
            batch_timeout,
            batch_timeout,
            batch_timeout * 1000,
        )
    if verify is not True:
        log.warning(
            "TLS certificate verification is %s for Databuddy requests",
            "off" if verify is False else f"using CA bundle {verify!r}",
        )
    batch_size = max(1, min(batch_size, MAX_EVENTS_PER_REQUEST))
    return Settings(
        client_id=client_id,
        api_key=api_key,
        api_url=api_url,
        protocol=protocol,
        website_id=website_id,
        namespace=namespace,
        source=source,
        debug=bool(debug),
        enable_batching=bool(enable_batching),
        batch_size=batch_size,
        batch_timeout_ms=float(batch_timeout),
        max_queue_size=max(max_queue_size, batch_size),
        max_concurrent_requests=max_concurrent_requests,
        enable_deduplication=bool(enable_deduplication),
        max_deduplication_cache_size=max_deduplication_cache_size,
        timeout=float(timeout),
        retry_deadline=float(retry_deadline),
        disabled=disabled,
        on_queue_full=on_queue_full,
        shutdown_timeout=float(shutdown_timeout),
        verify=verify,
        spool_dir=None if spool_dir is None else os.fspath(spool_dir),
        spool_max_bytes=spool_max_bytes,
        spool_fsync=spool_fsync,
        on_undelivered=on_undelivered,
        transport=transport,
    )


def _credential(name: str, value: object, variable: str, environ: Mapping[str, str]) -> str | None:
    """A credential trimmed, from the argument or the environment; blank given is an error."""
    if value is None:
        return environ.get(variable, "").strip() or None
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string, not {type(value).__name__}")
    value = value.strip()
    if not value:
        raise ValueError(
            f"{name} is blank; pass the value from your Databuddy dashboard, "
            f"or leave it out (and set {variable}) "
        )
    return value


def _warn_disabled(log: logging.Logger) -> None:
    global _warned_no_credentials
    if not _warned_no_credentials:
        _warned_no_credentials = True
        log.warning(
            "Databuddy is disabled: no credentials. Pass client_id=... or api_key=..., "
            "or set DATABUDDY_CLIENT_ID or DATABUDDY_API_KEY; events are accepted and dropped"
        )


def _positive(name: str, value: Any, unit: str, *, allow_zero: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value == value
    if not ok or value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{name} must be a positive number of {unit}, not {value!r}")

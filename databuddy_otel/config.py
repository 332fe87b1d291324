"""Client settings: arguments, environment fallbacks, and their checks.

Every mistake is caught here, at construction, with a message naming the
argument (and environment variable) and how to fix it; nothing later raises.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Optional

from databuddy_otel.limits import MAX_EVENTS_PER_REQUEST
from databuddy_otel.models import Undelivered
from databuddy_otel.transport import Transport, Verify

DEFAULT_API_URL = "https://basket.databuddy.cc"
PROTOCOLS = ("track", "legacy")
QUEUE_FULL_POLICIES = ("block", "drop")
_TRUE = {"1", "true", "yes", "on"}

#: A middleware returns the event (possibly changed) or ``None`` to drop it.
Middleware = Callable[[dict[str, Any]], Optional[dict[str, Any]]]


def env_flag(name: str, environ: Mapping[str, str] = os.environ) -> bool:
    return environ.get(name, "").strip().lower() in _TRUE


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
    enable_deduplication: bool
    max_deduplication_cache_size: int
    timeout: float
    retry_deadline: float
    disabled: bool
    on_queue_full: str
    shutdown_timeout: float
    verify: Verify
    on_undelivered: Callable[[list[Undelivered]], None] | None = None
    transport: Transport | None = None

    @property
    def legacy(self) -> bool:
        return self.protocol == "legacy"


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
    enable_deduplication: bool = True,
    max_deduplication_cache_size: int = 10_000,
    timeout: float = 10.0,
    retry_deadline: float = 30.0,
    disabled: bool = False,
    on_queue_full: str = "block",
    shutdown_timeout: float = 5.0,
    verify: Verify = True,
    on_undelivered: Callable[[list[Undelivered]], None] | None = None,
    transport: Transport | None = None,
    environ: Mapping[str, str] = os.environ,
) -> Settings:
    """Check the client's arguments, filling gaps from ``DATABUDDY_*`` variables."""
    client_id = client_id or environ.get("DATABUDDY_CLIENT_ID") or None
    api_key = api_key or environ.get("DATABUDDY_API_KEY") or None
    api_url = api_url or environ.get("DATABUDDY_API_URL") or DEFAULT_API_URL
    if debug is None:
        debug = env_flag("DATABUDDY_DEBUG", environ)
    disabled = disabled or env_flag("DATABUDDY_DISABLED", environ)
    if not (client_id or api_key or disabled):
        raise ValueError(
            "Databuddy needs credentials: pass client_id=... (or set DATABUDDY_CLIENT_ID) "
            "or api_key=... (or set DATABUDDY_API_KEY)"
        )
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be 'track' or 'legacy', not {protocol!r}")
    if protocol == "legacy" and not (client_id or disabled):
        raise ValueError(
            "protocol='legacy' needs client_id=... (or DATABUDDY_CLIENT_ID): "
            "the legacy endpoints authenticate with the client id only"
        )
    if not api_url.startswith(("http://", "https://")):
        raise ValueError(
            f"api_url (or DATABUDDY_API_URL) must start with http:// or https://: {api_url!r}"
        )
    if on_queue_full not in QUEUE_FULL_POLICIES:
        raise ValueError(f"on_queue_full must be 'block' or 'drop', not {on_queue_full!r}")
    _positive("batch_timeout", batch_timeout, "milliseconds")
    _positive("timeout", timeout, "seconds")
    _positive("retry_deadline", retry_deadline, "seconds")
    _positive("shutdown_timeout", shutdown_timeout, "seconds", allow_zero=True)
    for name, value in (
        ("batch_size", batch_size),
        ("max_queue_size", max_queue_size),
        ("max_deduplication_cache_size", max_deduplication_cache_size),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, not {value!r}")
    if verify is not True:
        logging.getLogger("databuddy").warning(
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
        enable_batching=enable_batching,
        batch_size=batch_size,
        batch_timeout_ms=float(batch_timeout),
        max_queue_size=max(max_queue_size, batch_size),
        enable_deduplication=enable_deduplication,
        max_deduplication_cache_size=max_deduplication_cache_size,
        timeout=float(timeout),
        retry_deadline=float(retry_deadline),
        disabled=disabled,
        on_queue_full=on_queue_full,
        shutdown_timeout=float(shutdown_timeout),
        verify=verify,
        on_undelivered=on_undelivered,
        transport=transport,
    )


def _positive(name: str, value: Any, unit: str, *, allow_zero: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value == value
    if not ok or value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{name} must be a positive number of {unit}, not {value!r}")

"""The settings model: every option's default, environment variable and check, once.

:class:`Settings` is the one place an option is defined: its field holds the
default and, in its metadata, the ``DATABUDDY_*`` variable that fills it when
the argument is left out (or ``None``). :func:`resolve` turns keyword arguments
into checked settings; every mistake is caught there, at construction, with a
message naming the argument (and variable) and how to fix it; nothing later
raises. :class:`ConnectionOptions` and :class:`ClientOptions` type the keyword
arguments of the exporters and of the client from the same names (a test holds
them equal to the fields).

Credentials follow the Python ecosystem's habit (Sentry, PostHog): with none
given and none in the environment, the client is disabled and says so once at
WARNING, so ``Databuddy()`` at import time never breaks ``manage.py check`` or
a test run on a machine without them. Credentials that are given but blank are
a ``ValueError``.
"""

from __future__ import annotations

import difflib
import logging
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Optional, Union

from typing_extensions import Literal, TypedDict

from databuddy_otel._event.limits import MAX_EVENTS_PER_REQUEST
from databuddy_otel._wire.protocol import DEFAULT_API_URL, PROTOCOLS, Protocol, Wire
from databuddy_otel.models import Transport, Undelivered, Verify

QUEUE_FULL_POLICIES = ("block", "drop")
SPOOL_FSYNC_POLICIES = ("interval", "always", "never")
ProtocolName = Literal["track", "legacy"]
QueueFullPolicy = Literal["block", "drop"]
SpoolFsync = Literal["interval", "always", "never"]
OnUndelivered = Callable[[list[Undelivered]], None]
#: A middleware returns the event (possibly changed) or ``None`` to drop it.
Middleware = Callable[[dict[str, Any]], Optional[dict[str, Any]]]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
_warned_no_credentials = False


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


def env_seconds(name: str, environ: Mapping[str, str] = os.environ) -> float | None:
    """A positive number of seconds from the environment; ``None`` when unset or blank."""
    text = environ.get(name, "").strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0 or value == float("inf"):
        raise ValueError(f"{name}={environ[name]!r} is not a positive number of seconds")
    return value


def env_text(name: str, environ: Mapping[str, str] = os.environ) -> str | None:
    """A variable's trimmed text; ``None`` when unset or blank."""
    return environ.get(name, "").strip() or None


def _option(default: Any, env: str | None = None, read: Callable[..., Any] = env_text) -> Any:
    """A settings field: its default and the variable that fills it when left out."""
    return field(default=default, metadata={"env": env, "read": read} if env else {})


@dataclass(frozen=True)
class Settings:
    """Resolved, checked client settings (seconds unless the name says otherwise).

    The defaults here are the documented defaults of ``Databuddy(...)``.
    """

    client_id: Optional[str] = _option(None, "DATABUDDY_CLIENT_ID")
    api_key: Optional[str] = field(
        default=None, repr=False, metadata={"env": "DATABUDDY_API_KEY", "read": env_text}
    )
    api_url: str = _option(DEFAULT_API_URL, "DATABUDDY_API_URL")
    protocol: str = "track"
    website_id: Optional[str] = None
    namespace: Optional[str] = None
    source: Optional[str] = None
    debug: bool = _option(False, "DATABUDDY_DEBUG", env_flag)
    enable_batching: bool = True
    batch_size: int = 10
    #: Milliseconds, as in the Node SDK.
    batch_timeout: float = 2000.0
    max_queue_size: int = 1000
    #: Requests in flight at once: measured in bench/ (docs/benchmarks.md).
    max_concurrent_requests: int = 8
    enable_deduplication: bool = True
    max_deduplication_cache_size: int = 10_000
    timeout: float = _option(10.0, "DATABUDDY_TIMEOUT", env_seconds)
    retry_deadline: float = _option(30.0, "DATABUDDY_RETRY_DEADLINE", env_seconds)
    disabled: bool = _option(False, "DATABUDDY_DISABLED", env_flag)
    on_queue_full: str = "block"
    shutdown_timeout: float = 5.0
    verify: Verify = True
    spool_dir: Optional[str] = _option(None, "DATABUDDY_SPOOL_DIR")
    spool_max_bytes: int = 64 * 1024 * 1024
    spool_fsync: str = "interval"
    on_undelivered: Optional[OnUndelivered] = None
    transport: Optional[Transport] = None

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


class ConnectionOptions(TypedDict, total=False):
    """The options an exporter takes; each is a :class:`Settings` field."""

    client_id: Optional[str]
    api_key: Optional[str]
    api_url: Optional[str]
    protocol: Optional[ProtocolName]
    website_id: Optional[str]
    namespace: Optional[str]
    source: Optional[str]
    debug: Optional[bool]
    timeout: Optional[float]
    retry_deadline: Optional[float]
    enable_deduplication: Optional[bool]
    max_deduplication_cache_size: Optional[int]
    disabled: Optional[bool]
    on_undelivered: Optional[OnUndelivered]
    verify: Optional[Verify]
    transport: Optional[Transport]


class ClientOptions(ConnectionOptions, total=False):
    """The options ``Databuddy(...)`` takes besides ``logger`` and ``middleware``."""

    enable_batching: Optional[bool]
    batch_size: Optional[int]
    batch_timeout: Optional[float]
    max_queue_size: Optional[int]
    max_concurrent_requests: Optional[int]
    on_queue_full: Optional[QueueFullPolicy]
    shutdown_timeout: Optional[float]
    spool_dir: Union[str, os.PathLike[str], None]
    spool_max_bytes: Optional[int]
    spool_fsync: Optional[SpoolFsync]


FIELDS = {f.name: f for f in fields(Settings)}
#: Every keyword ``Databuddy(...)`` takes: the settings, ``logger`` and ``middleware``.
CLIENT_ARGUMENTS = (*FIELDS, "logger", "middleware")
DEFAULTS: Settings = Settings()


def resolve(
    options: Mapping[str, Any],
    *,
    owner: str = "Databuddy()",
    allowed: Any = FIELDS,
    environ: Mapping[str, str] = os.environ,
) -> Settings:
    """Check keyword arguments, filling gaps (``None``) from ``DATABUDDY_*`` variables."""
    check_names(options, allowed, owner)
    values: dict[str, Any] = {}
    for name, spec in FIELDS.items():
        value = options.get(name)
        if value is None and "env" in spec.metadata:
            value = spec.metadata["read"](spec.metadata["env"], environ)
        values[name] = spec.default if value is None else value
    for name, variable in (("client_id", "DATABUDDY_CLIENT_ID"), ("api_key", "DATABUDDY_API_KEY")):
        values[name] = _credential(name, values[name], variable, options.get(name) is not None)
    values["disabled"] = bool(options.get("disabled")) or env_flag("DATABUDDY_DISABLED", environ)
    if values["spool_dir"] is not None:
        values["spool_dir"] = os.fspath(values["spool_dir"])
    _check(values)
    if not (values["client_id"] or values["api_key"] or values["disabled"]):
        _warn_disabled()
        values["disabled"] = True
    values["batch_size"] = min(values["batch_size"], MAX_EVENTS_PER_REQUEST)
    values["max_queue_size"] = max(values["max_queue_size"], values["batch_size"])
    for name in ("debug", "enable_batching", "enable_deduplication"):
        values[name] = bool(values[name])
    for name in ("batch_timeout", "timeout", "retry_deadline", "shutdown_timeout"):
        values[name] = float(values[name])
    return Settings(**values)


def check_names(options: Mapping[str, Any], allowed: Any, owner: str) -> None:
    """A ``TypeError`` naming the closest option for every unknown keyword."""
    unknown = [name for name in options if name not in allowed]
    if not unknown:
        return
    hints = []
    for name in unknown:
        snake = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()
        close = [snake] if snake in allowed else difflib.get_close_matches(name, list(allowed), 1)
        hints.append(f"{name} (did you mean {close[0]}?)" if close else name)
    raise TypeError(
        f"{owner} got unexpected option(s) {', '.join(hints)}; its options are {', '.join(allowed)}"
    )


def _check(values: dict[str, Any]) -> None:
    protocol = values["protocol"]
    if protocol not in PROTOCOLS:
        names = " or ".join(repr(name) for name in PROTOCOLS)
        raise ValueError(f"protocol must be {names}, not {protocol!r}")
    if PROTOCOLS[protocol].needs_client_id and not (values["client_id"] or values["disabled"]):
        raise ValueError(
            f"protocol={protocol!r} needs client_id=... (or DATABUDDY_CLIENT_ID): "
            f"the {protocol} endpoints authenticate with the client id only"
        )
    api_url = values["api_url"]
    if not isinstance(api_url, str) or not api_url.startswith(("http://", "https://")):
        raise ValueError(
            f"api_url (or DATABUDDY_API_URL) must start with http:// or https://: {api_url!r}"
        )
    _one_of("on_queue_full", values["on_queue_full"], QUEUE_FULL_POLICIES)
    _one_of("spool_fsync", values["spool_fsync"], SPOOL_FSYNC_POLICIES)
    _positive("batch_timeout", values["batch_timeout"], "milliseconds")
    _positive("timeout", values["timeout"], "seconds")
    _positive("retry_deadline", values["retry_deadline"], "seconds")
    _positive("shutdown_timeout", values["shutdown_timeout"], "seconds", allow_zero=True)
    for name in (
        "batch_size",
        "max_queue_size",
        "max_concurrent_requests",
        "max_deduplication_cache_size",
        "spool_max_bytes",
    ):
        value = values[name]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, not {value!r}")
    log = logging.getLogger("databuddy")
    batch_timeout = values["batch_timeout"]
    if batch_timeout < 10:
        log.warning(
            "batch_timeout=%r is in milliseconds, as in the Node SDK: events wait at most "
            "%gms before they are sent (for %g seconds, pass %g)",
            batch_timeout,
            batch_timeout,
            batch_timeout,
            batch_timeout * 1000,
        )
    verify = values["verify"]
    if verify is not True:
        log.warning(
            "TLS certificate verification is %s for Databuddy requests",
            "off" if verify is False else f"using CA bundle {verify!r}",
        )


def _credential(name: str, value: object, variable: str, given: bool) -> str | None:
    """A credential trimmed; one given but blank (or not text) is an error."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string, not {type(value).__name__}")
    text = value.strip()
    if not text and given:
        raise ValueError(
            f"{name} is blank; pass the value from your Databuddy dashboard, "
            f"or leave it out (and set {variable}) "
        )
    return text or None


def _warn_disabled() -> None:
    global _warned_no_credentials
    if not _warned_no_credentials:
        _warned_no_credentials = True
        logging.getLogger("databuddy").warning(
            "Databuddy is disabled: no credentials. Pass client_id=... or api_key=..., "
            "or set DATABUDDY_CLIENT_ID or DATABUDDY_API_KEY; events are accepted and dropped"
        )


def _one_of(name: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        names = ", ".join(repr(choice) for choice in choices[:-1])
        raise ValueError(f"{name} must be {names} or {choices[-1]!r}, not {value!r}")


def _positive(name: str, value: Any, unit: str, *, allow_zero: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value == value
    if not ok or value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{name} must be a positive number of {unit}, not {value!r}")

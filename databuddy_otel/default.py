"""The process's default client: ``init()`` once, then ``databuddy_otel.track(...)``.

::

    import databuddy_otel

    databuddy_otel.init(client_id="...")          # or only the DATABUDDY_* variables
    databuddy_otel.track("signup", {"plan": "pro"})

``init()`` takes the options of :class:`~databuddy_otel.Databuddy` and makes the
client every module-level function uses. Without ``init()``, the first of them
builds one from the ``DATABUDDY_*`` environment variables (with none set, a disabled
client that says so once). A ``DatabuddyHandler()`` or ``DatabuddySink()`` built
without a client or options uses this client too, so a ``logging.config.dictConfig``
needs no client object. Explicit ``Databuddy(...)`` clients are unaffected.

The client is flushed at exit like any other; what the client integrates by
itself (Celery's and RQ's work-horse exits, forks, SIGTERM) applies to it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from typing_extensions import Unpack

from databuddy_otel._runtime import config, sdk_log
from databuddy_otel._runtime import integrations as _integrations
from databuddy_otel._runtime.integrations import IntegrationName
from databuddy_otel.client import Databuddy
from databuddy_otel.models import (
    BatchEventInput,
    BatchEventResponse,
    CustomEventInput,
    EventResponse,
    TrackFields,
)

__all__ = ["batch", "flush", "get_client", "init", "integrations", "shutdown", "track"]

_lock = threading.Lock()
_client: Databuddy | None = None
_warned = False
_BUILD_FAILED = "no default client: its settings from the environment are invalid (logged)"


def init(
    *,
    logger: logging.Logger | logging.LoggerAdapter[Any] | sdk_log.Log | None = None,
    middleware: Iterable[config.Middleware] | None = None,
    integrations: Mapping[IntegrationName, bool] | None = None,
    **options: Unpack[config.ClientOptions],
) -> Databuddy:
    """Make the default client from ``options`` (each falls back to its variable).

    ``integrations`` switches what the SDK wires into the process by itself, by name
    (:func:`integrations` lists them): ``{"logging": True}`` makes every logger's
    tagged records events with no handler to add; ``{"sigterm": False}`` leaves
    SIGTERM its default action. The names not given keep their state.

    Calling it again replaces the default client; the previous one is shut down
    (within its ``shutdown_timeout``), so its queued events are sent first.

    Raises:
        ValueError, TypeError: A bad option, as for ``Databuddy(...)``, or an unknown
            integration name (nothing is changed then).
    """
    global _client
    _integrations.switch(integrations or {})  # checks every switch before changing any
    client = Databuddy(logger=logger, middleware=middleware, **options)
    with _lock:
        previous, _client = _client, client
    if previous is not None:
        previous.shutdown()
    return client


def integrations() -> dict[str, bool]:
    """Each integration the SDK has and whether it is on: ``sigterm``,
    ``multiprocessing``, ``fork``, ``rq`` and ``celery`` (on unless switched off),
    ``logging`` (off unless switched on)."""
    return _integrations.current()


def install(client: Databuddy | None, *, only_if: Databuddy | None = None) -> None:
    """Make ``client`` the default client as it is (``None``: no default client), without
    shutting the previous one down; with ``only_if``, only while that one is the default.
    For test helpers (:func:`databuddy_otel.testing.capture_events`)."""
    global _client
    with _lock:
        if only_if is None or _client is only_if:
            _client = client


def get_client() -> Databuddy:
    """The default client; built from the environment if ``init()`` was not called."""
    global _client
    client = _client
    if client is None:
        with _lock:
            if _client is None:
                _client = Databuddy()
            client = _client
    return client


def _built() -> Databuddy | None:
    """:func:`get_client` for the functions that never raise: ``None`` (logged once)
    when the environment holds a bad setting."""
    global _warned
    try:
        return get_client()
    except Exception as exc:
        if not _warned:
            _warned = True
            logging.getLogger("databuddy").error(
                "Databuddy: the default client cannot be built from the environment: %s", exc
            )
        return None


def current() -> Databuddy | None:
    """The default client if there is one yet (for front doors built without a client)."""
    return _client


def track(
    event: CustomEventInput | Mapping[str, Any] | str | None = None,
    properties: Mapping[str, Any] | None = None,
    /,
    **fields: Unpack[TrackFields],
) -> EventResponse:
    """:meth:`Databuddy.track` on the default client; never raises."""
    client = _client or _built()
    if client is None:
        return EventResponse(False, None, _BUILD_FAILED)
    return client.track(event, properties, **fields)


def batch(events: Iterable[BatchEventInput | Mapping[str, Any]]) -> BatchEventResponse:
    """:meth:`Databuddy.batch` on the default client; never raises."""
    client = _client or _built()
    if client is None:
        return BatchEventResponse(False, 0, [], _BUILD_FAILED)
    return client.batch(events)


def flush(timeout: float | None = None) -> BatchEventResponse:
    """:meth:`Databuddy.flush` on the default client; never raises."""
    client = _client or _built()
    if client is None:
        return BatchEventResponse(False, 0, [], _BUILD_FAILED)
    return client.flush(timeout)


def shutdown(timeout: float | None = None) -> BatchEventResponse:
    """Shut the default client down and forget it (a later call builds a new one)."""
    global _client
    with _lock:
        client, _client = _client, None
    if client is None:
        return BatchEventResponse(True, 0, [])
    return client.shutdown(timeout)

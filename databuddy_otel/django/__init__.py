"""Django: configured from ``settings.py`` alone.

::

    INSTALLED_APPS = [..., "databuddy_otel.django"]      # builds the client once per process
    MIDDLEWARE = ["databuddy_otel.django.DatabuddyMiddleware", ...]
    DATABUDDY = {"client_id": "...", "track_requests": True}   # or DATABUDDY_CLIENT_ID = ...
    LOGGING = {..., "handlers": {"databuddy": {"class": "databuddy_logging.DatabuddyHandler"}}}

The app's :class:`~databuddy_otel.django.apps.DatabuddyConfig` makes the process's
default client (:func:`databuddy_otel.init`) from ``DATABUDDY`` / ``DATABUDDY_*``
when Django is ready; options set in neither fall back to the environment. Views
call ``databuddy_otel.track(...)``; a ``DatabuddyHandler`` in ``LOGGING`` needs no
client object (it follows the default client). See docs/web-frameworks.md.
"""

from __future__ import annotations

import os
import threading
from typing import Any, Callable

from databuddy_otel import default
from databuddy_otel._doors import framework_settings
from databuddy_otel._doors.web_wsgi import django_middleware

__all__ = ["DatabuddyMiddleware", "configure", "settings_options"]

_lock = threading.Lock()
_configured_in: int | None = None  # the pid that made the default client from settings


def settings_options() -> tuple[dict[str, Any], dict[str, Any]]:
    """``(client options, middleware options)`` from Django's settings.

    Raises:
        django.core.exceptions.ImproperlyConfigured: A bad ``DATABUDDY`` entry.
    """
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    entries = {
        name: getattr(settings, name)
        for name in dir(settings)
        if name == "DATABUDDY" or name.startswith(framework_settings.PREFIX)
    }
    try:
        return framework_settings.split(entries, where="Django settings")
    except (TypeError, ValueError) as exc:
        raise ImproperlyConfigured(str(exc)) from exc


def configure() -> None:
    """Make the default client from the settings, once per process (the app's ``ready()``
    calls it; so does the middleware, for a project that lists only the middleware)."""
    global _configured_in
    with _lock:
        if _configured_in == os.getpid():
            return
        client_options, _ = settings_options()
        if client_options or default.current() is None:
            default.init(**client_options)
        _configured_in = os.getpid()


class DatabuddyMiddleware:
    """The entry for ``MIDDLEWARE`` (list it first, so it times the whole stack).

    Binds the browser's ids for the request; with ``track_requests`` in ``DATABUDDY``,
    tracks one ``http_request`` event per request, as
    :func:`~databuddy_otel.web.django_middleware` does, on the default client.
    """

    sync_capable = True
    async_capable = False

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        configure()
        _, options = settings_options()
        self._handle = django_middleware(default.get_client(), **options)(get_response)

    def __call__(self, request: Any) -> Any:
        return self._handle(request)

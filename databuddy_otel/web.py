"""Web middleware: the browser's ids bound for each request, and one event per request.

The Databuddy web SDK keeps an anonymous id and a session id in the browser; the
front end sends them along, by default as the ``X-Databuddy-Anonymous-Id`` and
``X-Databuddy-Session-Id`` headers. The middleware reads them and binds them with
:func:`~databuddy_otel.context.bind_ids` while the request is served, so every
event tracked meanwhile carries them. With ``track_requests=True`` it also tracks
one ``http_request`` event per request (method, route template, status code,
duration in ms), like the Express middleware of the Node SDK's documentation.

Front doors: :class:`DatabuddyWSGIMiddleware`, :class:`DatabuddyASGIMiddleware` and
:func:`django_middleware`; no framework is imported. Nothing here may slow down or break
a response: each step of ours is guarded, logged once and skipped. See docs/web-frameworks.md.
"""

from __future__ import annotations

from databuddy_otel._doors.web_asgi import DatabuddyASGIMiddleware
from databuddy_otel._doors.web_request import (
    ANONYMOUS_ID_HEADER,
    ROUTE_KEY,
    SESSION_ID_HEADER,
    Tracker,
    ids_from_cookies,
    ids_from_headers,
)
from databuddy_otel._doors.web_wsgi import DatabuddyWSGIMiddleware, django_middleware

__all__ = [
    "ANONYMOUS_ID_HEADER",
    "ROUTE_KEY",
    "SESSION_ID_HEADER",
    "DatabuddyASGIMiddleware",
    "DatabuddyWSGIMiddleware",
    "Tracker",
    "django_middleware",
    "ids_from_cookies",
    "ids_from_headers",
]

"""FastAPI and Starlette: one call for the middleware and the flush at shutdown.

::

    from databuddy_otel.fastapi import instrument

    app = FastAPI()
    instrument(app, track_requests=True)      # before the app starts serving

:func:`instrument` adds :class:`~databuddy_otel.web.DatabuddyASGIMiddleware`, which
binds the browser's ids for each request, tracks one ``http_request`` event per
request with ``track_requests=True``, and flushes the client on the server's lifespan
shutdown (after the app's own shutdown handlers, before uvicorn re-raises SIGTERM),
so no lifespan code of yours is needed. Works for any Starlette app; neither
framework is imported here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from databuddy_otel import default
from databuddy_otel._doors import framework_settings
from databuddy_otel._doors.web_asgi import DatabuddyASGIMiddleware

if TYPE_CHECKING:
    from databuddy_otel.client import Databuddy

__all__ = ["instrument"]


def instrument(
    app: Any, *, client: Databuddy | None = None, **middleware_options: Any
) -> Databuddy:
    """Add the middleware to a FastAPI or Starlette ``app``; returns the client it sends to.

    Args:
        app: The application, before it starts serving (Starlette refuses middleware after).
        client: The client to use; by default the process's default client
            (:func:`databuddy_otel.init`, else one from the ``DATABUDDY_*`` variables).
        **middleware_options: ``track_requests``, ``event_name``, ``raw_path_fallback``,
            ``ids_from``.

    Raises:
        TypeError: An unknown option (with the closest name).
    """
    framework_settings.check_middleware(middleware_options, where="instrument()")
    client = client or default.get_client()
    app.add_middleware(DatabuddyASGIMiddleware, client=client, **middleware_options)
    return client

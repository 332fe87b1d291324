"""Flask: an extension with ``init_app``, configured from ``app.config``.

::

    from databuddy_otel.flask import DatabuddyFlask

    databuddy = DatabuddyFlask()                 # at module level, as Flask extensions are

    def create_app():
        app = Flask(__name__)
        app.config["DATABUDDY"] = {"client_id": "...", "track_requests": True}
        databuddy.init_app(app)                  # or DatabuddyFlask(app)
        return app

``init_app`` wraps ``app.wsgi_app`` in :class:`~databuddy_otel.web.DatabuddyWSGIMiddleware`
(the browser's ids bound for each request; with ``track_requests``, one ``http_request``
event per request) and leaves the client in ``app.extensions["databuddy"]``. The
client is the one given to the extension; else, when ``app.config`` holds client
options (``DATABUDDY`` or ``DATABUDDY_*``), the process's default client made from
them with :func:`databuddy_otel.init`; else the default client as it is (from the
``DATABUDDY_*`` environment variables). Views call ``databuddy_otel.track(...)`` or
``current_app.extensions["databuddy"].track(...)``. Flask is not imported here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from databuddy_otel import default
from databuddy_otel._doors import framework_settings
from databuddy_otel._doors.web_wsgi import DatabuddyWSGIMiddleware

if TYPE_CHECKING:
    from databuddy_otel.client import Databuddy

__all__ = ["DatabuddyFlask"]


class DatabuddyFlask:
    """The Flask extension.

    Args:
        app: An app to set up now (else call :meth:`init_app` for each app).
        client: The client to use, instead of the default client.
        **middleware_options: ``track_requests``, ``event_name``, ``raw_path_fallback``,
            ``ids_from``; they take precedence over the same keys in ``app.config``.
    """

    def __init__(
        self, app: Any = None, *, client: Databuddy | None = None, **middleware_options: Any
    ) -> None:
        framework_settings.check_middleware(middleware_options, where="DatabuddyFlask")
        self._client = client
        self._options = middleware_options
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Any) -> Databuddy:
        """Wrap ``app.wsgi_app`` and register the client; returns the client.

        Raises:
            TypeError, ValueError: A bad ``DATABUDDY`` entry in ``app.config``.
        """
        entries = {k: v for k, v in app.config.items() if k.startswith("DATABUDDY")}
        client_options, options = framework_settings.split(entries, where="app.config")
        client = self._client
        if client is None:
            client = default.init(**client_options) if client_options else default.get_client()
        app.wsgi_app = DatabuddyWSGIMiddleware(app.wsgi_app, client, **{**options, **self._options})
        app.extensions["databuddy"] = client
        return client

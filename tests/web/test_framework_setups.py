"""One-line set-ups: a Django project configured through settings.py alone, Flask's
``init_app``, FastAPI's ``instrument()``; each with a request and a tagged log record."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from databuddy_otel import default
from databuddy_otel.devserver import DevServer
from tests.web.conftest import IDS


@pytest.fixture(autouse=True)
def no_default_client() -> Iterator[None]:
    default.shutdown(2)
    yield
    default.shutdown(2)


SETTINGS = """
INSTALLED_APPS += ["databuddy_otel.django"]
MIDDLEWARE.insert(0, "databuddy_otel.django.DatabuddyMiddleware")
ALLOWED_HOSTS = ["testserver"]
DATABUDDY = {{"api_url": {url!r}, "track_requests": True}}
DATABUDDY_CLIENT_ID = "django-site"
LOGGING = {{
    "version": 1,
    "handlers": {{"databuddy": {{"class": "databuddy_logging.DatabuddyHandler"}}}},
    "loggers": {{"mysite": {{"handlers": ["databuddy"], "level": "INFO"}}}},
}}
"""

VIEWS = """
import logging

import databuddy_otel
from django.http import JsonResponse


def signup(request, plan):
    logging.getLogger("mysite.views").info("user_signup", extra={"db_props": {"plan": plan}})
    logging.getLogger("mysite.views").info("an ordinary line")
    databuddy_otel.track("signup_view", {"plan": plan})
    return JsonResponse({"ok": True})
"""

REQUEST = """
import django
django.setup()
from django.test import Client
response = Client(HTTP_X_DATABUDDY_ANONYMOUS_ID="anon_dj").get("/signup/pro/")
assert response.status_code == 200, response.status_code
"""


def _project(tmp_path: Path, settings: str) -> Path:
    """A project from ``django-admin startproject``, with ``settings`` appended."""
    pytest.importorskip("django")
    subprocess.run(
        [sys.executable, "-m", "django", "startproject", "mysite", str(tmp_path)],
        check=True,
        timeout=60,
    )
    app = tmp_path / "mysite"
    with (app / "settings.py").open("a", encoding="utf-8") as file:
        file.write(settings)
    (app / "views.py").write_text(VIEWS, encoding="utf-8")
    urls = (app / "urls.py").read_text(encoding="utf-8")
    urls = urls.replace(
        "urlpatterns = [",
        "from mysite import views\n\nurlpatterns = [\n    path('signup/<plan>/', views.signup),",
    )
    (app / "urls.py").write_text(urls, encoding="utf-8")
    return tmp_path


def _run_in(project: Path, code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "mysite.settings"},
    )


@pytest.mark.slow
def test_a_startproject_configured_in_settings_alone(tmp_path: Path, server: DevServer) -> None:
    """MIDDLEWARE, DATABUDDY and LOGGING only; the process exits without a flush."""
    project = _project(tmp_path, SETTINGS.format(url=server.url))
    done = _run_in(project, REQUEST)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    events = {e["name"]: e for e in server.events()}
    assert sorted(events) == ["http_request", "signup_view", "user_signup"]
    assert events["user_signup"]["properties"]["plan"] == "pro"
    assert events["http_request"]["properties"]["route"] == "/signup/<plan>/"
    assert {e["anonymousId"] for e in events.values()} == {"anon_dj"}


@pytest.mark.slow
def test_a_misspelt_django_setting_names_the_right_one(tmp_path: Path, server: DevServer) -> None:
    project = _project(
        tmp_path,
        SETTINGS.format(url=server.url).replace("DATABUDDY_CLIENT_ID", "DATABUDDY_CLIENTID"),
    )
    done = _run_in(project, "import django; django.setup()")
    assert done.returncode != 0
    assert "ImproperlyConfigured" in done.stderr and "did you mean client_id" in done.stderr
    assert server.events() == []


def test_flask_init_app_from_app_config(server: DevServer) -> None:
    """The extension reads app.config, wraps wsgi_app; a LOGGING handler needs no client."""
    flask = pytest.importorskip("flask")
    from databuddy_logging import DatabuddyHandler
    from databuddy_otel.flask import DatabuddyFlask

    extension = DatabuddyFlask()  # module level in an app, before any app exists
    handler = DatabuddyHandler()
    log = logging.getLogger("test.flask_app")
    log.setLevel(logging.INFO)
    log.addHandler(handler)

    def create_app() -> object:
        app = flask.Flask(__name__)
        app.config["DATABUDDY"] = {"client_id": "flask-site", "api_url": server.url}
        app.config["DATABUDDY_TRACK_REQUESTS"] = True
        extension.init_app(app)

        @app.get("/users/<int:user_id>")
        def user(user_id: int) -> dict[str, int]:
            log.info("profile_viewed", extra={"db_props": {"user_id": user_id}})
            return {"id": user_id}

        return app

    app = create_app()
    try:
        response = app.test_client().get("/users/7", headers=IDS)  # type: ignore[attr-defined]
        assert response.status_code == 200
        response.close()  # the server's close() ends the request's timing
    finally:
        log.removeHandler(handler)
    client = app.extensions["databuddy"]  # type: ignore[attr-defined]
    assert client is default.current() and handler.client is client
    assert client.flush(5).success
    events = {e["name"]: e for e in server.events()}
    assert sorted(events) == ["http_request", "profile_viewed"]
    assert events["http_request"]["properties"]["route"] == "/users/<int:user_id>"
    assert events["profile_viewed"]["anonymousId"] == IDS["X-Databuddy-Anonymous-Id"]


def test_flask_refuses_an_unknown_option_with_a_hint() -> None:
    flask = pytest.importorskip("flask")
    from databuddy_otel.flask import DatabuddyFlask

    with pytest.raises(TypeError, match="did you mean track_requests"):
        DatabuddyFlask(track_request=True)
    app = flask.Flask(__name__)
    app.config["DATABUDDY"] = {"clientId": "x"}
    with pytest.raises(TypeError, match="did you mean client_id"):
        DatabuddyFlask(app)


def test_fastapi_instrument_adds_the_middleware_and_flushes_at_shutdown(
    server: DevServer,
) -> None:
    fastapi = pytest.importorskip("fastapi")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*httpx.*starlette.testclient")
        testclient = pytest.importorskip("fastapi.testclient")
    import databuddy_otel
    from databuddy_otel.fastapi import instrument

    databuddy_otel.init(client_id="fastapi-site", api_url=server.url, batch_timeout=60_000)
    app = fastapi.FastAPI()
    client = instrument(app, track_requests=True)

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        databuddy_otel.track("item_viewed", {"item_id": item_id})
        return {"id": item_id}

    with testclient.TestClient(app) as test_client:
        assert test_client.get("/items/3", headers=IDS).status_code == 200
        assert server.events() == []  # held by the 60 s batch timeout
    # The lifespan shutdown flushed the client; no flush of ours.
    assert client is default.current()
    events = {e["name"]: e for e in server.events()}
    assert sorted(events) == ["http_request", "item_viewed"]
    assert events["http_request"]["properties"]["route"] == "/items/{item_id}"
    assert events["item_viewed"]["sessionId"] == IDS["X-Databuddy-Session-Id"]

"""Django: the middleware factory in MIDDLEWARE, with Django's resolved URL patterns."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import pytest

django = pytest.importorskip("django", reason="Django is not installed (pip install django)")

from django.conf import settings  # noqa: E402
from django.http import HttpRequest, JsonResponse  # noqa: E402
from django.test import AsyncClient, Client  # noqa: E402
from django.urls import path  # noqa: E402

from databuddy_otel.devserver import DevServer  # noqa: E402
from databuddy_otel.web import django_middleware  # noqa: E402
from tests.conftest import MakeClient  # noqa: E402
from tests.web.conftest import IDS  # noqa: E402

#: Set by each test: the middleware factory MIDDLEWARE names.
databuddy: Any = None
_tracker: Any = None


def order(request: HttpRequest, order_id: int) -> JsonResponse:
    _tracker.track(name="order_viewed", properties={"order_id": order_id})
    return JsonResponse({"id": order_id})


async def receipt(request: HttpRequest, order_id: int) -> JsonResponse:
    _tracker.track(name="receipt_viewed", properties={"order_id": order_id})
    return JsonResponse({"receipt": order_id})


urlpatterns = [
    path("orders/<int:order_id>/", order),
    path("orders/<int:order_id>/receipt/", receipt),
]


@pytest.fixture(autouse=True)
def _django() -> None:
    if not settings.configured:
        settings.configure(
            DEBUG=False,
            ALLOWED_HOSTS=["testserver"],
            ROOT_URLCONF=__name__,
            MIDDLEWARE=[f"{__name__}.databuddy"],
            INSTALLED_APPS=[],
            SECRET_KEY="test-only",
        )
        django.setup()


def test_django_routes_and_ids(
    server: DevServer, make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Views' events carry the header ids; http_request has Django's route pattern."""
    client = make_client()
    module = sys.modules[__name__]
    monkeypatch.setattr(module, "_tracker", client)
    monkeypatch.setattr(module, "databuddy", django_middleware(client, track_requests=True))
    headers = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in IDS.items()}
    browser = Client(**headers)
    assert browser.get("/orders/12/").json() == {"id": 12}
    assert browser.get("/missing/").status_code == 404
    client.flush(timeout=5)
    viewed, found, missing = server.events()
    assert viewed["name"] == "order_viewed"
    assert {e["anonymousId"] for e in (viewed, found, missing)} == {"anon_web-1"}
    assert (found["properties"]["route"], found["properties"]["status_code"]) == (
        "/orders/<int:order_id>/",
        200,
    )
    assert "route" not in missing["properties"] and missing["properties"]["status_code"] == 404


def test_django_under_asgi_with_an_async_view(
    server: DevServer, make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Served the ASGI way, an async view's events carry the ids and the route is recorded."""
    client = make_client()
    module = sys.modules[__name__]
    monkeypatch.setattr(module, "_tracker", client)
    monkeypatch.setattr(module, "databuddy", django_middleware(client, track_requests=True))

    async def main() -> int:
        response = await AsyncClient().get("/orders/5/receipt/", headers=IDS)
        return int(response.status_code)

    assert asyncio.run(main()) == 200
    client.flush(timeout=5)
    viewed, request = server.events()
    assert viewed["name"] == "receipt_viewed" and viewed["sessionId"] == "sess_web-1"
    assert request["properties"]["route"] == "/orders/<int:order_id>/receipt/"


def test_handler_from_djangos_logging_setting(server: DevServer) -> None:
    """DatabuddyHandler configured in Django's LOGGING setting turns tagged records into events."""
    import subprocess
    import textwrap

    script = textwrap.dedent(
        f"""
        import logging
        import django
        from django.conf import settings

        settings.configure(
            LOGGING={{
                "version": 1,
                "disable_existing_loggers": False,
                "handlers": {{
                    "databuddy": {{
                        "class": "databuddy_logging.DatabuddyHandler",
                        "client_id": "django-site",
                        "api_url": {server.url!r},
                        "level": "INFO",
                    }},
                }},
                "loggers": {{"shop": {{"handlers": ["databuddy"], "level": "INFO"}}}},
            }}
        )
        django.setup()
        logging.getLogger("shop").info("order_paid", extra={{"db_props": {{"total": 12}}}})
        logging.getLogger("shop").info("not an event")
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    [event] = server.events()
    assert (event["name"], event["websiteId"]) == ("order_paid", "django-site")
    assert event["properties"]["total"] == 12

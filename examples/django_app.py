"""Django in one file, configured as a project's settings.py would be.

Run it with ``python examples/django_app.py`` (needs ``pip install django``). It
starts the local ingest server, configures a minimal Django project in this file
with the three settings a real project puts in ``settings.py``::

    INSTALLED_APPS = [..., "databuddy_otel.django"]
    MIDDLEWARE = ["databuddy_otel.django.DatabuddyMiddleware", ...]
    DATABUDDY = {"client_id": "...", "track_requests": True}

plus a ``LOGGING`` handler, drives requests through ``django.test.Client`` with the
headers the front end would send, and prints what the server stored. Views call
``databuddy_otel.track(...)`` and log tagged records; no client object is passed
anywhere.
"""

from __future__ import annotations

import json
import logging

import django
from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.test import Client
from django.urls import path

import databuddy_otel
from databuddy_otel import new_anonymous_id, new_session_id
from databuddy_otel.devserver import DevServer

log = logging.getLogger("shop.views")


def signup(request: HttpRequest) -> JsonResponse:
    databuddy_otel.track("user_signup", {"method": "email", "plan": "free"})
    return JsonResponse({"welcome": True}, status=201)


def article(request: HttpRequest, slug: str) -> JsonResponse:
    log.info("article_read", extra={"db_props": {"slug": slug}})  # a tagged record: an event
    log.info("served %s", slug)  # an ordinary record: not an event
    return JsonResponse({"slug": slug})


urlpatterns = [
    path("signup/", signup),
    path("articles/<slug:slug>/", article),
]


def main() -> None:
    with DevServer() as server:
        settings.configure(
            DEBUG=False,
            ALLOWED_HOSTS=["testserver"],
            ROOT_URLCONF=__name__,
            SECRET_KEY="example-only",
            INSTALLED_APPS=["databuddy_otel.django"],
            MIDDLEWARE=["databuddy_otel.django.DatabuddyMiddleware"],
            DATABUDDY={
                "client_id": "django-example",
                "api_url": server.url,
                "track_requests": True,
            },
            LOGGING={
                "version": 1,
                "handlers": {"databuddy": {"class": "databuddy_logging.DatabuddyHandler"}},
                "loggers": {"shop": {"handlers": ["databuddy"], "level": "INFO"}},
            },
        )
        django.setup()

        anonymous_id, session_id = new_anonymous_id(), new_session_id()
        # Django's test client takes headers as WSGI environ keys.
        browser = Client(
            HTTP_X_DATABUDDY_ANONYMOUS_ID=anonymous_id, HTTP_X_DATABUDDY_SESSION_ID=session_id
        )
        for method, url in (("post", "/signup/"), ("get", "/articles/hello-world/")):
            response = getattr(browser, method)(url)
            print(f"{method.upper()} {url} -> {response.status_code} {response.json()}")

        databuddy_otel.shutdown()
        events = server.events()
        print(f"\nThe server stored {len(events)} events:")
        for event in events:
            print(json.dumps({k: event[k] for k in ("name", "anonymousId", "properties")}))
        assert len(events) == 4, "1 tracked by a view + 1 tagged record + 2 http_request"
        assert {e["anonymousId"] for e in events} == {anonymous_id}
        assert {e["sessionId"] for e in events} == {session_id}
        print("Every event carries the browser's anonymous and session ids.")


if __name__ == "__main__":
    main()

"""Django in one file: the browser's ids on every event, plus one event per request.

Run it with ``python examples/django_app.py`` (needs ``pip install django``). It
starts the local ingest server, configures a minimal Django project in this file,
drives requests through ``django.test.Client`` with the headers the front end
would send, and prints what the server stored.

In a real project the two middleware lines live in a module of yours, say
``myproject/analytics.py``::

    client = Databuddy()                                     # DATABUDDY_* variables
    databuddy = django_middleware(client, track_requests=True)

and ``settings.MIDDLEWARE`` lists ``"myproject.analytics.databuddy"`` first.
"""

from __future__ import annotations

import json
from typing import Any, Callable

import django
from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.test import Client
from django.urls import path

from databuddy_otel import Databuddy, new_anonymous_id, new_session_id
from databuddy_otel.devserver import DevServer
from databuddy_otel.web import django_middleware

client: Databuddy  # built in main(), once the local ingest server is up


def databuddy(get_response: Callable[[HttpRequest], Any]) -> Any:
    """The entry in MIDDLEWARE (built lazily here only because the client is made in main())."""
    return django_middleware(client, track_requests=True)(get_response)


def signup(request: HttpRequest) -> JsonResponse:
    client.track(name="user_signup", properties={"method": "email", "plan": "free"})
    return JsonResponse({"welcome": True}, status=201)


def article(request: HttpRequest, slug: str) -> JsonResponse:
    client.track(name="article_read", properties={"slug": slug})
    return JsonResponse({"slug": slug})


urlpatterns = [
    path("signup/", signup),
    path("articles/<slug:slug>/", article),
]


def main() -> None:
    global client
    with DevServer() as server:
        client = Databuddy(client_id="django-example", api_url=server.url)
        settings.configure(
            DEBUG=False,
            ALLOWED_HOSTS=["testserver"],
            ROOT_URLCONF=__name__,
            MIDDLEWARE=[f"{__name__}.databuddy"],
            INSTALLED_APPS=[],
            SECRET_KEY="example-only",
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

        client.shutdown()
        events = server.events()
        print(f"\nThe server stored {len(events)} events:")
        for event in events:
            print(json.dumps({k: event[k] for k in ("name", "anonymousId", "properties")}))
        assert len(events) == 4, "2 tracked by the views + 2 http_request"
        assert {e["anonymousId"] for e in events} == {anonymous_id}
        assert {e["sessionId"] for e in events} == {session_id}
        print("Every event carries the browser's anonymous and session ids.")


if __name__ == "__main__":
    main()

"""pytest plugin (auto-loaded through the ``pytest11`` entry point): the
``databuddy_server`` fixture, a started :class:`~databuddy_otel.devserver.DevServer`
with an in-memory database, stopped after the test; and ``databuddy_events``, the
default client's events captured in a list for the test
(:func:`~databuddy_otel.testing.capture_events`).

Loaded into every pytest run of an environment that has this package, so it
imports nothing heavy at import time and cannot fail to import.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from databuddy_otel.devserver import DevServer


@pytest.fixture
def databuddy_server() -> Iterator[DevServer]:
    """A running local ingest server, fresh for each test and stopped after it.

    ``server.url`` to send to; ``server.events(name)`` for what it stored;
    ``server.rejections()`` for what it refused and why, newest first; fault controls
    (``fail_next``, ``delay_next``, ``drop_next``, ``set_outage``, ``reply_next``,
    ``trickle_next``); and a live page of
    events and refusals at ``server.url + "/"``::

        def test_an_empty_name_is_refused(databuddy_server):
            requests.post(f"{databuddy_server.url}/track", json={"name": ""},
                          params={"website_id": "test-site"}, timeout=5)
            (refusal,) = databuddy_server.rejections()
            assert refusal["errors"] == ["name: String must contain at least 1 character(s)"]

    See docs/devserver.md.
    """
    from databuddy_otel.devserver import DevServer

    with DevServer() as server:
        yield server


@pytest.fixture
def databuddy_events() -> Iterator[list[dict[str, Any]]]:
    """The events the default client takes during the test, as it would send them;
    none is sent::

        def test_signup_is_tracked(databuddy_events):
            signup(plan="pro")                      # calls databuddy_otel.track(...)
            assert databuddy_events[0]["name"] == "user_signup"
    """
    from databuddy_otel.testing import capture_events

    with capture_events() as events:
        yield events

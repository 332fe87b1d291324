"""pytest plugin (auto-loaded through the ``pytest11`` entry point): the
``databuddy_server`` fixture, a started :class:`~databuddy_otel.devserver.DevServer`
with an in-memory database, stopped after the test.

Loaded into every pytest run of an environment that has this package, so it
imports nothing heavy at import time and cannot fail to import.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

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

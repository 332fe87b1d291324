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
    """A running local ingest server (``server.url``, ``server.events()``, fault controls)."""
    from databuddy_otel.devserver import DevServer

    with DevServer() as server:
        yield server

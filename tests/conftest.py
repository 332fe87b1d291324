"""Shared fixtures: clients pointed at the local ingest server, closed after each test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from databuddy_otel import Databuddy
from databuddy_otel.devserver import DevServer

MakeClient = Callable[..., Databuddy]


@pytest.fixture
def server(databuddy_server: DevServer) -> DevServer:
    """The local ingest server from the package's own pytest plugin."""
    return databuddy_server


@pytest.fixture
def make_client(server: DevServer) -> Iterator[MakeClient]:
    """Build clients aimed at ``server`` with test-friendly timings; shut them all down."""
    clients: list[Databuddy] = []

    def make(**kwargs: Any) -> Databuddy:
        kwargs.setdefault("api_url", server.url)
        if "api_key" not in kwargs:
            kwargs.setdefault("client_id", "test-site")
        kwargs.setdefault("batch_timeout", 50)
        kwargs.setdefault("retry_deadline", 5.0)
        kwargs.setdefault("timeout", 2.0)
        client = Databuddy(**kwargs)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.shutdown(timeout=2.0)

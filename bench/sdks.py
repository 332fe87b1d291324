"""One adapter per SDK under test, each used the way its documentation shows.

An adapter is built with the sink's URL and either ``capacity=None`` (the SDK's
own defaults) or ``capacity=N`` (batches of 100 and a queue that holds at least
``N`` events, so nothing is dropped). It exposes:

* ``send(props)``: one event named ``user_signup`` with ``props``; returns whether
  the SDK accepted it (where the SDK says so);
* ``flush()``: the SDK's documented "send what is queued now" call;
* ``close()``: the SDK's documented shutdown (which flushes).

``path`` is where the sink counts this SDK's events. Every SDK is imported
inside its constructor, so importing this module costs nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Protocol

EVENT = "user_signup"
USER = "user-42"
BATCH = 100


class Adapter(Protocol):
    label: str
    path: str

    def send(self, props: dict[str, Any]) -> bool: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


def make_props(i: int) -> dict[str, Any]:
    """About five small properties, a fresh dict per event as an application would build."""
    return {"plan": "pro", "seats": i % 50, "trial": i % 2 == 0, "source": "bench", "amount": 12.5}


class Databuddy:
    label = "databuddy_otel"
    path = "/track"
    spool = False

    def __init__(self, url: str, *, capacity: int | None) -> None:
        from databuddy_otel import Databuddy as Client

        sized: dict[str, Any] = {}
        if capacity is not None:
            sized = {"batch_size": BATCH, "max_queue_size": max(capacity, 1000)}
        if self.spool:
            import tempfile

            self._spool_dir = tempfile.TemporaryDirectory(prefix="databuddy-bench-spool-")
            sized["spool_dir"] = self._spool_dir.name
            sized["spool_max_bytes"] = 1 << 30
        self.client = Client(client_id="bench", api_url=url, **sized)
        track = self.client.track

        def send(props: dict[str, Any]) -> bool:
            return track(name=EVENT, properties=props).success

        self.send = send

    def flush(self) -> None:
        self.client.flush(timeout=120)

    def close(self) -> None:
        self.client.shutdown()

    def extra(self) -> dict[str, Any]:
        stats = self.client.stats()
        return {"undelivered": dict(stats.undelivered), "sdk_delivered": stats.delivered}


class DatabuddySpool(Databuddy):
    """The same client with a spool (``spool_dir`` on local disk, default fsync policy)."""

    label = "databuddy_otel + spool"
    spool = True


class Posthog:
    label = "posthog"
    path = "/batch/"

    def __init__(self, url: str, *, capacity: int | None) -> None:
        import posthog

        sized: dict[str, Any] = {}
        if capacity is not None:
            sized = {"flush_at": BATCH, "max_queue_size": max(capacity, 10_000)}
        self.client = posthog.Posthog("phc_bench", host=url, **sized)
        capture = self.client.capture

        def send(props: dict[str, Any]) -> bool:
            return capture(EVENT, distinct_id=USER, properties=props) is not None

        self.send = send

    def flush(self) -> None:
        self.client.flush(timeout_seconds=120)

    def close(self) -> None:
        self.client.shutdown()


class Segment:
    label = "segment"
    path = "/v1/batch"

    def __init__(self, url: str, *, capacity: int | None) -> None:
        from segment.analytics import Client

        sized: dict[str, Any] = {}
        if capacity is not None:
            sized = {"upload_size": BATCH, "max_queue_size": max(capacity, 10_000)}
        self.client = Client(write_key="bench", host=url, **sized)
        track = self.client.track

        def send(props: dict[str, Any]) -> bool:
            ok: bool = track(user_id=USER, event=EVENT, properties=props)[0]
            return ok

        self.send = send

    def flush(self) -> None:
        self.client.flush()

    def close(self) -> None:
        self.client.shutdown()


class RawOtel:
    """OpenTelemetry's logs SDK with a minimal JSON-over-HTTP exporter, as a user would wire it."""

    label = "raw OTel"
    path = "/otel"

    def __init__(self, url: str, *, capacity: int | None, batch: int | None = None) -> None:
        from opentelemetry._logs import LogRecord
        from opentelemetry.sdk._logs import LoggerProvider
        from opentelemetry.sdk._logs.export import BatchLogRecordProcessor

        from bench.otel_exporter import JsonPostLogExporter

        sized: dict[str, Any] = {}
        if capacity is not None:
            sized = {"max_export_batch_size": BATCH, "max_queue_size": max(capacity, 2048)}
        elif batch is not None:
            sized = {"max_export_batch_size": batch}
        self.provider = LoggerProvider()
        self.provider.add_log_record_processor(
            BatchLogRecordProcessor(JsonPostLogExporter(url + self.path), **sized)
        )
        emit = self.provider.get_logger("bench").emit

        def send(props: dict[str, Any]) -> bool:
            emit(LogRecord(event_name=EVENT, attributes=props))
            return True

        self.send = send

    def flush(self) -> None:
        self.provider.force_flush()

    def close(self) -> None:
        self.provider.shutdown()


class RequestsPerEvent:
    """No SDK: one ``requests.Session().post`` per event, on the caller's thread."""

    label = "requests/event"
    path = "/single"

    def __init__(self, url: str, *, capacity: int | None) -> None:
        import requests

        self.session = requests.Session()
        post = self.session.post
        target = url + self.path
        headers = {"Content-Type": "application/json"}
        dumps = json.dumps

        def send(props: dict[str, Any]) -> bool:
            body = dumps({"name": EVENT, "properties": props})
            try:
                return post(target, data=body, headers=headers, timeout=10).status_code == 200
            except requests.RequestException:
                return False

        self.send = send

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.session.close()


class Floor:
    """No SDK: ``json.dumps`` of the properties and nothing else, the floor any SDK's
    call stands on (how slow a cold call is on this machine)."""

    label = "json.dumps only (floor)"
    path = "/none"

    def __init__(self, url: str, *, capacity: int | None) -> None:
        dumps = json.dumps

        def send(props: dict[str, Any]) -> bool:
            dumps({"name": EVENT, "properties": props})
            return True

        self.send = send

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


ADAPTERS: dict[str, Callable[..., Adapter]] = {
    "databuddy": Databuddy,
    "databuddy-spool": DatabuddySpool,
    "otel": RawOtel,
    "segment": Segment,
    "posthog": Posthog,
    "requests": RequestsPerEvent,
    "floor": Floor,
}
LABELS = {
    "databuddy": Databuddy.label,
    "databuddy-spool": DatabuddySpool.label,
    "otel": RawOtel.label,
    "segment": Segment.label,
    "posthog": Posthog.label,
    "requests": RequestsPerEvent.label,
    "floor": Floor.label,
}

#: What ``import`` costs for each SDK (the import-time scenario).
IMPORTS = {
    "databuddy": "import databuddy_otel",
    "otel": "import opentelemetry.sdk._logs, opentelemetry.sdk._logs.export, requests",
    "segment": "import segment.analytics",
    "posthog": "import posthog",
    "requests": "import requests",
}

#: A cold start: the import, a client, and the first event queued (the cold-start
#: column of the import-time scenario; SDKs without an entry show none). ``{url}``
#: is the sink's address.
COLD_STARTS = {
    "databuddy": (
        "from databuddy_otel import Databuddy\n"
        "client = Databuddy(client_id='bench', api_url='{url}')\n"
        "client.track(name='signup', properties={{'plan': 'pro'}})"
    ),
    "posthog": (
        "from posthog import Posthog\n"
        "client = Posthog('phc_bench', host='{url}')\n"
        "client.capture('signup', distinct_id='user-1', properties={{'plan': 'pro'}})"
    ),
}

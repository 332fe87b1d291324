"""The trivial endpoint of the web benchmark, with one SDK set up as its docs say.

``BENCH_VARIANT`` picks the SDK, ``BENCH_SINK`` is where every SDK sends (the
counting sink of ``bench/sink.py``). Flask under gunicorn serves ``web_app:flask_app``,
FastAPI under uvicorn ``web_app:asgi_app``; both answer ``GET /`` with ``ok``, after
the variant's per-request work:

``none``
    nothing: the floor.
``ours``
    databuddy_otel as documented: its WSGI/ASGI middleware (each request's ids), one
    tagged log record through ``DatabuddyHandler`` and one ``track()``, at the defaults.
``sentry``
    ``sentry-sdk`` with logs on (``enable_logs=True``), traces off, and the same log
    record (its logging integration sends it).
``posthog``
    one ``posthog`` ``capture()``.
``otel``
    OpenTelemetry's WSGI/ASGI instrumentation (a span per request), batched to the
    OTLP/HTTP exporter.
``floor``
    the same record and event as ``ours`` through ``bench/floor.py``: the least any
    SDK that batches JSON over ``requests`` does per event (no checks, no middleware).
"""

from __future__ import annotations

import logging
import os
from typing import Any

VARIANT = os.environ.get("BENCH_VARIANT", "none")
SINK = os.environ.get("BENCH_SINK", "http://127.0.0.1:9")

log = logging.getLogger("bench.web")
log.setLevel(logging.INFO)
log.propagate = False
per_request: Any = None  # the variant's work for one request


def _setup() -> Any:
    if VARIANT == "ours":
        from databuddy_logging import DatabuddyHandler
        from databuddy_otel import Databuddy

        client = Databuddy(client_id="bench-web", api_url=SINK)
        log.addHandler(DatabuddyHandler(client=client))

        def ours() -> None:
            log.info("page_served", extra={"db_props": {"path": "/"}})
            client.track(name="endpoint_hit", properties={"path": "/"})

        return client, ours
    if VARIANT == "floor":
        from floor import Floor, FloorHandler

        least = Floor(SINK)
        log.addHandler(FloorHandler(least))

        def floor() -> None:
            log.info("page_served", extra={"db_props": {"path": "/"}})
            least.track("endpoint_hit", {"path": "/"})

        return None, floor
    if VARIANT == "sentry":
        import sentry_sdk

        port = SINK.rsplit(":", 1)[1]
        sentry_sdk.init(
            dsn=f"http://public@127.0.0.1:{port}/1", enable_logs=True, traces_sample_rate=None
        )
        log.addHandler(logging.NullHandler())  # the record exists; Sentry's integration takes it

        def sentry() -> None:
            log.info("page_served", extra={"path": "/"})

        return None, sentry
    if VARIANT == "posthog":
        from posthog import Posthog

        posthog = Posthog("phc_bench", host=SINK)

        def capture() -> None:
            posthog.capture("endpoint_hit", distinct_id="bench", properties={"path": "/"})

        return None, capture
    if VARIANT == "otel":
        from opentelemetry import trace
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(f"{SINK}/v1/traces")))
        trace.set_tracer_provider(provider)
        return provider, None
    return None, None


sdk, per_request = _setup()


def _flask() -> Any:
    from flask import Flask

    app = Flask(__name__)

    @app.get("/")
    def index() -> str:
        if per_request is not None:
            per_request()
        return "ok"

    if VARIANT == "ours":
        from databuddy_otel import DatabuddyWSGIMiddleware

        app.wsgi_app = DatabuddyWSGIMiddleware(app.wsgi_app, sdk)  # type: ignore[method-assign]
    if VARIANT == "otel":
        from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware

        app.wsgi_app = OpenTelemetryMiddleware(app.wsgi_app)  # type: ignore[method-assign]
    return app


def _fastapi() -> Any:
    from fastapi import FastAPI
    from fastapi.responses import PlainTextResponse

    app = FastAPI()

    @app.get("/", response_class=PlainTextResponse)
    async def index() -> str:  # on the event loop: track() and the record never wait there
        if per_request is not None:
            per_request()
        return "ok"

    if VARIANT == "ours":
        from databuddy_otel import DatabuddyASGIMiddleware

        app.add_middleware(DatabuddyASGIMiddleware, client=sdk)
    if VARIANT == "otel":
        from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

        return OpenTelemetryMiddleware(app)
    return app


def __getattr__(name: str) -> Any:  # each server imports only its framework
    if name == "flask_app":
        return _flask()
    if name == "asgi_app":
        return _fastapi()
    raise AttributeError(name)

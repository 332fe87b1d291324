"""A FastAPI app deployed the usual way: the client made at import, DatabuddyASGIMiddleware.

Served by uvicorn with several workers in ``tests/deploy/test_deploy_uvicorn.py``.
The app has no shutdown code of its own: the middleware flushes the client on the
lifespan shutdown, which is the last thing a uvicorn worker runs (it then dies by
the re-raised SIGTERM, so no exit hook runs). Credentials and the server come from
``DATABUDDY_CLIENT_ID`` and ``DATABUDDY_API_URL``; batches of 100 and a one-minute
batch timeout keep events queued until the worker stops. With
``DEPLOY_ASGI_MIDDLEWARE=0`` the app has no middleware: what is delivered then is
the SDK's SIGTERM handler's doing.
"""

from __future__ import annotations

import os

from fastapi import FastAPI
from fastapi.responses import PlainTextResponse

from databuddy_otel import Databuddy
from databuddy_otel.web import DatabuddyASGIMiddleware

client = Databuddy(batch_size=100, batch_timeout=60_000)

app = FastAPI()
if os.environ.get("DEPLOY_ASGI_MIDDLEWARE", "1") == "1":
    app.add_middleware(DatabuddyASGIMiddleware, client=client)


@app.get("/hit/{event_id}", response_class=PlainTextResponse)
async def hit(event_id: str) -> str:
    """One request, one track() call with the id from the URL."""
    client.track(name="request_done", event_id=event_id, properties={"pid": os.getpid()})
    return str(os.getpid())

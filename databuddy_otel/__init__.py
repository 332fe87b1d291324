"""Server-side Databuddy analytics on OpenTelemetry's batch machinery.

>>> from databuddy_otel import Databuddy
>>> client = Databuddy(client_id="...")  # doctest: +SKIP
>>> client.track(name="user_signup", properties={"plan": "pro"})  # doctest: +SKIP
"""

from __future__ import annotations

from databuddy_otel._version import __version__
from databuddy_otel.client import Databuddy
from databuddy_otel.context import bind_ids, current_ids
from databuddy_otel.ids import new_anonymous_id, new_session_id
from databuddy_otel.ledger import Stats
from databuddy_otel.models import (
    BatchEventInput,
    BatchEventResponse,
    CustomEventInput,
    EventResponse,
    Undelivered,
)

__all__ = [
    "BatchEventInput",
    "BatchEventResponse",
    "CustomEventInput",
    "Databuddy",
    "EventResponse",
    "Stats",
    "Undelivered",
    "__version__",
    "bind_ids",
    "current_ids",
    "new_anonymous_id",
    "new_session_id",
]

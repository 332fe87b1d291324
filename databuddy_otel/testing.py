"""``capture_events()``: what your code tracks, in a list, with no server at all.

::

    from databuddy_otel.testing import capture_events

    def test_signup_is_tracked():
        with capture_events() as events:
            signup(plan="pro")                         # calls databuddy_otel.track(...)
        assert [e["name"] for e in events] == ["user_signup"]
        assert events[0]["properties"] == {"plan": "pro"}

Each event is captured as the client would send it: ids, defaults, bound ids, global
properties and your middleware applied, checked and serialized, in the wire's field
names (``name``, ``properties``, ``anonymousId``, ``sessionId``, ``eventId``,
``timestamp``...). An event the checks refuse is not captured (``track()`` answers
``success=False`` as usual), and nothing captured is sent or queued. Appends happen
inside ``track()``, so the list is complete at once, on every thread.

``capture_events(client)`` captures an explicit client's events; without one, the
process's default client's (a quiet stand-in is the default client for the block
when there is none, and is removed after it). For a whole HTTP round trip against
the local ingest server, use the ``databuddy_server`` pytest fixture instead.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from databuddy_otel import default
from databuddy_otel.models import EventResponse

if TYPE_CHECKING:
    from databuddy_otel.client import Databuddy

__all__ = ["capture_events"]


@contextmanager
def capture_events(client: Databuddy | None = None) -> Iterator[list[dict[str, Any]]]:
    """Capture the events ``client`` (default: the default client) takes, instead of sending them.

    Yields the list the events are appended to. Blocks may nest; the innermost one
    gets the events.
    """
    stand_in = None
    if client is None:
        client = default.current()
        if client is None:
            from databuddy_otel.client import Databuddy

            stand_in = client = Databuddy(client_id="capture-events", disabled=True)
            default.install(stand_in)
    events: list[dict[str, Any]] = []
    prepare = client._prepare

    def capture(data: dict[str, Any]) -> Any:
        prepared = prepare(data)
        if isinstance(prepared, EventResponse):
            return prepared
        body, _, event_id, _ = prepared
        event = json.loads(body)
        events.append(event[0] if isinstance(event, list) else event)
        return EventResponse(True, event_id, None)

    client._prepare = capture
    try:
        yield events
    finally:
        client._prepare = prepare
        if stand_in is not None:
            default.install(None, only_if=stand_in)
            stand_in.shutdown(0)

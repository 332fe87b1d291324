"""Why an event was not delivered (yet), as the engine passes it between its parts."""

from __future__ import annotations

from typing import NamedTuple


class Failure(NamedTuple):
    """Why one event was not delivered (yet): a reason (a counter name) and a message.

    The SDK's own record of an outcome; ``on_undelivered`` gets :class:`Undelivered`.
    """

    reason: str
    message: str

"""Which client a logging front door sends to, and how it lets go of it.

The handler and the loguru sink take the same three forms: an explicit client
(used, never shut down), the client's options (a client of their own, shut down
when they close), or nothing: the process's default client, looked up at each use,
so a door configured before ``databuddy_otel.init()`` runs (Django configures
``LOGGING`` before its apps are ready) follows the client ``init()`` makes.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from databuddy_otel import Databuddy, default
from databuddy_otel._runtime import config

_log = logging.getLogger("databuddy")


class Target:
    """The client of one front door (``owner`` names the door in errors)."""

    __slots__ = ("_client", "_owned", "_owner")

    def __init__(
        self,
        client: Databuddy | None,
        options: Mapping[str, Any],
        *,
        owner: str,
        allowed: Sequence[str],
    ) -> None:
        if client is not None and options:
            raise TypeError(
                f"{owner} takes client= or the client's options "
                f"({', '.join(sorted(options))}), not both"
            )
        if client is not None and not callable(getattr(client, "ingest", None)):
            raise TypeError(
                f"client must be a databuddy_otel.Databuddy, not {type(client).__name__} "
                "(in dictConfig, name it as 'ext://module.attribute')"
            )
        if client is None and options:
            config.check_names(options, allowed, owner)
            client = Databuddy(**options)
        self._client = client
        self._owned = client is not None and bool(options)
        self._owner = owner

    @property
    def client(self) -> Databuddy:
        """The client to send to now (the default client may be built here)."""
        return self._client or default.get_client()

    def release(self, timeout: float) -> None:
        """Flush for at most ``timeout`` seconds; shut the client down if the door made it.

        The default client is only flushed, and only if it exists. Never raises.
        """
        client = self._client or default.current()
        try:
            if client is None:
                return
            if self._owned:
                client.shutdown(timeout=timeout)
            else:
                client.flush(timeout=timeout)
        except Exception:
            _log.exception("Closing %s failed", self._owner)

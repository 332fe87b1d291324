"""Front doors from Python logging into Databuddy.

>>> import logging
>>> from databuddy_logging import DatabuddyHandler
>>> logging.getLogger().addHandler(DatabuddyHandler(client_id="..."))  # doctest: +SKIP
>>> log = logging.getLogger("app")
>>> log.info("user_signup", extra={"db_props": {"plan": "pro"}})  # doctest: +SKIP

The structlog processor lives in :mod:`databuddy_logging.structlog`, so that
importing this package never imports structlog.
"""

from __future__ import annotations

from databuddy_logging.handler import DatabuddyHandler
from databuddy_otel.context import bind_ids

__all__ = ["DatabuddyHandler", "bind_ids"]

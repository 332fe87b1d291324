"""DatabuddyHandler from logging.config.dictConfig (the form Django's LOGGING setting uses)."""

from __future__ import annotations

import logging
import logging.config

from databuddy_logging import DatabuddyHandler
from databuddy_otel.devserver import DevServer
from tests.conftest import MakeClient


def _handler(logger: logging.Logger) -> DatabuddyHandler:
    [handler] = [h for h in logger.handlers if isinstance(h, DatabuddyHandler)]
    return handler


def test_dictconfig_with_client_options_builds_and_owns_a_client(
    server: DevServer, restore_logging: None
) -> None:
    """The client's options in the handler dict build a client that close() shuts down."""
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "handlers": {
                "databuddy": {
                    "class": "databuddy_logging.DatabuddyHandler",
                    "level": "INFO",
                    "client_id": "dict-site",
                    "api_url": server.url,
                    "batch_size": 5,
                    "record_fields": ["level"],
                }
            },
            "loggers": {"app.dict": {"handlers": ["databuddy"], "level": "DEBUG"}},
        }
    )
    logger = logging.getLogger("app.dict")
    logger.debug("below_handler_level", extra={"db_props": {}})
    logger.info("configured", extra={"db_props": {"via": "dictConfig"}})
    handler = _handler(logger)
    handler.close()
    [event] = server.events()
    assert event["name"] == "configured"
    assert event["websiteId"] == "dict-site"
    assert event["properties"] == {"via": "dictConfig", "log_level": "info"}
    assert handler.client.track(name="after").error == "client is shut down"


def test_dictconfig_with_a_client_object_uses_it(
    server: DevServer, make_client: MakeClient, restore_logging: None
) -> None:
    """A client object under "client" (e.g. via ext://) is used as is and not shut down."""
    client = make_client()
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "handlers": {
                "databuddy": {"class": "databuddy_logging.DatabuddyHandler", "client": client}
            },
            "loggers": {"app.dict2": {"handlers": ["databuddy"], "level": "INFO"}},
        }
    )
    logger = logging.getLogger("app.dict2")
    logger.info("shared_client", extra={"db_props": {}})
    assert _handler(logger).client is client
    _handler(logger).close()
    assert [e["name"] for e in server.events()] == ["shared_client"]
    assert client.track(name="still_open").success

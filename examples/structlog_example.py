"""Analytics events through structlog: DatabuddyProcessor in the processor chain.

Starts a local ingest server, logs a few events (only those with ``db_props`` or
``db_event=True`` are tracked; ids bound with ``bind_contextvars`` apply to every
event), flushes, and prints what the server stored. Needs structlog
(``pip install '.[structlog]'`` in the checkout). Run it with
``python examples/structlog_example.py``.
"""

from __future__ import annotations

import json

import structlog

from databuddy_logging.structlog import DatabuddyProcessor
from databuddy_otel import Databuddy
from databuddy_otel.devserver import DevServer


def main() -> None:
    with DevServer() as server:
        client = Databuddy(client_id="example-site", api_url=server.url)
        structlog.configure(
            processors=[
                structlog.contextvars.merge_contextvars,
                structlog.processors.add_log_level,
                DatabuddyProcessor(client, strip=True),  # db_* keys stay out of the log line
                structlog.processors.JSONRenderer(),
            ]
        )
        log = structlog.get_logger()

        log.info("server_started", port=8000)  # untagged: rendered, not tracked
        structlog.contextvars.bind_contextvars(db_anonymous_id="anon_42", db_session_id="sess_7")
        log.info("user_signup", db_props={"plan": "pro"})
        log.info("page_view", db_event=True, path="/pricing")
        structlog.contextvars.clear_contextvars()

        client.flush(timeout=5)
        print("\nstored by the server:")
        for event in server.events():
            shown = ("name", "anonymousId", "sessionId", "properties")
            print(json.dumps({key: event[key] for key in shown}))
        client.shutdown()


if __name__ == "__main__":
    main()

"""Analytics events through Python's ``logging``: a DatabuddyHandler on the root logger.

Starts a local ingest server, logs a few records (only the tagged ones become
events), flushes, and prints what the server stored. Run it with
``python examples/logging_example.py``.
"""

from __future__ import annotations

import json
import logging

from databuddy_logging import DatabuddyHandler, bind_ids
from databuddy_otel import Databuddy
from databuddy_otel.devserver import DevServer


def main() -> None:
    with DevServer() as server:
        client = Databuddy(client_id="example-site", api_url=server.url)
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
        handler = DatabuddyHandler(client=client)  # sits next to basicConfig's handler
        logging.getLogger().addHandler(handler)
        log = logging.getLogger("shop")

        log.info("server started")  # no db_props: printed, not tracked
        with bind_ids(anonymous_id="anon_42", session_id="sess_7"):
            log.info("user_signup", extra={"db_props": {"plan": "pro"}})
            log.info("checkout %s", "order-1", extra={"db_props": {"total": 19.9}})
            try:
                raise TimeoutError("payment provider did not answer")
            except TimeoutError:
                log.exception("payment_failed", extra={"db_props": {"provider": "acme"}})

        client.flush(timeout=5)
        print("\nstored by the server:")
        for event in server.events():
            shown = ("name", "anonymousId", "sessionId", "properties")
            print(json.dumps({key: event[key] for key in shown}))

        logging.getLogger().removeHandler(handler)
        handler.close()
        client.shutdown()


if __name__ == "__main__":
    main()

"""Analytics events through loguru: DatabuddySink next to the usual sinks.

Starts a local ingest server, logs a few messages (only those with ``db_props`` or
``db_event=True`` in their extra are tracked; ids bound with ``logger.bind()`` apply),
removes the sink (which flushes), and prints what the server stored. Needs loguru
(``pip install loguru``). Run it with ``python examples/loguru_example.py``.
"""

from __future__ import annotations

import json
import sys

from loguru import logger

from databuddy_logging.loguru import DatabuddySink
from databuddy_otel import Databuddy
from databuddy_otel.devserver import DevServer


def main() -> None:
    with DevServer() as server:
        client = Databuddy(client_id="example-site", api_url=server.url)
        logger.remove()
        logger.add(sys.stderr, format="{level} {message}")
        sink = logger.add(DatabuddySink(client))

        logger.info("server started on port {}", 8000)  # untagged: logged, not tracked
        visitor = logger.bind(db_anonymous_id="anon_42", db_session_id="sess_7")
        visitor.info("user_signup", db_props={"plan": "pro"})
        visitor.info("page_view", db_event=True)

        logger.remove(sink)  # flushes the client
        print(f"The server stored {len(server.events())} events:")
        for event in server.events():
            shown = ("name", "anonymousId", "sessionId", "properties")
            print(json.dumps({key: event[key] for key in shown}))
        client.shutdown()


if __name__ == "__main__":
    main()

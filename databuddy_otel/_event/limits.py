"""Wire limits of the Databuddy ingest server.

One place for the numbers both the client (which refuses what the server would
reject) and the local ingest server (which rejects it) rely on. Source:
the basket server's validation schema, see docs/protocol.md.
"""

from __future__ import annotations

#: Longest event name on ``POST /track`` (JavaScript string length).
MAX_NAME_LENGTH_TRACK = 256
#: Longest event name on the legacy ``POST /`` and ``POST /batch``.
MAX_NAME_LENGTH_LEGACY = 128
#: Longest ``eventId`` the legacy schema keeps (``/track`` strips it).
MAX_EVENT_ID_LENGTH_LEGACY = 512
#: Longest ``namespace`` and ``source``.
MAX_NAMESPACE_LENGTH = 64
MAX_SOURCE_LENGTH = 64
#: Longest ``anonymousId`` and ``sessionId``.
MAX_ID_LENGTH = 256
#: Longest ``websiteId``.
MAX_WEBSITE_ID_LENGTH = 255
#: Most top-level keys in ``properties``.
MAX_PROPERTIES = 50
#: Longest property key.
MAX_PROPERTY_KEY_LENGTH = 128
#: Longest ``JSON.stringify(properties)``, in UTF-16 code units.
MAX_PROPERTIES_JSON_LENGTH = 32_768
#: Oldest accepted ``timestamp``: 2000-01-01T00:00:00Z, in milliseconds.
MIN_TIMESTAMP_MS = 946_684_800_000
#: How far into the future a ``timestamp`` may lie, in milliseconds.
MAX_FUTURE_SKEW_MS = 3_600_000
#: Most events in one request.
MAX_EVENTS_PER_REQUEST = 100
#: Largest request body, in bytes.
MAX_BODY_BYTES = 1_048_576
#: Session ids the server keeps (others are stored as absent).
SESSION_ID_PATTERN = r"^[a-zA-Z0-9_-]+$"
MAX_KEPT_SESSION_ID_LENGTH = 128

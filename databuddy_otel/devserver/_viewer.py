"""The live event viewer: the page at ``GET /`` and its server-sent event stream at
``GET /stream``.

The page (``viewer.html``, shipped in the package; CSS and JS inline, nothing fetched
from elsewhere) opens an ``EventSource`` on ``/stream``. The stream first sends a
``snapshot`` (the newest events, the count per name, the kept refusals), then one
message per stored batch, refusal or clearing, as :class:`~.._feed.Feed` delivers
them. Each stream holds one handler thread, which waits on both its subscription and
its socket: it ends as soon as the browser goes away, the server stops, or the
viewer falls so far behind that the feed drops it (the browser then reconnects and
starts over from a fresh snapshot).
"""

from __future__ import annotations

import functools
import json
import secrets
import select
import socket
import threading
from importlib import resources
from io import BufferedIOBase

from databuddy_otel.devserver._feed import Message, Subscription

#: Events the snapshot holds (the page keeps at most a few thousand rows anyway).
SNAPSHOT_EVENTS = 500
#: Seconds between comment lines on an idle stream, so proxies keep it open.
HEARTBEAT_SECONDS = 15.0
#: How long the browser waits before reconnecting a stream that ended, in ms.
RECONNECT_MS = 1000
#: Longest a write to a viewer may block before the viewer is given up on.
WRITE_TIMEOUT_SECONDS = 10.0
_NONCE_PLACEHOLDER = b"__CSP_NONCE__"


@functools.lru_cache(maxsize=1)
def _template() -> bytes:
    return resources.files("databuddy_otel.devserver").joinpath("viewer.html").read_bytes()


def page() -> tuple[bytes, dict[str, str]]:
    """The viewer page and its headers, with a fresh nonce for its inline script.

    The Content-Security-Policy allows only the page's own script and style and
    connections back to this server, so even markup that slipped into the page
    could neither run nor load anything.
    """
    nonce = secrets.token_urlsafe(16)
    policy = (
        "default-src 'none'; "
        f"script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
        "connect-src 'self'; img-src 'none'; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    )
    headers = {
        "Content-Security-Policy": policy,
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-store",
        "Referrer-Policy": "no-referrer",
    }
    return _template().replace(_NONCE_PLACEHOLDER, nonce.encode("ascii")), headers


def frame(message: Message) -> bytes:
    """One server-sent event carrying ``message`` as JSON (ASCII, on one line)."""
    return b"data: " + json.dumps(message, separators=(",", ":")).encode("ascii") + b"\n\n"


def serve_stream(
    subscription: Subscription,
    snapshot: Message,
    connection: socket.socket,
    wfile: BufferedIOBase,
) -> None:
    """Write the event stream to ``connection`` until the viewer or the server goes.

    The response headers are already sent. The caller owns ``subscription`` (from
    ``IngestState.open_viewer``) and closes it afterwards.
    """
    thread = threading.current_thread()
    name, thread.name = thread.name, "databuddy-devserver-viewer"
    try:
        connection.settimeout(WRITE_TIMEOUT_SECONDS)
        wfile.write(b"retry: %d\n" % RECONNECT_MS + frame(snapshot))
        wfile.flush()
        watched = [subscription.fileno(), connection.fileno()]
        while not subscription.ended:
            ready, _, _ = select.select(watched, [], [], HEARTBEAT_SECONDS)
            if watched[1] in ready and not connection.recv(4096):
                return  # the browser closed the stream
            messages = subscription.take()
            if messages:
                wfile.write(b"".join(frame(message) for message in messages))
            elif not ready:
                wfile.write(b": keep-alive\n\n")
            wfile.flush()
    except (OSError, ValueError):
        pass  # the browser went away mid-write, or the server cut the connection
    finally:
        thread.name = name

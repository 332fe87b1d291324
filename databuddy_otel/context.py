"""Ids bound to the current request or task.

``bind_ids`` stores an anonymous id and a session id in a ``ContextVar``, so
every event tracked inside the block (by the client, the logging handler, the
structlog processor or the span exporter's caller) carries them without passing
them around. Ids given on the event itself win. Threads and asyncio tasks each
see their own binding, as ``contextvars`` promise.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import NamedTuple, Optional


class BoundIds(NamedTuple):
    anonymous_id: Optional[str] = None
    session_id: Optional[str] = None


#: What :func:`current_ids` returns outside any ``bind_ids`` block (compare with ``is``).
UNBOUND = BoundIds()
_bound: ContextVar[BoundIds] = ContextVar("databuddy_bound_ids", default=UNBOUND)


def current_ids() -> BoundIds:
    """The ids bound in the current context (fields are ``None`` when unbound)."""
    return _bound.get()


@contextmanager
def bind_ids(anonymous_id: str | None = None, session_id: str | None = None) -> Iterator[BoundIds]:
    """Bind ids for the duration of a ``with`` block; unset ids keep the outer binding."""
    outer = _bound.get()
    ids = BoundIds(anonymous_id or outer.anonymous_id, session_id or outer.session_id)
    token = _bound.set(ids)
    try:
        yield ids
    finally:
        _bound.reset(token)

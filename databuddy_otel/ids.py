"""Ids in the format the Databuddy web SDK uses (``anon_``/``sess_`` + UUID v4)."""

from __future__ import annotations

import os
import random

# The variant nibble of a UUID is 10xx in binary: 8, 9, a or b.
_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}

# A generator of our own, seeded from the OS: an application that calls
# random.seed(n) must not make every run (or every worker) repeat our event ids,
# which the legacy endpoint deduplicates on. A forked child reseeds it, so
# parent and children never share a sequence.
_rng = random.Random(os.urandom(32))
_randbytes = _rng.randbytes


def _reseed() -> None:
    _rng.seed(os.urandom(32))


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reseed)


def uuid4_text() -> str:
    """A random UUID version 4 as text, several times faster than ``str(uuid.uuid4())``.

    Event ids need uniqueness, not secrecy: a Mersenne Twister seeded with 256
    bits from the OS (per process) gives that at a fraction of ``os.urandom``'s cost.
    """
    h = _randbytes(16).hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"


def new_anonymous_id() -> str:
    """A new anonymous visitor id, ``anon_<uuid4>``, for server-only flows."""
    return "anon_" + uuid4_text()


def new_session_id() -> str:
    """A new session id, ``sess_<uuid4>``, for server-only flows."""
    return "sess_" + uuid4_text()

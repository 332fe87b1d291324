"""One spool file as its owner keeps track of it: which events are settled, which wait.

An event of a segment is *unacknowledged* until the server took it or refused it
for good; an unacknowledged event is either in memory (queued or being sent) or
*waiting* on disk for a later attempt. The owner keeps the offsets of the event
records, so taking waiting events back reads only the part of the file that
holds them.
"""

from __future__ import annotations

import os
from array import array

from databuddy_otel import spool_format as fmt


class Segment:
    """A spool file this process owns (its lock is held while ``fd`` is open)."""

    def __init__(self, path: str, fd: int, *, size: int) -> None:
        self.path = path
        self.fd = fd
        self.size = size
        self.count = 0  # event indices are 0 .. count - 1
        self.offsets = array("q")  # offset of each index's record; -1 when it is missing
        self.acked = bytearray()  # one bit per index
        self.waiting: set[int] = set()
        self.unacked = 0
        self.active = False
        self.dirty = False

    def acknowledge(self, index: int) -> bool:
        """Mark ``index`` settled; ``True`` if it was not already."""
        byte, bit = divmod(index, 8)
        acked = self.acked
        if byte >= len(acked):
            acked.extend(bytes(byte - len(acked) + 1))
        if acked[byte] >> bit & 1:
            return False
        acked[byte] |= 1 << bit
        self.unacked -= 1
        self.waiting.discard(index)
        return True

    def is_acked(self, index: int) -> bool:
        byte, bit = divmod(index, 8)
        return byte < len(self.acked) and bool(self.acked[byte] >> bit & 1)

    def span(self, indices: list[int]) -> tuple[int, int]:
        """The byte range of the file holding the records of sorted ``indices``."""
        last = indices[-1]
        end = self.size
        for following in range(last + 1, self.count):
            if self.offsets[following] >= 0:
                end = self.offsets[following]
                break
        return self.offsets[indices[0]], end


class Unreadable(Exception):
    """The file is not a spool file (a foreign or emptied file named ``*.spool``)."""


def take_over(path: str, fd: int, dest: str) -> tuple[Segment, int] | None:
    """Read a file whose owner died: the segment and its number of damaged records.

    ``None`` when it holds another destination's events (left for that client).
    Raises :class:`Unreadable` for a file that is not a spool file.
    """
    size = os.fstat(fd).st_size
    data = os.pread(fd, size, 0)
    header = fmt.header_ok(data, dest)
    if header is None:
        raise Unreadable(path)
    if header is False:
        return None
    segment = Segment(path, fd, size=size)
    found: dict[int, int] = {}
    acked: list[int] = []
    bad = 0
    for offset, record in fmt.records(data):
        if record.kind == "e":
            found.setdefault(record.index, offset)
        elif record.kind == "a":
            acked.extend(record.acked)
        elif record.kind == "bad":
            bad += 1
    segment.count = max(found, default=-1) + 1
    segment.offsets.extend([-1] * segment.count)
    for index, offset in found.items():
        segment.offsets[index] = offset
    segment.unacked = len(found)
    segment.waiting = set(found)
    for index in acked:
        if index in found:
            segment.acknowledge(index)
    return segment, bad

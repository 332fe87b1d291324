"""One spool file as its owner keeps track of it: which events are settled, which wait.

An event of a segment is *unacknowledged* until the server took it or refused it
for good; an unacknowledged event is either in memory (queued or being sent) or
*waiting* on disk for a later attempt. Taking waiting events back reads only the
part of the file that holds them: the offsets of the records are indexed when
first needed, not on every write.

Records are written through a memory map of space reserved on disk up front: a
copy into the page cache, which a killed process leaves to the kernel, and no
system call, so ``track()`` keeps the GIL (a ``write()`` would hand it to another
thread on every event). Where the filesystem cannot reserve space, ``write()``
it is.
"""

from __future__ import annotations

import contextlib
import mmap
import os
from array import array

from databuddy_otel._spool import spool_format as fmt

#: How much a full segment grows by to take more acknowledgements.
GROWTH = 64 * 1024


class Segment:
    """A spool file this process owns (its lock is held while ``fd`` is open).

    ``size`` bytes hold records; ``capacity`` bytes are reserved on disk (mapped).
    """

    __slots__ = (
        "acked",
        "acked_count",
        "active",
        "capacity",
        "count",
        "fd",
        "indexed",
        "map",
        "missing",
        "number",
        "offsets",
        "path",
        "size",
        "waiting",
    )

    def __init__(self, path: str, fd: int, *, size: int, capacity: int = 0) -> None:
        self.path = path
        self.fd = fd
        self.number = 0  # given by the spool that holds it
        self.size = size
        self.capacity = capacity
        self.map: mmap.mmap | None = _map(fd, capacity) if capacity else None
        self.count = 0  # event indices are 0 .. count - 1
        self.missing = 0  # indices below count with no readable record (a damaged file)
        self.offsets = array("q")  # offset of each index's record; -1 when it is missing
        self.indexed = size  # bytes up to which ``offsets`` is complete
        self.acked = bytearray()  # one byte per index: 1 once settled
        self.acked_count = 0
        self.waiting: set[int] = set()
        self.active = False

    @property
    def unacked(self) -> int:
        """Events written here and not settled yet."""
        return self.count - self.missing - self.acked_count

    @property
    def footprint(self) -> int:
        """Bytes this segment holds on disk (what ``spool_max_bytes`` counts)."""
        return max(self.size, self.capacity)

    def write(self, line: bytes) -> bool:
        """Append one record; ``False`` when it does not fit in the reserved space."""
        end = self.size + len(line)
        if self.map is None:
            os.pwrite(self.fd, line, self.size)
        elif end > self.capacity:
            return False
        else:
            self.map[self.size : end] = line
        self.size = end
        return True

    def grow(self, need: int) -> None:
        """Reserve more space (an acknowledgement that no longer fits)."""
        if self.map is None:
            return
        capacity = self.capacity + max(need, GROWTH)
        if not fmt.reserve(self.fd, capacity):
            raise OSError("the spool's filesystem no longer reserves space")
        self.map.close()
        self.map = _map(self.fd, capacity)
        self.capacity = capacity

    def close(self) -> None:
        """Unmap and close (which lets go of the lock)."""
        if self.map is not None:
            with contextlib.suppress(Exception):
                self.map.close()
            self.map = None
        with contextlib.suppress(OSError):
            os.close(self.fd)

    def acknowledge_all(self, indices: list[int]) -> list[int]:
        """Mark ``indices`` settled; the ones that were not already."""
        acked = self.acked
        first, last = min(indices), max(indices)
        if len(acked) <= last:
            acked.extend(bytes(last + 1 - len(acked)))
        if last - first + 1 == len(indices) and acked.find(1, first, last + 1) < 0:
            acked[first : last + 1] = b"\x01" * len(indices)  # a run, none acked yet
            fresh = indices
        else:
            fresh = []
            for index in indices:
                if not acked[index]:
                    acked[index] = 1
                    fresh.append(index)
        self.acked_count += len(fresh)
        if self.waiting:
            self.waiting.difference_update(fresh)
        return fresh

    def is_acked(self, index: int) -> bool:
        return index < len(self.acked) and self.acked[index] == 1

    def index(self) -> None:
        """Complete ``offsets`` with the records written since it was last done."""
        if self.indexed >= self.size:
            return
        if self.map is not None:
            data = self.map[self.indexed : self.size]
        else:
            data = os.pread(self.fd, self.size - self.indexed, self.indexed)
        offsets = self.offsets
        for offset, record in fmt.records(data, self.indexed):
            if record.kind == "e":
                if record.index >= len(offsets):
                    offsets.extend([-1] * (record.index + 1 - len(offsets)))
                offsets[record.index] = offset
        self.indexed = self.size

    def span(self, indices: list[int]) -> tuple[int, int]:
        """The byte range of the file holding the records of sorted ``indices``."""
        self.index()
        last = indices[-1]
        end = self.size
        for following in range(last + 1, self.count):
            if self.offsets[following] >= 0:
                end = self.offsets[following]
                break
        return self.offsets[indices[0]], end


def _map(fd: int, size: int) -> mmap.mmap:
    # Pages faulted in up front (where the platform can), once per segment, rather
    # than one page fault every twenty events inside track().
    flags = mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0)
    return mmap.mmap(fd, size, flags=flags)


class Unreadable(Exception):
    """The file is not a spool file (a foreign or emptied file named ``*.spool``)."""


def take_over(path: str, fd: int, dest: str) -> tuple[Segment, int] | None:
    """Read a file whose owner died: the segment and its number of damaged records.

    ``None`` when it holds another destination's events (left for that client).
    Raises :class:`Unreadable` for a file that is not a spool file.
    """
    capacity = os.fstat(fd).st_size
    data = os.pread(fd, capacity, 0).rstrip(b"\x00")
    header = fmt.header_ok(data, dest)
    if header is None:
        raise Unreadable(path)
    if header is False:
        return None
    if not data.endswith(b"\n"):  # a record cut short by a crash: end its line
        data += b"\n"
        os.pwrite(fd, b"\n", len(data) - 1)
    # No event is appended to a segment taken over, only acknowledgements: the space its
    # writer reserved and never used is given back, so that what it costs (toward
    # spool_max_bytes, and on the disk) is what it holds, plus room for the acks.
    keep = min(capacity, len(data) + GROWTH)
    if keep < capacity:
        os.ftruncate(fd, keep)
    reserved = keep >= len(data) and fmt.reserve(fd, keep)
    segment = Segment(path, fd, size=len(data), capacity=keep if reserved else 0)
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
    segment.missing = segment.count - len(found)
    segment.offsets.extend([-1] * segment.count)
    for index, offset in found.items():
        segment.offsets[index] = offset
    segment.indexed = segment.size
    segment.waiting = set(found)
    settled = sorted(set(acked) & found.keys())
    if settled:
        segment.acknowledge_all(settled)
    return segment, bad

"""The segments one process writes: events written ahead, acknowledged, deferred.

The part of the spool that callers and senders touch (:mod:`databuddy_otel._spool.spool`
adds its thread, taking events back and taking over dead processes' files).

Threads and the lock: ``_lock`` guards the segment table, the active segment,
the spare, the byte budget and the ``waiting`` count. ``track()`` holds it for a
copy into the active segment's memory map only. The disk work a caller would
otherwise wait for is done outside it: the spool thread makes the next segment
(create, reserve, directory fsync) ahead as a *spare* while the active one fills,
and ``spool_fsync="always"`` syncs after the lock is released. Only the first
segment of a process, or one the spare cannot hold, is made on the caller's
thread, under a lock of its own (``_making``) that acknowledgements never wait for.
"""

from __future__ import annotations

import contextlib
import errno
import os
import threading
import time

from databuddy_otel._queue.admission import SpoolFull, SpoolRef
from databuddy_otel._queue.ledger import Ledger
from databuddy_otel._runtime.config import Settings
from databuddy_otel._runtime.sdk_log import Log
from databuddy_otel._spool import spool_format as fmt
from databuddy_otel._spool.spool_segment import Segment
from databuddy_otel._wire.failure import Failure
from databuddy_otel.models import SPOOL_FULL

#: Seconds between attempts to write a spool that could not be written.
RETRY_BROKEN = 30.0
_INDEX = 0xFFFFFFFF
#: What the writing steps return when the event needs a new segment (refs are >= 0).
_NEW = -1


class SpoolWriter:
    """This process's segments of one spool directory; every method is thread-safe."""

    def __init__(self, settings: Settings, *, ledger: Ledger, log: Log) -> None:
        assert settings.spool_dir is not None
        self.directory = os.path.abspath(settings.spool_dir)
        self.max_bytes = settings.spool_max_bytes
        self.fsync = settings.spool_fsync
        self.segment_bytes = min(4 << 20, max(64 << 10, self.max_bytes // 8))
        self.dest = fmt.destination(
            settings.protocol, settings.api_url, settings.client_id, settings.api_key
        )
        self.unspooled = 0
        self._protocol = settings.wire_protocol
        self._ledger = ledger
        self._log = log
        self._init_state()

    def _init_state(self) -> None:
        self._lock = threading.Lock()
        self._wake = threading.Event()
        #: every segment this process holds, by number (oldest first)
        self._numbered: dict[int, Segment] = {}
        self._next_number = 1
        self._active: Segment | None = None
        #: the next segment, made ahead by the spool thread (counted in ``_bytes``)
        self._spare: Segment | None = None
        self._making = threading.Lock()
        self._bytes = 0
        #: events waiting on disk only, in every segment
        self.waiting = 0
        self._broken_until = 0.0
        self._warned = False
        self._closed = False
        self._pid = os.getpid()
        #: names of files that look like ours but cannot be read as ours
        self._skipped: set[str] = set()

    # -- writing (caller threads) ------------------------------------------
    def append(self, body: str, event_id: str, caller_id: bool) -> SpoolRef | None:
        """Write one event ahead: its reference, or ``None`` when the spool cannot be
        written (the event then lives in memory only). Raises ``SpoolFull``."""
        with self._lock:
            segment = self._active
            if segment is not None and segment.map is not None:  # the hot path
                index = segment.count
                line = fmt.event_line(index, caller_id, body)
                start = segment.size
                end = start + len(line)
                if end <= segment.capacity and self.fsync != "always":
                    segment.map[start:end] = line
                    segment.size = end
                    segment.count = index + 1
                    return segment.number << 32 | index
            ref = self._append_slow(body, caller_id)
        if ref == _NEW:
            ref = self._append_to_new(body, caller_id)
        if ref is not None and self.fsync == "always":
            self._sync_ref(ref)
        return ref

    def _append_slow(self, body: str, caller_id: bool) -> SpoolRef | None:
        """Under the lock: write into the active segment, else into the spare.

        ``_NEW`` when neither can take the event, ``None`` when it is not spooled.
        """
        for _ in range(2):
            segment = self._active
            if segment is None or segment.size >= self.segment_bytes:
                if self._closed or time.monotonic() < self._broken_until:
                    self.unspooled += 1
                    return None
                if segment is not None:
                    self._retire(segment)
                segment = self._take_spare(len(body))
                if segment is None:
                    return _NEW
            ref = self._write(segment, body, caller_id)
            if ref != _NEW:
                return ref
        return _NEW

    def _write(self, segment: Segment, body: str, caller_id: bool) -> SpoolRef | None:
        """Under the lock: append to ``segment``; ``_NEW`` when its reserved space is used up."""
        index = segment.count
        line = fmt.event_line(index, caller_id, body)
        before = segment.footprint
        try:
            if not segment.write(line):
                self._retire(segment)
                return _NEW
        except OSError as exc:
            self._broken(exc)
            self._retire(segment)
            self.unspooled += 1
            return None
        self._bytes += segment.footprint - before
        segment.count = index + 1
        return segment.number << 32 | index

    def _take_spare(self, need: int) -> Segment | None:
        """Under the lock: the spare as the active segment, if it can hold ``need`` bytes."""
        spare = self._spare
        if spare is None or (spare.map is not None and spare.size + need + 64 > spare.capacity):
            return None
        self._spare = None
        self._install(spare)
        return spare

    def _append_to_new(self, body: str, caller_id: bool) -> SpoolRef | None:
        """Make a segment for an event no held one can take; the spool's lock is not held
        while the file is made, so acknowledgements and other segments' readers go on."""
        with self._making:
            with self._lock:
                ref = self._append_slow(body, caller_id)  # made meanwhile by another thread?
                if ref != _NEW:
                    return ref
                capacity = self._budget(len(body))
            segment = self._make(capacity)
            with self._lock:
                self._bytes -= capacity
                if segment is None or self._closed:
                    self.unspooled += 1
                    if segment is not None:
                        segment.close()
                        with contextlib.suppress(OSError):
                            os.unlink(segment.path)
                    return None
                self._add(segment)
                self._bytes += segment.footprint
                self._install(segment)
                ref = self._write(segment, body, caller_id)
                if ref == _NEW:
                    self.unspooled += 1
                    return None
                return ref

    def _budget(self, need: int) -> int:
        """Under the lock: the bytes a new segment may reserve, counted at once.

        Raises ``SpoolFull`` when ``spool_max_bytes`` leaves no room for ``need``.
        """
        capacity = min(self.segment_bytes, self.max_bytes - self._bytes)
        if capacity < need + 1024:
            message = f"spool full ({self.max_bytes} bytes in {self.directory})"
            raise SpoolFull(Failure(SPOOL_FULL, message))
        self._bytes += capacity
        return capacity

    def _make(self, capacity: int) -> Segment | None:
        """A new segment file (no lock held); ``None`` while the directory is unwritable."""
        try:
            fmt.make_directory(self.directory)
            path, fd, header, reserved = self._create(capacity)
            if self.fsync != "never":
                fmt.sync_directory(self.directory)
            segment = Segment(path, fd, size=header, capacity=reserved)
        except OSError as exc:
            self._broken(exc)
            return None
        if self._warned and self._broken_until:
            self._log.warning("Databuddy spool %s is writable again", self.directory)
        self._broken_until = 0.0
        return segment

    def _install(self, segment: Segment) -> None:
        """Under the lock: ``segment`` takes the events from now on."""
        if self._active is not None:
            self._retire(self._active)
        segment.active = True
        self._active = segment
        self._opened()

    def _opened(self) -> None:
        """A segment became the active one: the spool thread makes the next one ahead."""
        self._wake.set()

    def make_spare(self) -> None:
        """Make the next segment ahead, once the active one is half full (spool thread).

        Not near ``spool_max_bytes``: there, a caller makes a smaller one when needed.
        """
        with self._lock:
            active = self._active
            if self._spare is not None or active is None or self._closed:
                return
            if time.monotonic() < self._broken_until:
                return
            if active.size < (active.capacity or self.segment_bytes) // 2:
                return
            if self.max_bytes - self._bytes < 2 * self.segment_bytes:
                return
            capacity = self._budget(0)
        with self._making:
            segment = self._make(capacity)
        with self._lock:
            self._bytes -= capacity
            if segment is None:
                return
            self._add(segment)
            self._bytes += segment.footprint
            if self._closed or self._spare is not None:
                self._remove(segment)
                return
            self._spare = segment

    def _sync_ref(self, ref: SpoolRef) -> None:
        """``spool_fsync="always"``: the record of ``ref`` on disk, outside the lock."""
        with self._lock:
            segment = self._numbered.get(ref >> 32)
            fd = -1 if segment is None else segment.fd
        if fd < 0:
            return  # settled and deleted already
        try:
            os.fsync(fd)
        except OSError as exc:
            if exc.errno != errno.EBADF:  # EBADF: closed meanwhile, by close() or a delete
                self._broken(exc)

    def _create(self, capacity: int) -> tuple[str, int, int, int]:
        """A new segment file; tried again when its temporary file vanished under it
        (another program cleaning the directory)."""
        for _ in range(2):
            try:
                return fmt.create(self.directory, self.dest, capacity)
            except FileNotFoundError:
                continue
        return fmt.create(self.directory, self.dest, capacity)

    def _add(self, segment: Segment) -> None:
        """Under the lock: hold ``segment`` under a number of its own."""
        segment.number = self._next_number
        self._next_number += 1
        self._numbered[segment.number] = segment

    def _broken(self, exc: OSError) -> None:
        self._broken_until = time.monotonic() + RETRY_BROKEN
        if not self._warned:
            self._warned = True
            self._log.warning(
                "Databuddy cannot write its spool in %s (%s); events are kept in memory only "
                "until it can",
                self.directory,
                exc,
            )

    def _retire(self, segment: Segment) -> None:
        """Under the lock: stop appending to ``segment``; delete it if nothing waits in it."""
        segment.active = False
        if self._active is segment:
            self._active = None
        if segment.unacked == 0:
            self._remove(segment)

    def _remove(self, segment: Segment) -> None:
        with contextlib.suppress(OSError):
            os.unlink(segment.path)
        self._forget(segment)

    def _forget(self, segment: Segment) -> None:
        segment.close()  # lets go of the lock
        if self._numbered.pop(segment.number, None) is not None:
            self._bytes -= segment.footprint
            self.waiting -= len(segment.waiting)

    # -- settling (sender threads) -----------------------------------------
    def ack(self, refs: list[SpoolRef]) -> None:
        """These events are settled: never send them again."""
        if not refs:
            return
        with self._lock:
            for number, indices in _by_segment(refs).items():
                segment = self._numbered.get(number)
                if segment is None:
                    continue
                fresh = segment.acknowledge_all(indices)
                if not fresh:
                    continue
                if segment.unacked == 0 and not segment.active:
                    self._remove(segment)
                    continue
                line = fmt.ack_line(fresh)
                before = segment.footprint
                try:
                    if not segment.write(line):
                        segment.grow(len(line))
                        segment.write(line)
                except OSError:
                    continue  # at worst these events are sent again after a crash
                self._bytes += segment.footprint - before

    def defer(self, refs: list[SpoolRef]) -> None:
        """These events leave memory unsettled: they wait on disk for a later attempt."""
        with self._lock:
            for ref in refs:
                segment, index = self._numbered.get(ref >> 32), ref & _INDEX
                if segment is None or index in segment.waiting or segment.is_acked(index):
                    continue
                segment.waiting.add(index)
                self.waiting += 1

    def wake(self) -> None:
        """Room freed up in the queue: the spool thread may take waiting events back."""
        self._wake.set()

    def sync(self) -> None:
        """fsync every segment (cheap for one with nothing new to write back)."""
        with self._lock:
            held = list(self._numbered.values())
        for segment in held:
            with contextlib.suppress(OSError):
                os.fsync(segment.fd)

    # -- lifecycle -----------------------------------------------------------
    def close(self) -> int:
        """Let go of the segments; how many events stay on disk."""
        self._closed = True
        if self.fsync != "never":
            self.sync()
        kept = 0
        with self._lock:
            for segment in list(self._numbered.values()):
                if segment.unacked == 0:
                    self._remove(segment)
                else:
                    kept += segment.unacked
                    self._forget(segment)
            self._active = self._spare = None
        return kept

    def release_settled(self) -> None:
        """Delete the file being written if every event in it is settled (the others go
        as soon as they are): for a process about to end without :meth:`close`, such as
        a uvicorn worker that dies by the re-raised SIGTERM, so that it leaves no empty
        file behind. An event appended later opens a new file."""
        with self._lock:
            active = self._active
            if active is not None and active.unacked == 0:
                self._retire(active)
            spare, self._spare = self._spare, None
            if spare is not None:
                self._remove(spare)

    def after_fork(self) -> None:
        """A forked child lets go of the parent's files and starts segments of its own."""
        inherited, closed = list(self._numbered.values()), self._closed
        self._init_state()
        self._closed = closed
        for segment in inherited:
            segment.close()  # the parent's descriptor keeps its lock


def _by_segment(refs: list[SpoolRef]) -> dict[int, list[int]]:
    numbers = {ref >> 32 for ref in refs}
    if len(numbers) == 1:  # the usual case: one chunk, one segment
        return {numbers.pop(): [ref & _INDEX for ref in refs]}
    grouped: dict[int, list[int]] = {}
    for ref in refs:
        grouped.setdefault(ref >> 32, []).append(ref & _INDEX)
    return grouped

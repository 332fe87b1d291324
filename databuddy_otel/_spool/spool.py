"""The spool: events written ahead to disk, so that they outlive the process.

With ``spool_dir`` set, every event the client accepts is appended to a segment
file of this process before ``track()`` returns (data handed to the OS survives
``kill -9``; what survives a power loss depends on ``spool_fsync``). Delivered
events, and events the server refused for good, are acknowledged in the same
file; a segment whose events are all acknowledged is deleted, so the spool
shrinks as the server answers.

An event is *in memory* (queued, being sent) or *waiting* on disk: when the
memory queue was full, or its retries ran out while the server was unreachable,
or the client shut down before it was delivered. The spool thread takes waiting
events back into the queue as room frees up, slowly (a probe every few seconds)
while the server is unreachable.

Ownership: each process holds an exclusive lock on the segments it writes. A
client that starts takes over the segments no live process holds (those of dead
processes), if they were written for the same destination, and delivers them
with their original ids and timestamps. Several processes may share one
directory; a forked child starts segments of its own. POSIX only (``flock``).

Bounded by ``spool_max_bytes`` per process: past it, new events are refused as
``spool_full``. A spool that cannot be written warns once and the client goes on
in memory, counting the events it could not spool.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from typing import TYPE_CHECKING

from databuddy_otel._queue.admission import SpoolFull
from databuddy_otel._queue.ledger import Ledger
from databuddy_otel._runtime.config import Settings
from databuddy_otel._runtime.quiet_threads import quiet_start
from databuddy_otel._runtime.sdk_log import Log
from databuddy_otel._runtime.thread_roles import mark_worker
from databuddy_otel._spool import spool_format as fmt
from databuddy_otel._spool.spool_segment import Segment, Unreadable, take_over
from databuddy_otel._wire.failure import Failure
from databuddy_otel.models import SPOOL_CORRUPT, SPOOL_FULL, Undelivered

if TYPE_CHECKING:
    from databuddy_otel._queue.event_queue import EventQueue

#: Seconds between attempts to write a spool that could not be written.
RETRY_BROKEN = 30.0
#: Seconds between looks for segments of dead processes.
RESCAN = 30.0
#: Seconds between probes (events taken back) while the server is unreachable.
PROBE = 5.0

#: Where one event lives in the spool: its segment's number times 2**32, plus its
#: index there. An int, so a queued event stays a tuple of atoms, which the cyclic
#: garbage collector stops tracking (100,000 queued events cost it nothing).
SpoolRef = int
_INDEX = 0xFFFFFFFF


class Spool:
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
        self._queue: EventQueue | None = None
        self._init_state()

    def _init_state(self) -> None:
        self._lock = threading.Lock()
        self._wake = threading.Event()
        #: every segment this process holds, by number (oldest first)
        self._numbered: dict[int, Segment] = {}
        self._next_number = 1
        self._active: Segment | None = None
        self._bytes = 0
        #: events waiting on disk only, in every segment
        self.waiting = 0
        self._broken_until = 0.0
        self._warned = False
        self._closed = False
        self._thread: threading.Thread | None = None
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
            return self._append_slow(body, caller_id)

    def _append_slow(self, body: str, caller_id: bool) -> SpoolRef | None:
        """Under the lock: a new segment, a segment written with ``write()``, an fsync."""
        for _ in range(2):  # the active segment, or else a new one
            segment = self._active
            if segment is None or segment.size >= self.segment_bytes:
                segment = self._new_segment(len(body))
                if segment is None:
                    self.unspooled += 1
                    return None
            index = segment.count
            line = fmt.event_line(index, caller_id, body)
            before = segment.footprint
            try:
                if not segment.write(line):
                    self._retire(segment)  # its reserved space is used up
                    continue
                if self.fsync == "always":
                    os.fsync(segment.fd)
            except OSError as exc:
                self._broken(exc)
                self._retire(segment)
                self.unspooled += 1
                return None
            self._bytes += segment.footprint - before
            segment.count = index + 1
            return segment.number << 32 | index
        self.unspooled += 1
        return None

    def _new_segment(self, need: int) -> Segment | None:
        """Under the lock: open the next segment; ``None`` while the directory is unwritable.

        Raises ``SpoolFull`` when ``spool_max_bytes`` leaves no room for it.
        """
        if self._closed or time.monotonic() < self._broken_until:
            return None
        if self._active is not None:
            self._retire(self._active)
        capacity = min(self.segment_bytes, self.max_bytes - self._bytes)
        if capacity < need + 1024:
            message = f"spool full ({self.max_bytes} bytes in {self.directory})"
            raise SpoolFull(Failure(SPOOL_FULL, message))
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
        segment.active = True
        self._add(segment)
        self._active = segment
        self._bytes += segment.footprint
        self._start_thread()
        return segment

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

    # -- taking events back ------------------------------------------------
    def feed(self, queue: EventQueue, *, limit: int) -> int:
        """Offer up to ``limit`` waiting events to ``queue``, oldest first; how many it took."""
        chosen: list[tuple[Segment, list[int], int, int]] = []
        with self._lock:
            left = limit
            for segment in sorted(self._numbered.values(), key=lambda s: s.path):
                if left <= 0:
                    break
                if not segment.waiting:
                    continue
                indices = sorted(segment.waiting)[:left]
                # Out of the segment's set (no one else takes them), still counted as
                # waiting until they are in memory: a flush never sees them nowhere.
                segment.waiting.difference_update(indices)
                left -= len(indices)
                chosen.append((segment, indices, *segment.span(indices)))
        taken = 0
        returned: list[SpoolRef] = []
        for segment, indices, start, end in chosen:
            # Read outside the lock: callers append meanwhile, and must not wait for it.
            data = fmt.read_range(segment.path, start, end)
            wanted = set(indices)
            found = 0
            for _, record in fmt.records(data or b"", start):
                if record.kind != "e" or record.index not in wanted:
                    continue
                wanted.discard(record.index)
                found += 1
                name, event_id = self._protocol.identity(record.body)
                ref = segment.number << 32 | record.index
                if queue.offer_spooled(record.body, name, event_id, record.caller_id, ref):
                    taken += 1
                    with self._lock:  # now counted in memory: no longer waiting
                        self.waiting -= 1
                else:
                    returned.append(ref)
            returned.extend(segment.number << 32 | i for i in wanted)  # unread: try later
        with self._lock:
            for ref in returned:
                segment, index = self._numbered[ref >> 32], ref & _INDEX
                if not segment.is_acked(index):
                    segment.waiting.add(index)
                else:
                    self.waiting -= 1
        return taken

    # -- the spool thread --------------------------------------------------
    def start(self, queue: EventQueue) -> None:
        """Take over what dead processes left, then start the spool thread."""
        self._queue = queue
        self.adopt()
        self._start_thread()

    def _start_thread(self) -> None:
        if self._thread is not None or self._queue is None or self._closed:
            return
        try:
            self._thread = threading.Thread(target=self._run, name="databuddy-spool", daemon=True)
            with quiet_start():
                self._thread.start()
        except RuntimeError:  # interpreter shutdown
            self._thread = None

    def _run(self) -> None:
        mark_worker()
        queue = self._queue
        assert queue is not None
        next_scan = time.monotonic() + RESCAN
        next_sync = next_probe = 0.0
        while not self._closed:
            self._wake.wait(0.25)
            self._wake.clear()
            now = time.monotonic()
            try:
                if self.fsync == "interval" and now >= next_sync:
                    next_sync = now + 1.0
                    self.sync()
                if now >= next_scan:
                    next_scan = now + RESCAN
                    self.adopt()
                room = queue.room()
                if room > 0 and self.waiting > 0:
                    if not queue.server_down():
                        self.feed(queue, limit=room)
                    elif now >= next_probe:
                        next_probe = now + PROBE
                        self.feed(queue, limit=min(room, 100))
            except Exception:
                self._log.exception("Databuddy spool thread failed; retrying")

    def sync(self) -> None:
        """fsync every segment (cheap for one with nothing new to write back)."""
        with self._lock:
            held = list(self._numbered.values())
        for segment in held:
            with contextlib.suppress(OSError):
                os.fsync(segment.fd)

    # -- taking over -------------------------------------------------------
    def adopt(self) -> None:
        """Take the segments no live process holds, at once (their writers ended: the lock
        is the test, not the age), and clean up half-made files left long ago."""
        try:
            names = sorted(os.listdir(self.directory))
        except OSError:
            return
        with self._lock:
            mine = {os.path.basename(s.path) for s in self._numbered.values()}
        now = time.time()
        for name in names:
            kind = fmt.ours(name)
            if kind is None or name in mine or name in self._skipped:
                continue  # not a file of ours, or one this process holds or gave up on
            path = os.path.join(self.directory, name)
            if kind == "temporary":
                fmt.remove_orphan(path, now)  # a segment whose creator died before naming it
                continue
            fd = fmt.try_lock(path)
            if fd is not None:
                self._take_over(path, fd)

    def _take_over(self, path: str, fd: int) -> None:
        try:
            taken = take_over(path, fd, self.dest)
        except (Unreadable, OSError):
            # Named like ours but not readable as ours: skipped, never deleted or renamed.
            self._skipped.add(os.path.basename(path))
            self._log.warning("Databuddy skipped %s: not a readable spool file", path)
            self._count_corrupt(1, f"unreadable spool file {os.path.basename(path)}")
            os.close(fd)
            return
        if taken is None:  # another destination's events: left for its client
            os.close(fd)
            return
        segment, bad = taken
        if bad:
            self._log.warning("Databuddy skipped %d damaged record(s) in %s", bad, path)
            self._count_corrupt(bad, f"damaged record in {os.path.basename(path)}")
        with self._lock:
            self._add(segment)
            self._bytes += segment.footprint
            self.waiting += len(segment.waiting)
            if segment.unacked == 0:
                self._remove(segment)
                return
        self._log.info("Databuddy took over %d undelivered event(s) from %s", segment.unacked, path)
        self._wake.set()

    def _count_corrupt(self, number: int, message: str) -> None:
        self._ledger.count(
            SPOOL_CORRUPT, [Undelivered(None, None, SPOOL_CORRUPT, message)] * number
        )

    # -- lifecycle -----------------------------------------------------------
    def close(self) -> int:
        """Stop the thread and let go of the segments; how many events stay on disk."""
        self._closed = True
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(2.0)
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
            self._active = None
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

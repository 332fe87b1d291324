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

The spool's parts: :mod:`~databuddy_otel._spool.spool_writer` (the segments this
process writes: appending, acknowledging, the budget), this module (the spool
thread: taking events back, making the next segment ahead, taking over dead
processes' files), :mod:`~databuddy_otel._spool.spool_segment` (one file's
bookkeeping) and :mod:`~databuddy_otel._spool.spool_format` (files, locks, records).
The spool sees the queue only as an :class:`Intake`.
"""

from __future__ import annotations

import os
import threading
import time

from typing_extensions import Protocol

from databuddy_otel._queue.admission import SpoolRef
from databuddy_otel._queue.ledger import Ledger
from databuddy_otel._runtime.config import Settings
from databuddy_otel._runtime.quiet_threads import quiet_start
from databuddy_otel._runtime.sdk_log import Log
from databuddy_otel._runtime.thread_roles import mark_worker
from databuddy_otel._spool import spool_format as fmt
from databuddy_otel._spool.spool_segment import Segment, Unreadable, take_over
from databuddy_otel._spool.spool_writer import _INDEX, SpoolWriter
from databuddy_otel.models import SPOOL_CORRUPT, Undelivered

#: Seconds between looks for segments of dead processes.
RESCAN = 30.0
#: Seconds between probes (events taken back) while the server is unreachable.
PROBE = 5.0


class Intake(Protocol):
    """What the spool needs of the queue it feeds."""

    def offer_spooled(
        self, body: str, name: str, event_id: str, caller_id: bool, ref: SpoolRef
    ) -> bool:
        """Take back one waiting event if there is room now; never waits."""

    def room(self) -> int:
        """Events the memory queue can take now."""

    def server_down(self) -> bool:
        """The server is unreachable: take events back slowly."""


class Spool(SpoolWriter):
    """A process's spool: its segments, and the thread that feeds their events back."""

    def __init__(self, settings: Settings, *, ledger: Ledger, log: Log) -> None:
        self._intake: Intake | None = None
        self._thread: threading.Thread | None = None
        super().__init__(settings, ledger=ledger, log=log)

    def _opened(self) -> None:
        super()._opened()
        self._start_thread()

    # -- taking events back ------------------------------------------------
    def feed(self, queue: Intake, *, limit: int) -> int:
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
    def start(self, queue: Intake) -> None:
        """Take over what dead processes left, then start the spool thread."""
        self._intake = queue
        self.adopt()
        self._start_thread()

    def _start_thread(self) -> None:
        if self._thread is not None or self._intake is None or self._closed:
            return
        try:
            self._thread = threading.Thread(target=self._run, name="databuddy-spool", daemon=True)
            with quiet_start():
                self._thread.start()
        except RuntimeError:  # interpreter shutdown
            self._thread = None

    def _run(self) -> None:
        mark_worker()
        queue = self._intake
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
                self.make_spare()
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
        return super().close()

    def after_fork(self) -> None:
        """A forked child lets go of the parent's files; its thread starts with its first
        segment."""
        super().after_fork()
        self._thread = None

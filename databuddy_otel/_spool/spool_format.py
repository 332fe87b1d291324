"""The spool's files: names, locks, and the records inside them.

A segment file is named ``<created-ms>-<pid>-<random>.spool`` and holds ASCII
lines, each ``<crc32 as 8 hex digits> <payload>``, the CRC covering the payload:

=====================================  ===========================================
payload                                meaning
=====================================  ===========================================
``h databuddy-spool/1 <destination>``  first line: the format and the destination
                                       (a digest of protocol, URL and credentials)
``e <index> <0|1> <event JSON>``       an event; ``1`` when the caller chose its id
``a <index> <first>-<last> ...``       those events are settled (never send again)
=====================================  ===========================================

A file is created under a hidden temporary name, locked (``flock``) and given
its header before it is renamed into place, so a ``.spool`` file is never seen
half-made or unlocked while its writer lives. Anything else is normal after a
crash and is read as far as it goes: a missing or empty file, a last line cut
short, a damaged line (its CRC fails; counted and skipped), a foreign file.
Space reserved for a segment and not written yet reads as zeros, which end it.

The directory may be shared (several processes, other programs). The SDK
deletes or renames only regular files with its own names (:func:`ours`), that
it holds the lock of, and that carry its header; symlinks are never followed.
A temporary file is left alone for :data:`ORPHAN_AGE` seconds, far longer than
its creator needs between creating and renaming it. The directory is created
``0700`` and the files ``0600``.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import re
import secrets
import stat
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

SUFFIX = ".spool"
MAGIC = "databuddy-spool/1"

#: Seconds before a temporary file nobody holds is taken for an orphan.
ORPHAN_AGE = 60.0
#: Smallest space reserved for a segment when the disk is short of space.
MIN_RESERVE = 16 * 1024

_SEGMENT_NAME = re.compile(r"[0-9]+-[0-9]+-[0-9a-f]+\.spool")
_TEMPORARY_NAME = re.compile(r"\.[0-9]+-[0-9]+-[0-9a-f]+\.tmp")
_FULL = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))


def ours(name: str) -> str | None:
    """``"segment"`` or ``"temporary"`` for a file name this SDK makes, else ``None``."""
    if _SEGMENT_NAME.fullmatch(name):
        return "segment"
    if _TEMPORARY_NAME.fullmatch(name):
        return "temporary"
    return None


def destination(protocol: str, api_url: str, client_id: str | None, api_key: str | None) -> str:
    """Who the events are for: replayed only by a client that sends to the same place."""
    text = "\n".join((protocol, api_url.rstrip("/"), client_id or "", api_key or ""))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


def frame(payload: bytes) -> bytes:
    """One record line for ``payload`` (ASCII, no newline)."""
    return b"%08x %s\n" % (zlib.crc32(payload), payload)


def event_line(index: int, caller_id: bool, body: str) -> bytes:
    payload = f"e {index} {1 if caller_id else 0} {body}".encode("ascii")
    return b"%08x %s\n" % (zlib.crc32(payload), payload)


def ack_line(indices: list[int]) -> bytes:
    """Acknowledgements as runs: ``a 100-199 205`` (a chunk's events are consecutive)."""
    runs: list[str] = []
    first = last = indices[0]
    for index in indices[1:]:
        if index == last + 1:
            last = index
            continue
        runs.append(f"{first}-{last}" if last > first else str(first))
        first = last = index
    runs.append(f"{first}-{last}" if last > first else str(first))
    return frame(("a " + " ".join(runs)).encode("ascii"))


def _runs(text: bytes) -> tuple[int, ...]:
    found: list[int] = []
    for run in text.split():
        first, _, last = run.partition(b"-")
        found.extend(range(int(first), int(last or first) + 1))
    return tuple(found)


@dataclass(frozen=True)
class Record:
    """A readable line: an event (``index``, ``caller_id``, ``body``) or acknowledgements."""

    kind: str
    index: int = -1
    caller_id: bool = False
    body: str = ""
    acked: tuple[int, ...] = ()


BAD = Record("bad")


def parse(line: bytes) -> Record:
    """Read one line (without its newline); :data:`BAD` when it is damaged or foreign."""
    crc, _, payload = line.partition(b" ")
    try:
        if len(crc) != 8 or int(crc, 16) != zlib.crc32(payload):
            return BAD
        kind = payload[:2]
        if kind == b"e ":
            index, caller, body = payload[2:].split(b" ", 2)
            return Record("e", int(index), caller == b"1", body.decode("ascii"))
        if kind == b"a ":
            return Record("a", acked=_runs(payload[2:]))
        if kind == b"h ":
            return Record("h", body=payload[2:].decode("ascii"))
    except (ValueError, UnicodeDecodeError):
        pass
    return BAD


def records(data: bytes, start: int = 0) -> Iterator[tuple[int, Record]]:
    """Every line of a segment's contents (read from offset ``start``) with its offset;
    damaged ones as :data:`BAD`. The zeros of space reserved and never written end it."""
    data = data.rstrip(b"\x00")
    offset = start
    lines = data.split(b"\n")
    last = lines.pop()  # empty when the file ends with a newline
    for line in lines:
        yield offset, parse(line)
        offset += len(line) + 1
    if last:
        yield offset, BAD  # the last record was cut short


def header_ok(data: bytes, dest: str) -> bool | None:
    """``True`` for our format and destination, ``False`` for another destination,
    ``None`` when the contents are not a readable spool file at all."""
    record = parse(data.split(b"\n", 1)[0])
    if record.kind != "h" or not record.body.startswith(MAGIC + " "):
        return None
    return record.body == f"{MAGIC} {dest}"


def make_directory(directory: str) -> None:
    """Create the spool directory (and its parents), private to this user."""
    if os.path.isdir(directory):
        return
    parent = os.path.dirname(directory)
    if parent:
        os.makedirs(parent, exist_ok=True)
    try:
        os.mkdir(directory, 0o700)
    except FileExistsError:
        return
    os.chmod(directory, 0o700)  # whatever the umask is


def create(directory: str, dest: str, capacity: int) -> tuple[str, int, int, int]:
    """A new segment, locked by this process and headed: its path, its descriptor, the
    header's length, and the bytes of disk reserved for it (0 where the filesystem
    cannot reserve; then it is written with ``write()``, else through a memory map,
    where a write can never meet a full disk). Short of space, less is reserved."""
    name = f"{int(time.time() * 1000):013d}-{os.getpid()}-{secrets.token_hex(4)}"
    temporary = os.path.join(directory, f".{name}.tmp")
    path = os.path.join(directory, name + SUFFIX)
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(temporary, flags, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        header = frame(f"h {MAGIC} {dest}".encode("ascii"))
        os.write(fd, header)
        reserved = _reserve_what_fits(fd, capacity)
        os.rename(temporary, path)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    return path, fd, len(header), reserved


def _reserve_what_fits(fd: int, capacity: int) -> int:
    """Reserve ``capacity`` bytes, or half as much while the disk is full, down to
    :data:`MIN_RESERVE`; 0 where the filesystem cannot reserve at all."""
    size = capacity
    while True:
        try:
            return size if reserve(fd, size) else 0
        except OSError as exc:
            if exc.errno not in _FULL or size // 2 < MIN_RESERVE:
                raise
            size //= 2


def reserve(fd: int, size: int) -> bool:
    """Reserve disk blocks up to ``size`` bytes (zeros); ``False`` where the filesystem
    cannot (then the file is written with ``write()`` instead of a memory map)."""
    fallocate = getattr(os, "posix_fallocate", None)
    if fallocate is None:
        return False
    try:
        fallocate(fd, 0, size)
    except OSError as exc:
        if exc.errno in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
            return False
        raise
    return True


def read_range(path: str, start: int, end: int) -> bytes | None:
    """Bytes ``start`` to ``end`` of a segment; ``None`` once it is gone."""
    try:
        with open(path, "rb") as file:
            file.seek(start)
            return file.read(end - start)
    except OSError:
        return None


def try_lock(path: str) -> int | None:
    """Open and lock a regular file another process may own; ``None`` when it is owned,
    gone, or not a regular file (a symlink is never followed)."""
    try:
        fd = os.open(path, os.O_RDWR | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            return None
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def remove_orphan(path: str, now: float) -> bool:
    """Delete a temporary file whose creator died before naming it; ``True`` if it was.

    Only one old enough (:data:`ORPHAN_AGE`), unlocked, and empty or headed as ours.
    """
    try:
        if now - os.lstat(path).st_mtime < ORPHAN_AGE:
            return False
    except OSError:
        return False
    fd = try_lock(path)
    if fd is None:
        return False
    try:
        first = os.pread(fd, 256, 0).split(b"\n", 1)[0]
        record = parse(first)
        if first.strip(b"\x00") and not (record.kind == "h" and record.body.startswith(MAGIC)):
            return False
        os.unlink(path)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def sync_directory(directory: str) -> None:
    """Make a new or removed name in ``directory`` survive a power loss."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

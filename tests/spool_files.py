"""Spool files written by hand: what a dead process, or a crash mid-write, leaves behind."""

from __future__ import annotations

from pathlib import Path

from databuddy_otel._spool import spool_format as fmt


def write_segment(directory: Path, dest: str, lines: list[bytes], name: str) -> Path:
    """A segment file named ``name``: the header for ``dest``, then ``lines`` as given."""
    path = directory / f"{name}.spool"
    path.write_bytes(fmt.frame(f"h {fmt.MAGIC} {dest}".encode()) + b"".join(lines))
    return path


def left_body(i: int) -> str:
    """The serialized body of the ``i``-th event a dead process left behind."""
    return f'{{"name":"left_{i}","eventId":"left-{i}","timestamp":1700000000000,"properties":{{}}}}'

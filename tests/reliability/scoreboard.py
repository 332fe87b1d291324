"""The reliability scoreboard: every scenario counts events by eventId.

Each scenario records what it sent and what the server stored; the table is
printed at the end of the run and, when ``DATABUDDY_RELIABILITY_REPORT`` names
a file, written there as Markdown (that is how docs/reliability.md is made).

A module of its own, imported by name, so that every folder's conftest (pytest
loads each as a separate ``conftest`` module) records into the same table, and
the table is printed once however many of them are loaded.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from databuddy_otel.devserver import DevServer


@dataclass(frozen=True)
class Score:
    scenario: str
    sent: int
    delivered: int
    lost: int
    duplicated: int
    reported: int
    note: str = ""


_SCORES: list[Score] = []
_printed = False


class Scoreboard:
    """Counts one scenario's events: sent, delivered, lost, duplicated."""

    def record(
        self,
        scenario: str,
        sent_ids: Iterable[str],
        server: DevServer,
        *,
        reported: Iterable[str] = (),
        note: str = "",
    ) -> Score:
        sent = set(sent_ids)
        stored = Counter(e["eventId"] for e in server.events())
        delivered = sum(1 for i in sent if stored[i])
        duplicated = sum(n - 1 for i, n in stored.items() if i in sent and n > 1)
        score = Score(
            scenario,
            len(sent),
            delivered,
            len(sent) - delivered,
            duplicated,
            len(set(reported) & sent),
            note,
        )
        _SCORES.append(score)
        return score


def duplicates_come_from_lost_answers(server: DevServer) -> bool:
    """Every duplicated eventId has a copy stored by a request whose answer was lost."""
    faulted = server.faulted_request_ids()
    copies: dict[str, list[int]] = {}
    for event in server.events():
        copies.setdefault(event["eventId"], []).append(event["requestId"])
    return all(
        any(r in faulted for r in requests) for requests in copies.values() if len(requests) > 1
    )


def _table() -> str:
    lines = [
        "| scenario | sent | delivered | lost | duplicated | reported undelivered | note |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for s in _SCORES:
        lines.append(
            f"| {s.scenario} | {s.sent} | {s.delivered} | {s.lost} | {s.duplicated} "
            f"| {s.reported} | {s.note} |"
        )
    return "\n".join(lines)


def print_scoreboard(terminalreporter: Any) -> None:
    """The ``pytest_terminal_summary`` of every conftest that records scores; prints once."""
    global _printed
    if not _SCORES or _printed:
        return
    _printed = True
    terminalreporter.write_sep("=", "reliability scoreboard")
    terminalreporter.write_line(_table())
    target = os.environ.get("DATABUDDY_RELIABILITY_REPORT")
    if target:
        Path(target).write_text(_table() + "\n", encoding="utf-8")

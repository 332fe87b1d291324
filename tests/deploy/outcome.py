"""What a deployment scenario asserts in the end: every event stored, once.

A shortfall raises :class:`EventsLost`, so that a scenario marked as a known SDK
defect (``xfail(raises=EventsLost, strict=True)``) fails for real when anything else
goes wrong on the way (a server that does not start, a process that hangs).
"""

from __future__ import annotations

from tests.reliability.scoreboard import Score


class EventsLost(AssertionError):
    """The server lacks some of the events the application tracked, or holds some twice."""


def expect_all_stored(score: Score, sent: int, details: str = "") -> None:
    """``sent`` events sent, all stored, none twice; else :class:`EventsLost`."""
    if (score.sent, score.lost, score.duplicated) != (sent, 0, 0):
        message = (
            f"{score.scenario}: {score.sent} sent (expected {sent}), {score.lost} lost, "
            f"{score.duplicated} duplicated; {score.note}"
        )
        raise EventsLost(message + (f"\n{details}" if details else ""))

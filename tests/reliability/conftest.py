"""The reliability scoreboard (tests/reliability/scoreboard.py) as a fixture.

Each scenario records what it sent and what the server stored; the table is
printed at the end of the run and, when ``DATABUDDY_RELIABILITY_REPORT`` names
a file, written there as Markdown (that is how docs/reliability.md is made).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.reliability.scoreboard import (
    Score,
    Scoreboard,
    duplicates_come_from_lost_answers,
    print_scoreboard,
)

__all__ = ["Score", "Scoreboard", "duplicates_come_from_lost_answers", "scoreboard"]


@pytest.fixture
def scoreboard() -> Iterator[Scoreboard]:
    yield Scoreboard()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    print_scoreboard(terminalreporter)

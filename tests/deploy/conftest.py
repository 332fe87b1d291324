"""Deployment scenarios record on the reliability scoreboard (tests/reliability/conftest.py).

Its fixture and its summary hook, shared: the scores of both folders go into one
table, printed once, whichever of the folders a run collects.
"""

from __future__ import annotations

from tests.reliability.conftest import pytest_terminal_summary, scoreboard

__all__ = ["pytest_terminal_summary", "scoreboard"]

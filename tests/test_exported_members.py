"""The public surface: one sorted ``__all__`` per package, every name importable."""

from __future__ import annotations

import subprocess
import sys

import pytest

import databuddy_logging
import databuddy_otel


@pytest.mark.parametrize("package", [databuddy_otel, databuddy_logging])
def test_all_is_sorted_and_importable(package: object) -> None:
    """__all__ is sorted, and every name in it resolves."""
    names = package.__all__  # type: ignore[attr-defined]
    assert names == sorted(names)
    for name in names:
        assert getattr(package, name) is not None


def test_unknown_attribute_raises_attribute_error() -> None:
    """A misspelt name fails like any module attribute."""
    with pytest.raises(AttributeError, match="no_such_thing"):
        databuddy_otel.no_such_thing  # type: ignore[attr-defined]  # noqa: B018


def test_import_stays_light() -> None:
    """Importing the package loads neither requests nor the local server's HTTP stack."""
    code = (
        "import sys, databuddy_otel; "
        "print(sorted(m for m in ('requests', 'http.server', 'sqlite3') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"

"""The dev server is an independent oracle: it imports nothing from the SDK it tests."""

from __future__ import annotations

import ast
from pathlib import Path

import databuddy_otel.devserver

PACKAGE_DIR = Path(databuddy_otel.devserver.__file__).resolve().parent
OWN_PACKAGE = "databuddy_otel.devserver"


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import statement in the module at ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = OWN_PACKAGE.split(".")
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this package
                base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            found.append((node.lineno, module))
    return found


def is_outside_import(module: str) -> bool:
    """True for a ``databuddy_otel`` module that is not part of the dev server."""
    inside_sdk = module == "databuddy_otel" or module.startswith("databuddy_otel.")
    inside_devserver = module == OWN_PACKAGE or module.startswith(OWN_PACKAGE + ".")
    return inside_sdk and not inside_devserver


def test_devserver_modules_import_nothing_from_the_sdk():
    """No module under databuddy_otel/devserver imports databuddy_otel outside the devserver."""
    modules = sorted(PACKAGE_DIR.rglob("*.py"))
    assert len(modules) >= 5, f"expected the dev server's modules under {PACKAGE_DIR}"
    offending = [
        f"{path.relative_to(PACKAGE_DIR)}:{line}: {module}"
        for path in modules
        for line, module in imported_modules(path)
        if is_outside_import(module)
    ]
    assert offending == [], "the dev server must keep its own copy of what it checks"


def test_the_import_check_sees_sdk_imports(tmp_path):
    """The checker flags SDK imports, plain, from-style and relative, and allows its own."""
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import databuddy_otel.client\n"
        "from databuddy_otel._event.limits import MAX_ID_LENGTH\n"
        "from .. import limits\n"
        "from . import _limits\n"
        "from ._store import Store\n"
    )
    found = [module for _, module in imported_modules(sample)]
    assert [is_outside_import(module) for module in found] == [True, True, True, False, False]
    assert is_outside_import("databuddy_otel._event.limits")
    assert is_outside_import("databuddy_otel")
    assert not is_outside_import("databuddy_otel.devserver._limits")
    assert not is_outside_import("databuddy_otel_extra")
    assert not is_outside_import("json")

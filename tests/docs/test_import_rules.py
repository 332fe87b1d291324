"""The import rules docs/architecture.md states, read from the source with ``ast``.

Only imports that run count: those under ``if TYPE_CHECKING:`` are annotations, and
may point anywhere.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.docs.doc_runner import ROOT

PACKAGE = ROOT / "databuddy_otel"

ARCHITECTURE = ROOT / "docs" / "architecture.md"


def layers_from_the_page() -> list[set[str]]:
    """docs/architecture.md's layer table, lowest first: ``| 3 | `ledger`, `config` |``."""
    rows: dict[int, set[str]] = {}
    for line in ARCHITECTURE.read_text(encoding="utf-8").splitlines():
        match = re.fullmatch(r"\| (\d+) \| (`[\w.]+`(?:, `[\w.]+`)*) \|", line.strip())
        if match:
            rows[int(match.group(1))] = set(re.findall(r"`([\w.]+)`", match.group(2)))
    assert rows and sorted(rows) == list(range(len(rows))), "the page's layer table is broken"
    return [rows[rank] for rank in sorted(rows)]


#: The page's layers: a module imports only from lower layers.
LAYERS = layers_from_the_page()
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def runtime_imports(path: Path) -> Iterator[str]:
    """Every module ``path`` imports when it runs (``from x import y`` gives x and x.y)."""

    def visit(nodes: list[ast.stmt]) -> Iterator[str]:
        for node in nodes:
            if isinstance(node, ast.If) and _is_type_checking(node):
                yield from visit(node.orelse)
                continue
            if isinstance(node, ast.Import):
                yield from (alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                yield node.module
                yield from (f"{node.module}.{alias.name}" for alias in node.names)
            for field in ("body", "orelse", "finalbody", "handlers"):
                children = getattr(node, field, None)
                if isinstance(children, list):
                    yield from visit([c for c in children if isinstance(c, ast.stmt)])
                    for handler in children:
                        if isinstance(handler, ast.ExceptHandler):
                            yield from visit(handler.body)

    yield from visit(ast.parse(path.read_text(encoding="utf-8")).body)


#: The modules users import from (the README, docs/ and the API reference name them).
PUBLIC_MODULES = [
    "client",
    "context",
    "default",
    "fastapi",
    "flask",
    "ids",
    "lifecycle",
    "log_exporter",
    "models",
    "pytest_plugin",
    "sampling",
    "span_exporter",
    "testing",
    "web",
]

#: The engine's private subpackages, one per part (docs/architecture.md's folders).
PARTS = sorted(p.parent.name for p in PACKAGE.glob("_*/__init__.py"))


def sdk_modules() -> list[Path]:
    """The public modules at the top and the modules of each private part."""
    parts = [m for part in PARTS for m in (PACKAGE / part).glob("*.py") if m.stem != "__init__"]
    return sorted([*PACKAGE.glob("*.py"), *parts])


def _own(imported: str) -> str | None:
    """The databuddy_otel module an import names, if it is one of ours (not a package)."""
    parts = imported.split(".")
    if parts[0] != "databuddy_otel" or len(parts) < 2:
        return None
    if (PACKAGE / f"{parts[1]}.py").exists():
        return parts[1]
    if parts[1] in PARTS and len(parts) > 2 and (PACKAGE / parts[1] / f"{parts[2]}.py").exists():
        return parts[2]
    return None


def test_every_module_has_a_layer() -> None:
    """A new module gets a place in the layers (and in docs/architecture.md)."""
    assert sorted(p.stem for p in sdk_modules() if p.stem not in RANK) == []


@pytest.mark.parametrize("path", sdk_modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_data_flows_one_way(path: Path) -> None:
    """A module imports, at run time, only modules of lower layers: none reaches back up."""
    rank = RANK[path.stem]
    upward = sorted(
        {
            own
            for own in map(_own, runtime_imports(path))
            if own is not None and own != path.stem and RANK[own] >= rank
        }
    )
    assert upward == [], f"{path.name} (layer {rank}) imports {upward}"


def test_the_engine_never_imports_the_logging_front_doors() -> None:
    """databuddy_otel never imports databuddy_logging (the dependency goes the other way),
    but in the one function that turns the ``logging`` integration on."""
    offenders = [
        str(path.relative_to(ROOT))
        for path in PACKAGE.rglob("*.py")
        if any(name.split(".")[0] == "databuddy_logging" for name in runtime_imports(path))
    ]
    assert offenders == ["databuddy_otel/_runtime/integrations.py"]
    tree = ast.parse((PACKAGE / "_runtime" / "integrations.py").read_text(encoding="utf-8"))
    at_module_level = [
        node
        for node in tree.body
        if isinstance(node, (ast.Import, ast.ImportFrom))
        and "databuddy_logging" in (getattr(node, "module", None) or "")
    ]
    assert at_module_level == []


def test_only_otel_batch_touches_the_sdks_internals() -> None:
    """opentelemetry-sdk's batch machinery is reached from otel_batch.py alone."""
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "otel_batch.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                if any("_shared_internal" in name for name in names):
                    offenders.append(f"{path.name}: imports _shared_internal")
            elif isinstance(node, ast.Attribute) and node.attr == "_batch_processor":
                offenders.append(f"{path.name}: ._batch_processor")
            elif isinstance(node, ast.Constant) and node.value == "_batch_processor":
                offenders.append(f"{path.name}: '_batch_processor'")
    assert offenders == []


def test_only_transport_imports_requests() -> None:
    """transport.py is the only module that talks to the network through requests."""
    offenders = [
        path.name
        for path in PACKAGE.rglob("*.py")
        if path.name != "transport.py"
        and any(name.split(".")[0] == "requests" for name in runtime_imports(path))
    ]
    assert offenders == []


def test_only_front_doors_import_the_client_at_run_time() -> None:
    """Below the facade, no module imports client.py (the exporters only name it in types)."""
    importers = sorted(
        path.stem for path in sdk_modules() if "databuddy_otel.client" in runtime_imports(path)
    )
    assert importers == ["__init__", "default", "lifecycle", "sampling", "testing"]


def test_the_dev_server_imports_nothing_else_of_the_sdk() -> None:
    """devserver/ is an independent oracle: it keeps its own copy of the rules it checks."""
    offenders = []
    for path in (PACKAGE / "devserver").rglob("*.py"):
        for name in runtime_imports(path):
            if name.startswith("databuddy_otel.") and not name.startswith(
                "databuddy_otel.devserver"
            ):
                offenders.append(f"{path.name}: {name}")
    assert offenders == []


def test_the_rule_reader_sees_through_type_checking() -> None:
    """An import under `if TYPE_CHECKING:` is ignored; one inside a function counts."""
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from databuddy_otel.client import Databuddy\n"
        "def f():\n    import requests\n"
    )
    tree_names = list(_names_from_source(source))
    assert "databuddy_otel.client" not in tree_names
    assert "requests" in tree_names


def _names_from_source(source: str) -> Iterator[str]:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        probe = Path(folder) / "probe.py"
        probe.write_text(source, encoding="utf-8")
        yield from list(runtime_imports(probe))


def test_the_public_modules_are_the_documented_ones() -> None:
    """Plumbing lives in the private parts; the top level holds what users import."""
    public = sorted(p.stem for p in PACKAGE.glob("*.py") if not p.stem.startswith("_"))
    assert public == sorted(PUBLIC_MODULES)

"""Every public name has a docstring, so the API reference (docs/api/) documents all of them."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterator
from typing import Any

import pytest

import databuddy_logging
import databuddy_otel
from databuddy_logging.structlog import DatabuddyProcessor
from databuddy_otel import models, web
from databuddy_otel.devserver import DevServer
from tests.docs.doc_runner import ROOT

#: Public names beyond the packages' ``__all__``.
EXTRA: dict[str, Any] = {
    "databuddy_logging.structlog.DatabuddyProcessor": DatabuddyProcessor,
    "databuddy_otel.devserver.DevServer": DevServer,
    **{f"databuddy_otel.web.{name}": getattr(web, name) for name in web.__all__},
    **{
        f"databuddy_otel.models.{name}": getattr(models, name)
        for name in models.__all__
        if not name.isupper()  # the loss reasons are strings, documented in the module
    },
}


def public_names() -> Iterator[tuple[str, Any]]:
    for package in (databuddy_otel, databuddy_logging):
        for name in package.__all__:
            if name != "__version__":
                yield f"{package.__name__}.{name}", getattr(package, name)
    yield from EXTRA.items()


def _ours(cls: type) -> list[type]:
    """The classes in ``cls``'s MRO that belong to this project."""
    return [
        klass
        for klass in cls.__mro__
        if klass.__module__.split(".")[0] in ("databuddy_otel", "databuddy_logging")
    ]


def public_members() -> Iterator[tuple[str, Any]]:
    """Public names, and the public methods and properties our classes define."""
    seen: set[int] = set()
    for qualified, value in public_names():
        if id(value) in seen:
            continue
        seen.add(id(value))
        yield qualified, value
        if not inspect.isclass(value):
            continue
        for klass in _ours(value):
            for name, member in vars(klass).items():
                if name.startswith("_") or not (
                    inspect.isfunction(member) or isinstance(member, (property, classmethod))
                ):
                    continue
                yield f"{qualified}.{name}", member


def _doc(value: Any) -> str:
    if isinstance(value, classmethod):
        value = value.__func__
    if isinstance(value, property) or inspect.isfunction(value):
        return (value.__doc__ or "").strip()  # its own, not one inherited from a base
    return (inspect.getdoc(value) or "").strip()


MEMBERS = list(public_members())


@pytest.mark.parametrize(("name", "value"), MEMBERS, ids=[name for name, _ in MEMBERS])
def test_public_name_has_a_docstring(name: str, value: Any) -> None:
    """The name says what it is for in its own docstring, not one it inherits from a base."""
    doc = _doc(value)
    assert doc, f"{name} has no docstring"
    if inspect.isclass(value) and value.__doc__ is None:
        pytest.fail(f"{name} only inherits its docstring")


def test_the_reference_pages_cover_every_public_name() -> None:
    """Each public name appears in a mkdocstrings directive of docs/api/."""
    text = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "docs" / "api").glob("*.md"))
    documented = {line.split(":::", 1)[1].strip() for line in text.splitlines() if ":::" in line}
    shown = {id(_resolve(path)) for path in documented}
    missing = []
    for qualified, value in public_names():
        module = getattr(value, "__module__", None)
        real = f"{module}.{getattr(value, '__name__', '')}" if module else qualified
        if qualified not in documented and real not in documented and id(value) not in shown:
            missing.append(qualified)
    assert missing == []


def _resolve(path: str) -> object:
    """The object a directive names (``package.module.Name``), or None."""
    module, _, name = path.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return None

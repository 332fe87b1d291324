"""Every Python name the migration guide's tables list exists, with the parameters they show."""

from __future__ import annotations

import ast
import inspect
import re
from collections.abc import Iterator
from typing import Any

import databuddy_otel
from databuddy_otel import Databuddy, lifecycle, web
from databuddy_otel._event.event import KEYWORD_FIELDS
from databuddy_otel._runtime import config
from tests.docs.doc_runner import ROOT

PAGE = ROOT / "docs" / "migration-from-node.md"
CONFIG_SOURCE = (ROOT / "databuddy_otel" / "_runtime" / "config.py").read_text(encoding="utf-8")
OPTIONS = set(config.CLIENT_ARGUMENTS)
NAMESPACES: tuple[Any, ...] = (databuddy_otel, web, lifecycle)
#: Placeholders the tables use for the reader's own values.
PLACEHOLDERS = {"event", "events", "props", "fn", "response", "log", "client"}


def python_cells() -> Iterator[tuple[int, str]]:
    """(line, backticked text) of the second column of every table row."""
    for number, line in enumerate(PAGE.read_text(encoding="utf-8").splitlines(), 1):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("|") or len(cells) < 2 or set(cells[1]) <= {"-", " ", ":"}:
            continue
        if cells[1].startswith("Python"):
            continue
        for code in re.findall(r"`([^`]+)`", cells[1]):
            yield number, code


def resolve(name: str) -> Any:
    """What a bare name in the Python column stands for, or raise LookupError."""
    if name in OPTIONS:
        return inspect.Parameter
    if name in KEYWORD_FIELDS:
        return KEYWORD_FIELDS[name]
    for namespace in NAMESPACES:
        if hasattr(namespace, name):
            return getattr(namespace, name)
    raise LookupError(name)


def check(code: str) -> None:
    """Raise LookupError or AssertionError when ``code`` names something that does not exist."""
    if re.fullmatch(r"DATABUDDY_[A-Z_]+(=\w+)?", code):
        variable = code.split("=")[0]
        assert variable in CONFIG_SOURCE, variable
        return
    text = code.removeprefix("await ").removeprefix("with ").rstrip(":")
    if text.endswith("="):  # a keyword argument of track()
        assert text[:-1] in KEYWORD_FIELDS, f"track() has no keyword {text}"
        return
    setting = re.fullmatch(r"(\w+)=\S+", text)
    if setting:  # an option with a value
        assert setting.group(1) in OPTIONS, f"Databuddy() has no option {setting.group(1)}"
        return
    tree = ast.parse(text, mode="eval").body
    if isinstance(tree, ast.Constant):
        return
    if isinstance(tree, ast.Call):
        target = _callee(tree.func)
        signature = inspect.signature(target)
        takes_any = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
        for keyword in tree.keywords:
            if keyword.arg is None:
                continue
            allowed = keyword.arg in signature.parameters or (
                takes_any and target is Databuddy.track and keyword.arg in KEYWORD_FIELDS
            )
            assert allowed, f"{code}: {keyword.arg}= is not a parameter"
        return
    _callee(tree)


def _callee(node: ast.expr) -> Any:
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        if node.value.id == "response":
            assert node.attr in databuddy_otel.EventResponse._fields, ast.unparse(node)
            return object
        assert node.value.id == "client", ast.unparse(node)
        return getattr(Databuddy, node.attr)
    if isinstance(node, ast.Name):
        if node.id in PLACEHOLDERS:
            return object
        return resolve(node.id)
    raise AssertionError(f"cannot read {ast.unparse(node)!r}")


def test_the_tables_list_python_names() -> None:
    """The parser finds the tables: one name per row at least, the 2.6 fields among them."""
    codes = {code for _, code in python_cells()}
    assert len(codes) > 40
    for expected in (
        "client.get_deduplication_cache_size()",
        "client.clear_deduplication_cache()",
        "profile_id=",
        "anonymize_visitor_ids=",
        "logger",
    ):
        assert expected in codes


def test_every_python_name_resolves() -> None:
    """Options, methods, keywords, types and helpers named in the tables all exist."""
    problems = []
    for line, code in python_cells():
        try:
            check(code)
        except (LookupError, AssertionError, AttributeError, SyntaxError) as exc:
            problems.append(f"migration-from-node.md:{line}: `{code}`: {exc!r}")
    assert problems == []


def test_every_option_is_mapped() -> None:
    """Each constructor argument of Databuddy appears in the options table."""
    listed = {code for _, code in python_cells()}
    missing = sorted(OPTIONS - listed)
    assert missing == []

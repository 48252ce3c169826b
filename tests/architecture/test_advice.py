"""Commands shown to the human are built, never written bare: a bare `flash-mcp …` or `flash login` fails where
the installation is not on PATH (a virtualenv), so messages name the executable through `core/advice.py`."""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).parents[2] / "flash_mcp"
BARE = re.compile(r"`(?:sudo )?flash-mcp [a-z]|(?<!saved by )`flash login`")  # "the key saved by …": a fact


def _docstrings(tree: ast.AST) -> set[int]:
    """The ids of every docstring's node: they describe, they advise no one."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def _help_texts(tree: ast.AST) -> set[int]:
    """argparse `help=` and pydantic `description=` texts: they name commands, they are not advice to run one."""
    return {
        id(keyword.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        for keyword in node.keywords
        if keyword.arg in ("help", "description")
    }


def bare_commands(source: str) -> list[str]:
    tree = ast.parse(source)
    skipped = _docstrings(tree) | _help_texts(tree)
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skipped
        and BARE.search(node.value)
    ]  # fmt: skip


def test_no_message_names_a_bare_flash_mcp_or_flash_command() -> None:
    found = {
        str(path.relative_to(PACKAGE)): texts
        for path in sorted(PACKAGE.rglob("*.py"))
        if "templates" not in path.parts and (texts := bare_commands(path.read_text(encoding="utf-8")))
    }
    assert found == {}, found


def test_the_check_finds_a_bare_command_in_a_message_and_an_f_string() -> None:
    source = (
        'X = "run `flash-mcp approve p-1`"\n'
        'def f(p):\n    """`flash-mcp approve` docs."""\n    return f"`sudo flash-mcp guard approve {p}`"\n'
    )
    assert bare_commands(source) == ["run `flash-mcp approve p-1`", "`sudo flash-mcp guard approve "]

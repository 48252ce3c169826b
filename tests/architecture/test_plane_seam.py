"""The plane is the whole seam: outside flash_mcp/planes/, code asks a plane's capabilities, never its name, and
reaches nothing on it through getattr (so a new plane is its own package plus one line in planes/__init__.py)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).parents[2] / "flash_mcp"


def _mentions_plane(node: ast.AST) -> bool:
    return "plane" in ast.unparse(node).lower()


def _plane_name(node: ast.AST) -> bool:
    """`plane.name`, `self.plane.name`, `plane().name`, `settings.plane`."""
    if not isinstance(node, ast.Attribute):
        return False
    return (node.attr == "name" and _mentions_plane(node.value)) or node.attr == "plane"


def _leaks(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        where = f"{path.relative_to(PACKAGE.parent)}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Compare) and any(_plane_name(side) for side in [node.left, *node.comparators]):
            found.append(f"{where}: compares a plane's name: {ast.unparse(node)}")
        is_getattr = isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr"
        if is_getattr and node.args and _mentions_plane(node.args[0]):
            found.append(f"{where}: getattr on a plane: {ast.unparse(node)}")
    return found


def test_nothing_outside_the_planes_branches_on_a_plane_name_or_getattrs_a_plane() -> None:
    outside = [p for p in sorted(PACKAGE.rglob("*.py")) if "planes" not in p.relative_to(PACKAGE).parts]
    assert outside, "the scan found no modules"
    assert [leak for path in outside for leak in _leaks(path)] == []


def test_the_scan_catches_both_leaks(tmp_path: Path) -> None:
    sample = tmp_path / "flash_mcp" / "loop" / "sample.py"
    sample.parent.mkdir(parents=True)
    sample.write_text(
        "if plane.name == 'flash': pass\nx = settings.plane != 'local'\ny = getattr(plane, 'pushed', None)\n"
    )
    global PACKAGE
    saved, PACKAGE = PACKAGE, tmp_path / "flash_mcp"
    try:
        assert len(_leaks(sample)) == 3
    finally:
        PACKAGE = saved

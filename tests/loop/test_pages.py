"""Paging cursors as plain functions: one rule for runs and evaluations, and a foreign cursor is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from flash_mcp.core.errors import UserError
from flash_mcp.loop import evaluations
from flash_mcp.loop.runs import page_offset


def test_a_cursor_is_the_offset_its_list_returned() -> None:
    assert page_offset(None, "list_runs") == 0
    assert page_offset("40", "list_runs") == 40


def test_a_foreign_cursor_is_refused_naming_the_list_that_makes_them(isolated_home: Path) -> None:
    with pytest.raises(UserError, match="'abc' is not one list_runs returned; omit it to start over"):
        page_offset("abc", "list_runs")
    with pytest.raises(UserError, match="not one list_evaluations returned"):
        evaluations.list_evaluations(isolated_home, 20, "abc")
    assert evaluations.list_evaluations(isolated_home, 20, None).evaluations == []

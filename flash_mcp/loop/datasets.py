"""Read dataset rows by positional id, and append rows atomically."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from flash_mcp.core.workspace import Workspace
from flash_mcp.domain.project.dataset import append_rows, clip, read_page, row_id, row_problem


class DatasetRowView(BaseModel):
    id: str
    input: Any = None
    output: Any = None
    metadata: Any = None
    problem: str | None = Field(default=None, description="Why this row breaks the row contract, if it does")


class DatasetPage(BaseModel):
    path: str
    total_rows: int
    offset: int
    rows: list[DatasetRowView]
    next_offset: int | None = Field(description="Pass as offset to read on; null at the end")


class AppendResult(BaseModel):
    path: str
    appended: int
    total_rows: int
    first_id: str
    last_id: str


def read_dataset(workspace: Workspace, path: str, offset: int, limit: int) -> DatasetPage:
    """One page, streamed: memory does not grow with the file."""
    real = workspace.resolve(path)
    rows, total = read_page(real, offset, limit, workspace.relative(real))
    page = [_view(row) for row in rows]
    end = offset + len(page)
    return DatasetPage(
        path=workspace.relative(real),
        total_rows=total,
        offset=offset,
        rows=page,
        next_offset=end if end < total else None,
    )


def append_dataset_rows(workspace: Workspace, path: str, values: list[dict[str, Any]]) -> AppendResult:
    """All rows or none: an invalid row means nothing is written."""
    real = workspace.resolve(path, write=True)
    total = append_rows(real, values, workspace.relative(real))
    return AppendResult(
        path=workspace.relative(real),
        appended=len(values),
        total_rows=total,
        first_id=row_id(total - len(values)),
        last_id=row_id(total - 1),
    )


def _view(row) -> DatasetRowView:
    value = row.value
    problem = row.error or row_problem(value)
    if isinstance(value, dict):
        return DatasetRowView(
            id=row_id(row.index),
            input=clip(value.get("input")),
            output=clip(value.get("output")),
            metadata=clip(value.get("metadata")),
            problem=problem,
        )
    return DatasetRowView(id=row_id(row.index), input=clip(value), problem=problem)

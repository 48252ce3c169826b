"""Dataset files: rows with the positional ids Flash and the SDK assign, paged reads, atomic appends."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flash_mcp.core.errors import UserError
from flash_mcp.domain.project.files import atomic_write, locked

FIELD_LIMIT = 1000


def row_id(index: int) -> str:
    """The SDK's stable positional id (freesolo.datasets.stable_example_id)."""
    return f"example_{index:06d}"


@dataclass(frozen=True)
class Row:
    index: int
    value: Any  # the decoded row, or None when the line is not JSON
    error: str | None = None
    line: int | None = None


def read_rows(path: Path) -> list[Row]:
    """Every row of a .jsonl or .json dataset, in order, with the line it came from."""
    if not path.is_file():
        raise UserError(f"{path.name} does not exist; datasets live at dataset/<split>.jsonl")
    text = path.read_text(encoding="utf-8", errors="replace")
    if path.suffix == ".json":
        return _json_rows(text)
    rows: list[Row] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(Row(len(rows), json.loads(line), line=number))
        except json.JSONDecodeError as exc:
            rows.append(Row(len(rows), None, f"not valid JSON: {exc.msg}", line=number))
    return rows


def _json_rows(text: str) -> list[Row]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"the file is not valid JSON: {exc.msg} (line {exc.lineno})") from None
    items = data.get("data") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise UserError('a .json dataset must be an array of rows or {"data": [...]}')
    return [Row(index, item) for index, item in enumerate(items)]


def row_problem(value: Any) -> str | None:
    """Why a row breaks the dataset contract (Flash's and the SDK's), or None."""
    if isinstance(value, str):
        return None  # the SDK reads a bare string as {"input": ...}
    if not isinstance(value, dict):
        return f"a row must be a JSON object, not {type(value).__name__}"
    if "input" not in value:
        return "a row needs `input`: the prompt text (or chat messages)"
    output = value.get("output")
    if isinstance(output, dict):
        if set(output) != {"messages"} or not isinstance(output["messages"], list):
            return 'a structured `output` must be exactly {"messages": [...]}'
        output = output["messages"]
    if isinstance(output, list) and not all(isinstance(m, dict) and "role" in m for m in output):
        return "every message in `output` needs a `role` (and `content`)"
    metadata = value.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        return "`metadata` must be an object"
    return None


def gold_text(value: Any) -> str:
    """The final gold assistant text of a row, as SFT would train on it."""
    if not isinstance(value, dict):
        return ""
    output = value.get("output")
    if isinstance(output, dict):
        output = output.get("messages")
    if isinstance(output, list):
        texts = [m.get("content") for m in output if isinstance(m, dict) and m.get("role") == "assistant"]
        return str(texts[-1]) if texts and texts[-1] is not None else ""
    return "" if output is None else str(output)


def clip(value: Any) -> Any:
    """Bound a field for output: long strings and structures are cut with a marker."""
    if isinstance(value, str):
        return value if len(value) <= FIELD_LIMIT else value[:FIELD_LIMIT] + f"… ({len(value)} chars)"
    if isinstance(value, (dict, list)):
        text = json.dumps(value, ensure_ascii=False)
        return value if len(text) <= FIELD_LIMIT else text[:FIELD_LIMIT] + f"… ({len(text)} chars)"
    return value


def append_rows(path: Path, rows: list[dict[str, Any]]) -> int:
    """Append rows to a .jsonl file atomically; every row is checked first. Returns the new row count."""
    if path.suffix != ".jsonl":
        raise UserError("rows can only be appended to a .jsonl dataset")
    for number, row in enumerate(rows):
        problem = row_problem(row)
        if problem:
            raise UserError(f"row {number} of the request is invalid: {problem}; nothing was written")
    with locked(path):
        existing = path.read_bytes() if path.exists() else b""
        if existing and not existing.endswith(b"\n"):
            existing += b"\n"
        added = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode("utf-8")
        atomic_write(path, existing + added)
    return len(read_rows(path))

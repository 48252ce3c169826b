"""Dataset files: rows with the positional ids Flash and the SDK assign, streamed reads, atomic appends.

Files are opened by descriptor (regular, singly linked files only) and read line by line, so paging
and appending take memory independent of the file's size.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from flash_mcp.core.errors import UserError
from flash_mcp.domain.project import safe_fs
from flash_mcp.domain.project.files import locked

FIELD_LIMIT = 1000
MAX_LINE_BYTES = 16 * 1024 * 1024  # a longer line is reported as a bad row, never loaded
MAX_JSON_BYTES = 64 * 1024 * 1024  # a .json dataset is one document; past this, use .jsonl
PATH_PARAMS = ("dataset_path", "contract_path")
_DRIVE = re.compile(r"^[A-Za-z]:")
_SPLIT = re.compile(r"[A-Za-z0-9_.-]{0,100}")


def row_id(index: int) -> str:
    """The SDK's stable positional id (freesolo.datasets.stable_example_id)."""
    return f"example_{index:06d}"


@dataclass(frozen=True)
class Row:
    index: int
    value: Any  # the decoded row, or None when the line is not JSON
    error: str | None = None
    line: int | None = None


def iter_rows(path: Path, label: str | None = None) -> Iterator[Row]:
    """Every row of a .jsonl or .json dataset, in order, with the line it came from, streamed."""
    label = label or path.name
    if safe_fs.lstat(path, label) is None:
        raise UserError(f"{label} does not exist; datasets live at dataset/<split>.jsonl")
    if path.suffix == ".json":
        yield from _json_rows(safe_fs.read_text(path, MAX_JSON_BYTES, label, errors="replace"))
        return
    with safe_fs.open_binary(path, label) as handle:
        yield from _scan(handle, decode=lambda index: True)


def read_rows(path: Path, label: str | None = None) -> list[Row]:
    return list(iter_rows(path, label))


def read_page(path: Path, offset: int, limit: int, label: str | None = None) -> tuple[list[Row], int]:
    """Rows offset..offset+limit and the total row count, decoding only the rows returned."""
    label = label or path.name
    if path.suffix == ".json":
        rows = read_rows(path, label)
        return rows[offset : offset + limit], len(rows)
    if safe_fs.lstat(path, label) is None:
        raise UserError(f"{label} does not exist; datasets live at dataset/<split>.jsonl")
    page: list[Row] = []
    total = 0
    with safe_fs.open_binary(path, label) as handle:
        for row in _scan(handle, decode=lambda index: offset <= index < offset + limit):
            total += 1
            if offset <= row.index < offset + limit:
                page.append(row)
    return page, total


def count_file_rows(path: Path, label: str | None = None) -> int:
    return read_page(path, 0, 0, label)[1]


def _scan(handle: BinaryIO, decode) -> Iterator[Row]:
    """Non-blank lines as rows; lines longer than MAX_LINE_BYTES are skipped in pieces and reported."""
    index = number = 0
    while True:
        line = handle.readline(MAX_LINE_BYTES + 1)
        if not line:
            return
        number += 1
        if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
            while (rest := handle.readline(safe_fs.COPY_CHUNK)) and not rest.endswith(b"\n"):
                pass
            yield Row(index, None, f"line longer than {MAX_LINE_BYTES} bytes", line=number)
            index += 1
            continue
        if not line.strip():
            continue
        if not decode(index):
            yield Row(index, None, line=number)
        else:
            try:
                yield Row(index, json.loads(line.decode("utf-8", errors="replace")), line=number)
            except json.JSONDecodeError as exc:
                yield Row(index, None, f"not valid JSON: {exc.msg}", line=number)
        index += 1


def _json_rows(text: str) -> list[Row]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"the file is not valid JSON: {exc.msg} (line {exc.lineno})") from None
    items = data.get("data") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise UserError('a .json dataset must be an array of rows or {"data": [...]}')
    return [Row(index, item) for index, item in enumerate(items)]


def path_param_problem(key: str, value: Any) -> str | None:
    """Why an [environment.params] path (dataset_path, contract_path) may not be used, or None.

    Data is read only from inside the project: a path relative to it, without `..`."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        return f"{key} must be a path relative to the project, e.g. 'dataset/train.jsonl'"
    shown = value if len(value) <= 80 else value[:80] + "…"
    if len(value) > 1024 or "\0" in value:
        return f"{key} {shown!r} is not a usable path (too long, or a NUL byte); use e.g. 'dataset/train.jsonl'"
    if value.startswith(("/", "~")) or "\\" in value or _DRIVE.match(value):
        return (
            f"{key} = {shown!r} is absolute; runs and tests only read data inside the project — use a path "
            "relative to the project, e.g. 'dataset/train.jsonl'"
        )
    parts = PurePosixPath(value).parts
    if any(part.lower() == ".git" for part in parts) or (parts and parts[-1].lower().startswith(".env")):
        return f"{key} = {shown!r} names git internals or a secrets file (.env*); tools never read those"
    if ".." in parts:
        return (
            f"{key} = {shown!r} leaves the project with '..'; use a path relative to the project, "
            "e.g. 'dataset/train.jsonl'"
        )
    return None


def split_problem(value: Any) -> str | None:
    if value is None or (isinstance(value, str) and _SPLIT.fullmatch(value) and ".." not in value):
        return None
    return f"split {str(value)[:80]!r} must be a plain name like 'train' or 'test' (dataset/<split>.jsonl)"


def params_problems(params: dict[str, Any]) -> list[tuple[str, str]]:
    """(key, problem) for every [environment.params] value that would read outside the project."""
    found = [(f"environment.params.{key}", p) for key in PATH_PARAMS if (p := path_param_problem(key, params.get(key)))]
    if (problem := split_problem(params.get("split"))) is not None:
        found.append(("environment.params.split", problem))
    return found


def dataset_file(project_dir: Path, params: dict[str, Any]) -> Path | None:
    """The dataset file a run or test of this project reads, if it exists; refuses paths out of the project."""
    problems = params_problems(params)
    if problems:
        raise UserError(f"[environment.params] {problems[0][1]}")
    split = params.get("split") or "train"
    if isinstance(params.get("dataset_path"), str):
        candidates = [project_dir / params["dataset_path"]]
    else:
        candidates = [project_dir / "dataset" / f"{split}.jsonl", project_dir / "dataset" / f"{split}.json"]
    root = Path(os.path.realpath(project_dir))
    for path in candidates:
        real = Path(os.path.realpath(path))
        if real != root and root not in real.parents:
            raise UserError(
                f"[environment.params] dataset {path.relative_to(project_dir).as_posix()!r} resolves outside the "
                "project (a symlink); use a real file inside the project"
            )
        if safe_fs.lstat(real, real.name) is not None:
            return real
    return None


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


def append_rows(path: Path, rows: list[dict[str, Any]], label: str | None = None) -> int:
    """Append rows to a .jsonl file atomically; every row is checked first. Returns the new row count.

    Under the folder's cross-process lock, the file is stream-copied to a temp file with the new rows
    and renamed over the old one: memory stays flat, and readers see the old rows or all of the new."""
    label = label or path.name
    if path.suffix != ".jsonl":
        raise UserError(f"rows can only be appended to a .jsonl dataset, not {label}")
    for number, row in enumerate(rows):
        problem = row_problem(row)
        if problem:
            raise UserError(f"row {number} of the request is invalid: {problem}; nothing was written")
    added = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode("utf-8")
    counter = _RowCounter()
    with locked(path, label) as parent:
        handle = None
        if parent.lstat(path.name) is not None:
            fd, _ = parent.open_regular(path.name, label)
            handle = os.fdopen(fd, "rb")
        try:
            parent.replace(path.name, counter.copy(handle, added))
        finally:
            if handle is not None:
                handle.close()
    return counter.rows + len(rows)


class _RowCounter:
    """Counts non-blank lines of what it copies, chunk by chunk."""

    def __init__(self) -> None:
        self.rows = 0

    def copy(self, handle: BinaryIO | None, tail: bytes) -> Iterator[bytes]:
        pending, last = False, b"\n"
        for chunk in iter(lambda: handle.read(safe_fs.COPY_CHUNK), b"") if handle is not None else ():
            yield chunk
            pieces = chunk.split(b"\n")
            for piece in pieces[:-1]:
                self.rows += pending or bool(piece.strip())
                pending = False
            pending = pending or bool(pieces[-1].strip())
            last = chunk[-1:]
        self.rows += pending
        if last != b"\n":
            yield b"\n"
        yield tail


def first_rows(path: Path, count: int | None, label: str | None = None) -> list[Row]:
    return list(islice(iter_rows(path, label), count))

"""The run directory contract between the server and a trainer process (no heavy imports)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
import tempfile
import time
from collections import deque
from collections.abc import Iterator
from itertools import accumulate
from pathlib import Path
from typing import Any

JOB = "job.json"
STATUS = "status.json"
METRICS = "metrics.jsonl"
SAMPLES = "samples.jsonl"
LOG = "log"
CANCEL = "cancel"
CHECKPOINTS = "checkpoints"


# The run directory is the sandboxed trainer's to write: the server opens what it finds there by
# descriptor, never following a symlink the trainer planted (to settings.toml, Flash's credentials,
# /dev/zero) and never blocking on a FIFO; only regular files of bounded size are read.
_NOFOLLOW = os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
MAX_READ_BYTES = 256 << 20
# What the server reads of a job's file at most: a status or spec (JSON), a JSONL file's tail, one JSONL line,
# and how deep JSON may nest (a 100,000-deep status must cost a bracket count, not a RecursionError).
MAX_JSON_BYTES = 1 << 20
MAX_JSONL_BYTES = 8 << 20
MAX_JSONL_ROWS = 20_000
MAX_LINE_BYTES = 256 << 10
MAX_DEPTH = 64
MAX_LOG_BYTES = 16 << 20  # what an ended job's log keeps: its first quarter and the rest from its end
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"')
_BRACKETS = re.compile(r"[^\[\]{}]")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


def read_regular(path: Path, limit: int = MAX_READ_BYTES) -> str | None:
    """The text of a regular file in a run directory, or None (absent, a symlink, special, too big)."""
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > limit:
            return None
        return handle.read(limit).decode("utf-8", errors="replace")


def touch(path: Path) -> None:
    """Create `path` if absent (a cancel marker), without following a symlink planted in its place."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o600))


def write_json(path: Path, value: Any) -> None:
    """Atomic replace, so a reader never sees half a status; the temporary name is created, never reused."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(value))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class Unreadable(ValueError):
    """A file a job wrote that the server will not parse; the message names the file and why."""


def depth(text: str) -> int:
    """How deep `text`'s JSON nests, at most (brackets inside strings do not count); cheap, no parse."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return text.count("[") + text.count("{")
    brackets = _BRACKETS.sub("", _STRINGS.sub("", text))
    return max(accumulate(_STEP[c] for c in brackets), default=0)


def parse_json(text: str, name: str) -> Any:
    """JSON from a job's file, refusing what would hurt the reader (too deep; RecursionError is caught too)."""
    if depth(text) > MAX_DEPTH:
        raise Unreadable(f"{name} nests deeper than {MAX_DEPTH} levels")
    try:
        return json.loads(text)
    except RecursionError:
        raise Unreadable(f"{name} nests too deep to read") from None
    except ValueError as exc:
        raise Unreadable(f"{name} is not valid JSON ({exc})") from None


def load_json(path: Path, limit: int = MAX_JSON_BYTES) -> dict[str, Any] | None:
    """A job's JSON object file, None if absent; Unreadable (naming the file) if it is not one the server reads."""
    text = read_regular(path, limit)
    if text is None:
        if path.is_symlink() or (path.exists() and not path.is_file()):
            raise Unreadable(f"{path.name} is not a regular file")
        if path.exists():
            raise Unreadable(f"{path.name} is over {limit >> 10} KiB")
        return None
    value = parse_json(text, path.name)
    if not isinstance(value, dict):
        raise Unreadable(f"{path.name} holds {type(value).__name__}, not an object")
    return value


def read_json(path: Path, limit: int = MAX_JSON_BYTES) -> dict[str, Any] | None:
    """`load_json`, with anything unreadable read as absent."""
    try:
        return load_json(path, limit)
    except Unreadable:
        return None


def append_jsonl(path: Path, value: dict[str, Any]) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(value) + "\n")


def iter_lines(path: Path, start: int = 0, max_bytes: int = MAX_JSONL_BYTES) -> Iterator[bytes]:
    """Complete lines of a job's file from byte `start` (a partial first line skipped when start > 0), reading
    at most `max_bytes`; a line longer than MAX_LINE_BYTES is skipped, never held whole."""
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW)
    except OSError:
        return
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return
        handle.seek(start)
        budget, skipping = max_bytes, start > 0
        while budget > 0:
            line = handle.readline(min(MAX_LINE_BYTES + 1, budget))
            if not line:
                return
            budget -= len(line)
            complete = line.endswith(b"\n")
            if not skipping and complete and len(line) <= MAX_LINE_BYTES:
                yield line
            skipping = not complete  # the rest of an overlong (or partial) line follows


def read_jsonl(path: Path, max_bytes: int = MAX_JSONL_BYTES, max_rows: int = MAX_JSONL_ROWS) -> list[dict[str, Any]]:
    """The last rows of a job's JSONL file: only its final `max_bytes` are read and at most `max_rows` kept;
    a line that is not a JSON object (half written, too deep, too long) is skipped."""
    try:
        size = os.lstat(path).st_size
    except OSError:
        return []
    rows: deque[dict[str, Any]] = deque(maxlen=max_rows)
    for line in iter_lines(path, max(0, size - max_bytes), max_bytes):
        with contextlib.suppress(Unreadable, UnicodeDecodeError):
            value = parse_json(line.decode("utf-8"), path.name)
            if isinstance(value, dict):
                rows.append(value)
    return list(rows)


def set_status(run_dir: Path, **fields: Any) -> None:
    """Merge `fields` into the status; `changed_at` moves only when a value changed, `heartbeat_at` always."""
    status = read_json(run_dir / STATUS) or {}
    now = time.time()
    if any(status.get(key) != value for key, value in fields.items()):
        status["changed_at"] = now
    status.update(fields)
    status["heartbeat_at"] = now
    write_json(run_dir / STATUS, status)

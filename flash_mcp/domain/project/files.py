"""Project files: atomic writes, paged reads and a bounded listing."""

from __future__ import annotations

import os
import tempfile
import threading
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from flash_mcp.core.errors import UserError
from flash_mcp.core.workspace import Workspace, is_secret_file

MAX_WRITE_BYTES = 8 * 1024 * 1024
# Directories listed but never descended: installs, caches and VCS internals.
_OPAQUE_DIRS = frozenset(
    {".git", ".venv", "venv", "node_modules", "__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache"}
)

_path_locks: defaultdict[Path, threading.Lock] = defaultdict(threading.Lock)
_path_locks_guard = threading.Lock()


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Serialise read-modify-write cycles on one file within this process."""
    with _path_locks_guard:
        lock = _path_locks[path]
    with lock:
        yield


def atomic_write(path: Path, data: bytes) -> None:
    """Write via a temp file in the same directory and rename: readers see old or new, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o7777 if path.exists() else None
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_new(path: Path, text: str) -> bool:
    """Create `path` atomically unless it exists; True when written."""
    if path.exists():
        return False
    atomic_write(path, text.encode("utf-8"))
    return True


@dataclass(frozen=True)
class Chunk:
    text: str
    size: int
    next_offset: int | None


def read_chunk(path: Path, offset: int, limit: int) -> Chunk:
    """Read up to `limit` bytes of UTF-8 text from byte `offset`, never splitting a character."""
    if is_secret_file(path):
        raise UserError(f"{path.name} holds secrets; its values are never returned. Ask the human to check it.")
    if not path.is_file():
        raise UserError(f"{path.name} is not a file; call list_project_files to see what exists")
    size = path.stat().st_size
    if offset > size:
        raise UserError(f"offset {offset} is past the end of the file ({size} bytes)")
    with path.open("rb") as handle:
        handle.seek(offset)
        raw = handle.read(limit + 4)
    if b"\0" in raw:
        raise UserError(f"{path.name} is binary; only text files can be read")
    cut = _utf8_boundary(raw, min(limit, len(raw)))
    text = raw[:cut].decode("utf-8", errors="replace")
    end = offset + cut
    return Chunk(text=text, size=size, next_offset=end if end < size else None)


def _utf8_boundary(raw: bytes, cut: int) -> int:
    """Step back from `cut` so it never lands inside a multi-byte UTF-8 sequence."""
    if cut >= len(raw):
        return cut
    back = cut
    while back > 0 and (raw[back] & 0xC0) == 0x80 and cut - back < 4:
        back -= 1
    return back if back > 0 else cut


@dataclass(frozen=True)
class Entry:
    path: str
    kind: str  # "file" | "dir" | "symlink"
    size: int | None
    secret: bool


def list_tree(workspace: Workspace, start: Path, max_entries: int) -> tuple[list[Entry], int]:
    """Walk `start` breadth-first; return at most `max_entries` entries and the total seen."""
    entries: list[Entry] = []
    total = 0
    queue = [start]
    while queue:
        current = queue.pop(0)
        try:
            children = sorted(current.iterdir(), key=lambda p: p.name)
        except OSError:
            continue
        for child in children:
            if _within_state(workspace, child):
                continue
            total += 1
            entry = _entry(workspace, child)
            if len(entries) < max_entries:
                entries.append(entry)
            if entry.kind == "dir" and child.name not in _OPAQUE_DIRS:
                queue.append(child)
    return entries, total


def _entry(workspace: Workspace, path: Path) -> Entry:
    rel = path.relative_to(workspace.root).as_posix()
    if path.is_symlink():
        return Entry(rel, "symlink", None, is_secret_file(path))
    if path.is_dir():
        return Entry(rel, "dir", None, False)
    return Entry(rel, "file", path.stat().st_size, is_secret_file(path))


def _within_state(workspace: Workspace, path: Path) -> bool:
    return workspace.is_protected(Path(os.path.realpath(path)))

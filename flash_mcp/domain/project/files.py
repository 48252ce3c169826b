"""Project files: atomic writes, paged reads and a bounded listing, all by descriptor (see safe_fs)."""

from __future__ import annotations

import os
import stat
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from flash_mcp.core.errors import UserError
from flash_mcp.core.workspace import Workspace, in_git, is_secret_file
from flash_mcp.domain.project import safe_fs

MAX_WRITE_BYTES = 8 * 1024 * 1024
# Directories listed but never descended: installs, caches and VCS internals.
_OPAQUE_DIRS = frozenset(
    {".git", ".venv", "venv", "node_modules", "__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache"}
)


@contextmanager
def locked(path: Path, label: str | None = None) -> Iterator[safe_fs.Folder]:
    """Serialise read-modify-write cycles on files of one folder, across threads and processes:
    an exclusive flock on the (descriptor-opened) parent folder for the duration of the block."""
    with safe_fs.folder(path.parent, label or str(path.parent), create=True, lock=True) as parent:
        yield parent


def atomic_write(path: Path, data: bytes, label: str | None = None) -> None:
    """Write via a temp file in the same directory and rename: readers see old or new, never half."""
    safe_fs.atomic_write(path, data, label)


def write_new(path: Path, text: str, label: str | None = None) -> bool:
    """Create `path` atomically unless it exists; True when written."""
    return safe_fs.write_new(path, text.encode("utf-8"), label)


def list_files(directory: Path, suffix: str, label: str | None = None) -> list[Path]:
    """Regular files named *suffix directly in `directory`, by descriptor: none when it is absent;
    refused when it (or a folder above it) is a symlink."""
    if safe_fs.lstat(directory, label) is None:
        return []
    with safe_fs.folder(directory, label or str(directory)) as opened:
        return [
            directory / name for name, info in opened.names() if name.endswith(suffix) and stat.S_ISREG(info.st_mode)
        ]


@dataclass(frozen=True)
class Chunk:
    text: str
    size: int
    next_offset: int | None


def read_chunk(path: Path, offset: int, limit: int, label: str | None = None) -> Chunk:
    """Read up to `limit` bytes of UTF-8 text from byte `offset`, never splitting a character."""
    label = label or path.name
    if is_secret_file(path):
        raise UserError(f"{label} holds secrets (.env*); its values are never returned. Ask the human to check it.")
    with safe_fs.open_binary(path, label) as handle:
        size = os.fstat(handle.fileno()).st_size
        if offset > size:
            raise UserError(f"offset {offset} is past the end of {label} ({size} bytes)")
        handle.seek(offset)
        raw = handle.read(limit + 4)
    if b"\0" in raw:
        raise UserError(f"{label} is binary; only text files can be read")
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
    """Walk `start` breadth-first by descriptor (symlinks listed, never followed); return at most
    `max_entries` entries and the total seen."""
    entries: list[Entry] = []
    total = 0
    queue: deque[Path] = deque([start])
    while queue:
        current = queue.popleft()
        try:
            with safe_fs.folder(current, workspace.label(current)) as opened:
                children = opened.names()
        except (UserError, OSError):
            continue
        for name, info in children:
            child = current / name
            linked = stat.S_ISLNK(info.st_mode) and workspace.is_protected(Path(os.path.realpath(child)))
            if workspace.is_protected(child) or linked:
                continue
            total += 1
            entry = _entry(workspace, child, info)
            if len(entries) < max_entries:
                entries.append(entry)
            if entry.kind == "dir" and name not in _OPAQUE_DIRS and not in_git([name]):
                queue.append(child)
    return entries, total


def _entry(workspace: Workspace, path: Path, info: os.stat_result) -> Entry:
    rel = path.relative_to(workspace.root).as_posix()
    if stat.S_ISLNK(info.st_mode):
        return Entry(rel, "symlink", None, is_secret_file(path))
    if stat.S_ISDIR(info.st_mode):
        return Entry(rel, "dir", None, False)
    return Entry(rel, "file", info.st_size, is_secret_file(path))

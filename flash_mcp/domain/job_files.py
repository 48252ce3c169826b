"""What an ended job may leave in its directory, enforced by the server once the job's process is gone.

While a job runs, its directory is the sandboxed job's to write (per-file size and a disk quota bound it). Once the
server has seen its process end, `settle` keeps only the job's `Layout`: each named file a regular file within its
cap, keeping the end its reader reads (a JSONL file's tail or head, a log's start and end, a JSON file whole or not
at all), each named folder without links or special files; everything else is removed. Links are removed, never
followed (their targets are untouched), and no path named inside a job's file is acted on. If the directory is
still over the job's quota, the oldest step checkpoints go first, then the capped files shrink, largest first.
Returns what it did, in words, for the job's notes. Copies, never in-place edits: a file is never truncated
through a hard link the job made to something else.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from flash_mcp.core.visible import clip
from flash_mcp.domain import lifecycle
from flash_mcp.domain.evaluation import record
from flash_mcp.domain.runs import rundir

HEAD, TAIL, ENDS, WHOLE = "head", "tail", "ends", "whole"
CHUNK = 1 << 20
SHOWN = 12  # names listed in a note, the rest counted
MIB = 1 << 20
SLACK = 64 << 10


@dataclass(frozen=True)
class Cap:
    """A file's cap: `keep` HEAD or TAIL (whole lines, as its reader reads it), ENDS (a log: its first quarter and
    the rest from its end) or WHOLE (a JSON file: kept whole or removed)."""

    max_bytes: int
    keep: str


@dataclass(frozen=True)
class Layout:
    """What an ended job's directory may hold. `folders`: name -> the pattern its entries' names match (None: any);
    `steps`: the folder whose `step-N` entries may be dropped, oldest first, for the quota; `quiet`: names the job
    writes as scratch (caches in its HOME), removed without a note."""

    files: Mapping[str, Cap]
    folders: Mapping[str, str | None] = field(default_factory=dict)
    steps: str | None = None
    quiet: str = r"$^"
    what: str = "the job"


RUN_LAYOUT = Layout(
    files={
        rundir.JOB: Cap(rundir.MAX_JSON_BYTES, WHOLE), rundir.STATUS: Cap(rundir.MAX_JSON_BYTES, WHOLE),
        rundir.METRICS: Cap(rundir.MAX_JSONL_BYTES, TAIL), rundir.SAMPLES: Cap(rundir.MAX_JSONL_BYTES, TAIL),
        rundir.LOG: Cap(rundir.MAX_LOG_BYTES, ENDS), rundir.CANCEL: Cap(0, HEAD),
    },
    folders={rundir.CHECKPOINTS: r"step-\d+|final"},
    steps=rundir.CHECKPOINTS,
    quiet=r"trainer|torchinductor_.*|\..*",  # TRL's output_dir, torch's caches in its TMPDIR and HOME
    what="the trainer",
)  # fmt: skip

EVAL_LAYOUT = Layout(
    files={
        record.SPEC: Cap(rundir.MAX_JSON_BYTES, WHOLE), record.STATUS: Cap(rundir.MAX_JSON_BYTES, WHOLE),
        record.JOB: Cap(rundir.MAX_JSON_BYTES, WHOLE), record.ROWS: Cap(record.MAX_ROWS_BYTES, HEAD),
        record.LOG: Cap(rundir.MAX_LOG_BYTES, ENDS), record.CANCEL: Cap(0, HEAD),
        **{name: Cap(record.MAX_ROWS_BYTES, HEAD) for name in ("prompts.jsonl", "answers.jsonl")},  # Flash's
    },
    folders={"package": None},  # a Flash evaluation's copy of the environment
    quiet=r"torchinductor_.*|\..*",  # torch's caches in its TMPDIR and HOME
    what="the evaluator",
)  # fmt: skip


@dataclass
class _Done:
    """What `settle` did: a few names of each kind (`SHOWN`) and how many there were."""

    removed: list[str] = field(default_factory=list)
    removed_count: int = 0
    capped: dict[str, str] = field(default_factory=dict)
    dropped: list[str] = field(default_factory=list)

    def remove(self, name: str, link: bool = False) -> None:
        self.removed_count += 1
        if len(self.removed) < SHOWN:
            self.removed.append(clip(ascii(name)[1:-1], 80) + (" (a link)" if link else ""))


def settle(job_dir: Path, layout: Layout, quota: int | None) -> list[str]:
    """Enforce `layout` and `quota` on what an ended job left in `job_dir`; notes of what was removed or capped."""
    done, kept = _Done(), []
    try:
        scan = os.scandir(job_dir)
    except OSError:
        return []
    with scan:
        for entry in scan:
            name = entry.name
            if name in layout.files and _is(entry, stat.S_ISREG):
                kept.append(name)
            elif name in layout.folders and _is(entry, stat.S_ISDIR):
                _prune(Path(entry.path), layout.folders[name], done)
            elif _remove(entry) and (entry.is_symlink() or not re.fullmatch(layout.quiet, name)):
                done.remove(name, entry.is_symlink())
    for name in sorted(kept):  # after the scan: a cap writes a temporary file beside the one it replaces
        _cap(job_dir / name, layout.files[name], done)
    if quota:
        _within(job_dir, layout, quota, kept, done)
    return _notes(job_dir, layout, quota, done)


def settle_evaluation(directory: Path, quota: int | None) -> list[str]:
    """`settle` for an ended evaluation, its spec.json restored from the server's sealed copy if it had to go."""
    notes = settle(directory, EVAL_LAYOUT, quota)
    record.restore_spec(directory)
    return notes


def _is(entry: os.DirEntry, kind: Callable[[int], bool]) -> bool:
    with contextlib.suppress(OSError):
        return kind(entry.stat(follow_symlinks=False).st_mode)
    return False


def _remove(entry: os.DirEntry | Path) -> bool:
    """Remove a file, link or folder (a folder's links are removed, never followed); True if it was there."""
    path = entry.path if isinstance(entry, os.DirEntry) else str(entry)
    try:
        if stat.S_ISDIR(os.lstat(path).st_mode):
            shutil.rmtree(path, ignore_errors=True)  # fd-based on Linux: never follows a link inside
        else:
            os.unlink(path)
    except OSError:
        return False
    return True


def _prune(folder: Path, names: str | None, done: _Done) -> None:
    """A layout folder: entries whose names do not match removed, links and special files anywhere removed; a
    folder of more than lifecycle.MAX_ENTRIES entries is not what the job writes, and goes whole."""
    seen, pending = 0, [folder]
    while pending:
        current = pending.pop()
        try:
            entries = list(os.scandir(current))
        except OSError:
            continue
        for entry in entries:
            seen += 1
            if seen > lifecycle.MAX_ENTRIES:
                _remove(folder)
                done.remove(f"{folder.name} (over {lifecycle.MAX_ENTRIES} entries)")
                return
            label = os.path.relpath(entry.path, folder.parent)
            stray = current == folder and names is not None and not re.fullmatch(names, entry.name)
            if not stray and _is(entry, stat.S_ISDIR):
                pending.append(Path(entry.path))
            elif (stray or not _is(entry, stat.S_ISREG)) and _remove(entry):
                done.remove(label, entry.is_symlink())


def _cap(path: Path, cap: Cap, done: _Done) -> None:
    """Bring one regular file within `cap`, by a copy of what its reader keeps replacing it."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return
    try:
        info = os.fstat(fd)
        if stat.S_ISREG(info.st_mode) and info.st_size <= cap.max_bytes:
            return
        if cap.keep == WHOLE or not stat.S_ISREG(info.st_mode):
            _remove(path)
            done.remove(f"{path.name} (over {_size(cap.max_bytes)})")
        else:
            with contextlib.suppress(OSError):  # e.g. a full disk: the file stays as it was
                _replace(path, fd, info.st_size, cap)
                done.capped[path.name] = _kept(path.name, cap)
    finally:
        os.close(fd)


def _replace(path: Path, fd: int, size: int, cap: Cap) -> None:
    if cap.keep == HEAD:
        parts = [(0, _line_end(fd, cap.max_bytes))]
    elif cap.keep == TAIL:
        parts = [(start := _line_start(fd, size - cap.max_bytes), size - start)]
    else:
        head = cap.max_bytes // 4
        marker = f"\n[... {size - cap.max_bytes} bytes removed here when the job ended: over {_size(cap.max_bytes)}]\n"
        tail = max(cap.max_bytes - head - len(marker), 0)
        parts = [(0, head), marker.encode(), (size - tail, tail)]
    out, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".cap")
    try:
        for part in parts:
            if isinstance(part, bytes):
                os.write(out, part)
            else:
                _copy(fd, out, *part)
        os.close(out)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.close(out)
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _copy(source: int, target: int, start: int, length: int) -> None:
    while length > 0:
        data = os.pread(source, min(CHUNK, length), start)
        if not data:
            return
        os.write(target, data)
        start, length = start + len(data), length - len(data)


def _line_end(fd: int, stop: int) -> int:
    """Just past the last newline before byte `stop` (0 if none): the head of whole lines."""
    position = stop
    while position > 0:
        width = min(CHUNK, position)
        found = os.pread(fd, width, position - width).rfind(b"\n")
        if found >= 0:
            return position - width + found + 1
        position -= width
    return 0


def _line_start(fd: int, start: int) -> int:
    """The first line that starts at or after byte `start`: the tail of whole lines."""
    position = max(start - 1, 0)
    while True:
        data = os.pread(fd, CHUNK, position)
        if not data:
            return position
        found = data.find(b"\n")
        if found >= 0:
            return position + found + 1 if start > 0 else 0
        position += len(data)


def _within(job_dir: Path, layout: Layout, quota: int, kept: list[str], done: _Done) -> None:
    """Over the quota: the oldest step checkpoints dropped, then the capped logs and JSONL files shrunk, largest
    first."""
    if lifecycle.disk_used(job_dir, quota) <= quota:
        return
    folder = job_dir / layout.steps if layout.steps else None
    steps = [p for p in folder.glob("step-*") if p.name[5:].isdigit()] if folder and folder.is_dir() else []
    for step in sorted(steps, key=lambda p: int(p.name[5:])):
        if _remove(step):
            done.dropped.append(f"{layout.steps}/{step.name}")
        if lifecycle.disk_used(job_dir, quota) <= quota:
            return
    shrinkable = [name for name in kept if layout.files[name].keep != WHOLE]  # a JSON file is small, and whole
    for name in sorted(shrinkable, key=lambda n: _blocks(job_dir / n), reverse=True):
        excess = _used(job_dir) - quota
        if excess <= 0:
            return
        size = _apparent(job_dir / name)  # SLACK: a little more, for the blocks the copy rounds up to
        _cap(job_dir / name, replace(layout.files[name], max_bytes=max(size - excess - SLACK, 0)), done)


def _used(job_dir: Path) -> int:
    """All the directory's bytes (disk_used stops counting past the limit it is given)."""
    return lifecycle.disk_used(job_dir, 1 << 62)


def _blocks(path: Path) -> int:
    with contextlib.suppress(OSError):
        return os.lstat(path).st_blocks
    return 0


def _apparent(path: Path) -> int:
    with contextlib.suppress(OSError):
        return os.lstat(path).st_size
    return 0


def _notes(job_dir: Path, layout: Layout, quota: int | None, done: _Done) -> list[str]:
    notes = []
    if done.removed:
        removed = _names(done.removed, done.removed_count)
        notes.append(f"when {layout.what} ended, flash-mcp removed what it left outside its directory's layout or "
                     f"over a cap (links removed, never followed): {removed}")  # fmt: skip
    if done.capped:
        notes.append(f"when {layout.what} ended, flash-mcp capped {_names(list(done.capped.values()))}")
    if done.dropped:
        notes.append(f"flash-mcp dropped {_names(done.dropped)} (the oldest first) to keep the directory within "
                     f"job_disk_mb ({_size(quota or 0)})")  # fmt: skip
    if quota and (used := _used(job_dir)) > quota:
        notes.append(f"the directory is still over job_disk_mb ({_size(quota)}) after its files were capped: "
                     f"{_size(used)}")  # fmt: skip
    return notes


def _names(names: list[str], count: int | None = None) -> str:
    more = (len(names) if count is None else count) - len(names[:SHOWN])
    return ", ".join(names[:SHOWN]) + (f" and {more} more" if more > 0 else "")


def _kept(name: str, cap: Cap) -> str:
    where = {HEAD: "first", TAIL: "last", ENDS: "first and last"}[cap.keep]
    return f"{name} to its {where} {_size(cap.max_bytes)}"


def _size(count: int) -> str:
    return f"{count / MIB:.0f} MiB" if count >= MIB else f"{count} bytes" if count < 1024 else f"{count >> 10} KiB"

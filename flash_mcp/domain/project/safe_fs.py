"""Files opened by descriptor, never by a string the OS re-interprets.

Every path here is absolute and already resolved (it comes from `Workspace.resolve`). It is opened
by walking from `/` one component at a time with `O_NOFOLLOW`, so a folder swapped for a symlink
between the check and the open makes the open fail instead of leaving the tree. The opened object's
kind is checked with `fstat` before any byte is read: only regular files with a single link are
read (a hard link may be another name for a file outside the workspace), and files are opened with
`O_NONBLOCK`, so a FIFO or a device is refused without ever blocking.

Writes go to a temporary name in the same opened directory and are renamed over the target, so a
hard link is replaced rather than written through. `locked` takes an `flock` on the directory,
which holds across threads and processes.
"""

from __future__ import annotations

import errno
import fcntl
import os
import secrets
import stat
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import BinaryIO

from flash_mcp.core.errors import UserError

_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | _CLOEXEC
_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | _CLOEXEC
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | _CLOEXEC
COPY_CHUNK = 1 << 20


def kind_of(mode: int) -> str:
    """A file kind in words, for refusals."""
    for test, name in ((stat.S_ISREG, "regular file"), (stat.S_ISDIR, "directory"), (stat.S_ISLNK, "symlink"),
                       (stat.S_ISFIFO, "FIFO (named pipe)"), (stat.S_ISSOCK, "socket"),
                       (stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device")):  # fmt: skip
        if test(mode):
            return name
    return "special file"


class Missing(UserError):
    """The path, or a folder on it, does not exist."""


def _refusal(label: str, exc: OSError) -> UserError:
    if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
        return UserError(
            f"{label!r} cannot be opened: a folder on its path is a symlink or not a folder (or changed while it "
            "was opened); tools follow no symlink once a path is checked — give the real path inside the workspace"
        )
    if exc.errno == errno.ENAMETOOLONG:
        return UserError(f"{label[:80]!r}… is too long for the file system; use a shorter path")
    if exc.errno == errno.ENXIO:
        return UserError(f"{label!r} is a socket or device, not a regular file; tools only open regular files")
    if exc.errno == errno.ENOENT:
        return Missing(f"{label!r} does not exist; call list_project_files to see what exists")
    reason = exc.strerror or type(exc).__name__
    return UserError(f"{label!r} cannot be opened ({reason}); check the path and its permissions")


def _walk(path: Path, label: str, create: bool) -> int:
    """A descriptor for directory `path`, reached from `/` without following any symlink."""
    if not path.is_absolute():
        raise ValueError(f"{path} is not absolute")
    fd = os.open("/", _DIR)
    try:
        for name in path.parts[1:]:
            try:
                child = os.open(name, _DIR, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise
                with suppress(FileExistsError):
                    os.mkdir(name, 0o777, dir_fd=fd)
                child = os.open(name, _DIR, dir_fd=fd)
            os.close(fd)
            fd = child
        return fd
    except OSError as exc:
        os.close(fd)
        raise _refusal(label, exc) from None
    except BaseException:
        os.close(fd)
        raise


class Folder:
    """An open directory: every file operation below is relative to its descriptor."""

    def __init__(self, fd: int, path: Path, label: str):
        self.fd, self.path, self.label = fd, path, label

    def _label(self, name: str) -> str:
        return f"{self.label.rstrip('/')}/{name}" if self.label not in ("", ".") else name

    def lstat(self, name: str) -> os.stat_result | None:
        """The entry itself (a symlink is not followed), or None when absent."""
        try:
            return os.stat(name, dir_fd=self.fd, follow_symlinks=False)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise _refusal(self._label(name), exc) from None

    def open_regular(self, name: str, label: str | None = None) -> tuple[int, os.stat_result]:
        """A read descriptor for a regular, singly linked file; anything else is refused without blocking."""
        label = label or self._label(name)
        try:
            fd = os.open(name, _READ, dir_fd=self.fd)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise UserError(f"{label!r} is a symlink; tools read the real file, not links to it") from None
            raise _refusal(label, exc) from None
        try:
            info = os.fstat(fd)
            check_regular(info, label)
            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
        except BaseException:
            os.close(fd)
            raise
        return fd, info

    def read_bytes(self, name: str, max_bytes: int, label: str | None = None) -> bytes:
        label = label or self._label(name)
        fd, info = self.open_regular(name, label)
        with os.fdopen(fd, "rb") as handle:
            if info.st_size > max_bytes:
                raise UserError(f"{label!r} is {info.st_size} bytes; the limit for this read is {max_bytes} bytes")
            data = handle.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise UserError(f"{label!r} grew past {max_bytes} bytes while it was read; try again")
        return data

    def names(self) -> list[tuple[str, os.stat_result]]:
        """Entries of this directory with their own (not followed) stat, sorted by name."""
        with os.scandir(self.fd) as entries:
            found = [(entry.name, entry.stat(follow_symlinks=False)) for entry in entries]
        return sorted(found, key=lambda item: item[0])

    def replace(self, name: str, chunks: Iterator[bytes] | bytes) -> int:
        """Write a temp file here and rename it over `name`: readers see old or new, never half; a hard
        link at `name` is replaced, not written through. Returns the bytes written."""
        existing = self.lstat(name)
        label = self._label(name)
        if existing is not None and not stat.S_ISREG(existing.st_mode):
            raise UserError(f"{label!r} is a {kind_of(existing.st_mode)}; tools only replace regular files")
        tmp = self._write_temp(name, chunks, existing.st_mode & 0o7777 if existing else None)
        try:
            os.replace(tmp[0], name, src_dir_fd=self.fd, dst_dir_fd=self.fd)
        except BaseException:
            self._discard(tmp[0])
            raise
        return tmp[1]

    def create(self, name: str, data: bytes) -> bool:
        """Create `name` atomically unless it exists (a link, so no window where it exists half written)."""
        if self.lstat(name) is not None:
            return False
        tmp, _ = self._write_temp(name, data, None)
        try:
            os.link(tmp, name, src_dir_fd=self.fd, dst_dir_fd=self.fd)
        except FileExistsError:
            return False
        finally:
            self._discard(tmp)
        return True

    def _write_temp(self, name: str, chunks: Iterator[bytes] | bytes, mode: int | None) -> tuple[str, int]:
        tmp = f".{name[:200]}.{secrets.token_hex(4)}.tmp"
        try:
            fd = os.open(tmp, _CREATE, 0o666, dir_fd=self.fd)
        except OSError as exc:
            raise _refusal(self._label(name), exc) from None
        written = 0
        try:
            with os.fdopen(fd, "wb") as handle:
                for chunk in [chunks] if isinstance(chunks, bytes) else chunks:
                    handle.write(chunk)
                    written += len(chunk)
                handle.flush()
                os.fsync(handle.fileno())
            if mode is not None:
                os.chmod(tmp, mode, dir_fd=self.fd)
        except BaseException:
            self._discard(tmp)
            raise
        return tmp, written

    def _discard(self, tmp: str) -> None:
        with suppress(FileNotFoundError):
            os.unlink(tmp, dir_fd=self.fd)


def check_regular(info: os.stat_result, label: str) -> None:
    if not stat.S_ISREG(info.st_mode):
        raise UserError(
            f"{label!r} is a {kind_of(info.st_mode)}, not a regular file; tools only read regular files — "
            "replace it with a plain file"
        )
    if info.st_nlink > 1:
        raise UserError(
            f"{label!r} has {info.st_nlink} hard links; another name for it may lie outside the workspace, so "
            "tools do not read it — replace it with a copy (cp FILE tmp && mv tmp FILE)"
        )


@contextmanager
def folder(path: Path, label: str | None = None, *, create: bool = False, lock: bool = False) -> Iterator[Folder]:
    """Open directory `path` without following symlinks (creating missing folders when asked);
    `lock` holds an exclusive flock on it, across threads and processes, until the block ends."""
    label = label if label is not None else str(path)
    fd = _walk(path, label, create)
    try:
        if lock:
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield Folder(fd, path, label)
    finally:
        os.close(fd)  # closing the descriptor releases the flock


def read_bytes(path: Path, max_bytes: int, label: str | None = None) -> bytes:
    label = label or str(path)
    with folder(path.parent, label) as parent:
        return parent.read_bytes(path.name, max_bytes, label)


def read_text(path: Path, max_bytes: int, label: str | None = None, errors: str = "strict") -> str:
    return read_bytes(path, max_bytes, label).decode("utf-8", errors=errors)


@contextmanager
def open_binary(path: Path, label: str | None = None) -> Iterator[BinaryIO]:
    """A buffered reader over a regular, singly linked file, for streaming."""
    label = label or str(path)
    with folder(path.parent, label) as parent:
        fd, _ = parent.open_regular(path.name, label)
    with os.fdopen(fd, "rb") as handle:
        yield handle


def lstat(path: Path, label: str | None = None) -> os.stat_result | None:
    """The entry at `path` (not followed), or None when it or a parent folder is absent."""
    try:
        with folder(path.parent, label or str(path)) as parent:
            return parent.lstat(path.name)
    except Missing:
        return None


def is_regular(path: Path) -> bool:
    info = lstat(path)
    return info is not None and stat.S_ISREG(info.st_mode)


def is_dir(path: Path) -> bool:
    info = lstat(path)
    return info is not None and stat.S_ISDIR(info.st_mode)


def atomic_write(path: Path, data: bytes, label: str | None = None) -> None:
    with folder(path.parent, label or str(path.parent), create=True) as parent:
        parent.replace(path.name, data)


def write_new(path: Path, data: bytes, label: str | None = None) -> bool:
    with folder(path.parent, label or str(path.parent), create=True) as parent:
        return parent.create(path.name, data)

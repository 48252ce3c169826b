"""Workspace confinement: the only tree tools may touch.

Every path argument is relative to the workspace. It is joined, resolved through the OS
(symlinks included) and checked again, so no spelling escapes: not `..`, not an absolute
path, not a symlink pointing out, not the server's own state directory, not `.git`. The
resolved path is then only ever opened by descriptor (`domain/project/safe_fs.py`), one
component at a time without following symlinks, so a swap after the check cannot redirect it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from flash_mcp.core.errors import UserError

_DRIVE = re.compile(r"^[A-Za-z]:")
MAX_PATH_CHARS = 1024
MAX_NAME_BYTES = 240  # below NAME_MAX (255), leaving room for the temp name of an atomic write


def flash_data_dir() -> Path:
    """`FLASH_DATA_DIR`, else ~/.flash: where `flash login` saves the API key (config.json)."""
    configured = os.environ.get("FLASH_DATA_DIR", "").strip()
    return Path(configured).expanduser() if configured else Path.home() / ".flash"


def is_secret_file(path: Path | str) -> bool:
    """`.env`, `.env.local`, `.envrc`, `.env-prod`, … (every `.env*`) hold secrets: listed, never read or written."""
    return Path(path).name.lower().startswith(".env")


def in_git(parts: tuple[str, ...] | list[str]) -> bool:
    """Inside `.git` (a folder, or the file a worktree keeps): hooks run code, config holds remotes."""
    return any(part.lower() == ".git" for part in parts)


@dataclass(frozen=True)
class Workspace:
    """A confined project tree plus the state directory no tool may touch."""

    root: Path
    state_dir: Path
    credentials_dir: Path | None = None

    @classmethod
    def create(cls, root: Path | str, state_dir: Path | str) -> Workspace:
        resolved = Path(os.path.realpath(Path(root).expanduser()))
        if not resolved.is_dir():
            raise UserError(f"workspace {resolved} is not a directory; pass --workspace DIR")
        return cls(
            root=resolved,
            state_dir=Path(os.path.realpath(Path(state_dir).expanduser())),
            credentials_dir=Path(os.path.realpath(flash_data_dir())),
        )

    def resolve(self, rel: str, *, write: bool = False) -> Path:
        """Turn a workspace-relative file path into a real absolute path inside the workspace."""
        real = self._resolve(rel, write=write)
        if write and real.is_dir():
            raise UserError(f"{rel!r} is a directory; give a file path")
        if write and (self.root / rel).is_symlink():
            raise UserError(f"{rel!r} is a symlink; tools do not write through symlinks")
        return real

    def resolve_dir(self, rel: str, *, write: bool = False) -> Path:
        """A workspace-relative folder (it may not exist yet), with the same rules as files."""
        real = self._resolve(rel, write=write)
        if real.exists() and not real.is_dir():
            raise UserError(f"{rel!r} is a file; give a directory")
        return real

    def _resolve(self, rel: str, *, write: bool) -> Path:
        self._check_spelling(rel)
        joined = self.root / rel
        real = Path(os.path.realpath(joined))
        if not _within(real, self.root):
            raise UserError(f"{rel!r} resolves outside the workspace {self.root}; use a path inside it")
        if _within(real, self.state_dir):
            raise UserError(
                f"{rel!r} is inside the server's state directory ({self.state_dir}), "
                "which only the human edits; tools cannot read or write it"
            )
        if self.credentials_dir is not None and _within(real, self.credentials_dir):
            raise UserError(f"{rel!r} is inside Flash's credentials directory; tools cannot read or write it")
        if write and (is_secret_file(real) or is_secret_file(joined)):
            raise UserError(f"{rel!r} is a secrets file; tools never write .env* files — ask the human to edit it")
        if is_secret_file(real) or is_secret_file(joined):
            raise UserError(f"{rel!r} holds secrets (.env*); its values are never returned. Ask the human to check it.")
        if in_git(real.relative_to(self.root).parts) or in_git(PurePosixPath(rel).parts):
            raise UserError(f"{rel!r} is inside .git; tools neither read, list nor write git internals")
        return real

    def is_protected(self, real: Path) -> bool:
        """Inside the state directory or Flash's credentials directory: never listed, read or written."""
        protected = [self.state_dir, *([self.credentials_dir] if self.credentials_dir else [])]
        return any(_within(real, folder) for folder in protected)

    def label(self, path: Path) -> str:
        """How a refusal names a resolved path: workspace-relative when inside, else as given."""
        return self.relative(path) if _within(path, self.root) else str(path)

    def relative(self, path: Path) -> str:
        """The workspace-relative POSIX spelling of a resolved path."""
        rel = path.relative_to(self.root).as_posix()
        return rel or "."

    @staticmethod
    def _check_spelling(rel: str) -> None:
        if not isinstance(rel, str) or not rel.strip():
            raise UserError("path is empty; give a path relative to the workspace, e.g. 'configs/sft.toml'")
        if len(rel) > MAX_PATH_CHARS:
            raise UserError(f"path {rel[:60]!r}… is {len(rel)} characters; the limit is {MAX_PATH_CHARS}")
        sizes = [len(part.encode("utf-8", "replace")) for part in rel.split("/")]
        long_name = next((size for size in sizes if size > MAX_NAME_BYTES), None)
        if long_name is not None:
            raise UserError(
                f"path {rel[:60]!r}… has a name of {long_name} bytes; the limit is {MAX_NAME_BYTES} per name"
            )
        if "\0" in rel:
            raise UserError("path contains a NUL byte; give a plain relative path")
        if "\\" in rel or _DRIVE.match(rel):
            raise UserError(f"{rel!r} looks like a Windows path; use forward slashes, relative to the workspace")
        pure = PurePosixPath(rel)
        if pure.is_absolute() or rel.startswith("~"):
            raise UserError(f"{rel!r} is absolute; give a path relative to the workspace")
        if ".." in pure.parts:
            raise UserError(f"{rel!r} contains '..'; give a path inside the workspace without '..'")


def _within(path: Path, root: Path) -> bool:
    return path == root or root in path.parents

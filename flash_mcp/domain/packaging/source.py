"""What a push packages and which files it never ships: Flash's entrypoint resolution and ignore rules.

flash/cli/commands/env/ops/push.py (1.3.28): `_resolve_local_env_entrypoint` and `_ignore_env_push_path`.
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass
from pathlib import Path

from flash_mcp.core.errors import UserError
from flash_mcp.core.workspace import flash_data_dir
from flash_mcp.domain.project import safe_fs

ENTRYPOINT = "environment.py"
IGNORED_NAMES = frozenset(
    {
        ".prime", ".git", ".github", "__pycache__", ".venv", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".idea",
        ".vscode", ".ds_store", ".git-worktrees", ".env", ".netrc", ".aws", ".ssh", "venv", "node_modules",
        "credentials", "secrets",
    }
)  # fmt: skip
ROOT_IGNORED_NAMES = frozenset({"pyproject.toml", "source"})
SECRET_PATTERNS = (
    ".env.*", "*.env", "*.pem", "*.key", "*.pfx", "*.p12", "credentials*", "id_rsa*", "id_dsa*", "id_ecdsa*",
    "id_ed25519*",
)  # fmt: skip
CODE_SUFFIXES = frozenset({".py", ".pyi"})
MAX_MEMBER_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True)
class Source:
    """What a push packages: a folder with environment.py, or one .py entrypoint (single-file mode)."""

    root: Path
    entrypoint: Path
    full_tree: bool
    exclude: tuple[Path, ...] = ()  # real folders never packaged: the state dir, Flash's credentials


def never_packaged(extra: tuple[Path, ...] | list[Path] = ()) -> tuple[Path, ...]:
    """Folders no package may contain, wherever they sit: the given state dirs and Flash's credentials dir."""
    return tuple(Path(os.path.realpath(folder)) for folder in (*extra, flash_data_dir()))


def read_member(path: Path, relative: str) -> bytes:
    """A packaged file's bytes, read by descriptor: a regular, singly linked file, or the push is refused."""
    try:
        return safe_fs.read_bytes(path, MAX_MEMBER_BYTES, relative)
    except UserError as exc:
        raise UserError(f"push refused, nothing was packaged: {exc}") from None


def resolve_source(path: Path, exclude: tuple[Path, ...] | list[Path] = ()) -> Source:
    """Flash's `_resolve_local_env_entrypoint`."""
    if not path.exists():
        raise UserError(f"no such path: {path.name}; give the project folder or its .py entrypoint")
    if path.is_symlink():
        raise UserError("cannot push a symlinked environment; push the real folder")
    if path.is_dir():
        entry = path / ENTRYPOINT
        if not entry.is_file():
            raise UserError(
                f"{path.name or 'the project'} has no {ENTRYPOINT} entrypoint; add one (setup_project), "
                "or pass the exact .py file for a single-file push"
            )
        source = Source(path, entry, full_tree=True, exclude=never_packaged(exclude))
    elif path.is_file() and path.suffix == ".py":
        source = Source(path.parent, path, full_tree=False, exclude=never_packaged(exclude))
    else:
        raise UserError(f"cannot push {path.name}: expected a folder with {ENTRYPOINT} or a .py entrypoint")
    if source.entrypoint.is_symlink():
        raise UserError("cannot push a symlinked entrypoint; push the real file")
    return source


def ignored(path: Path, *, root: Path, entrypoint: Path | None = None, exclude: tuple[Path, ...] = ()) -> bool:
    """Flash's `_ignore_env_push_path`, plus the folders in `exclude` (state and credentials)."""
    lowered = path.name.lower()
    if path.is_symlink():
        return True
    if any(path == folder or folder in path.parents for folder in exclude):
        return True
    if path.is_dir() and (path / "pyvenv.cfg").is_file():
        return True
    if path == entrypoint or (path.parent == root and lowered == ENTRYPOINT):
        return True
    if lowered.startswith(".") or lowered in IGNORED_NAMES:
        return True
    if path.parent == root and lowered in ROOT_IGNORED_NAMES:
        return True
    if (
        path.is_file()
        and path.suffix.lower() not in CODE_SUFFIXES
        and any(fnmatch.fnmatchcase(lowered, pattern) for pattern in SECRET_PATTERNS)
    ):
        return True
    return not (path.is_dir() or path.is_file())


def iter_sidecars(root: Path, exclude: tuple[Path, ...] = ()):
    """Every publishable file beside environment.py, sorted walk order, as (path, relative posix)."""

    def fail(error: OSError) -> None:
        raise error

    for current, dirs, files in os.walk(root, topdown=True, followlinks=False, onerror=fail):
        here = Path(current)
        dirs[:] = sorted(name for name in dirs if not ignored(here / name, root=root, exclude=exclude))
        for name in sorted(files):
            child = here / name
            if not ignored(child, root=root, exclude=exclude):
                yield child, child.relative_to(root).as_posix()

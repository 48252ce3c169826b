"""Run secrets: found by name in the environment or in `.env` files; values never leave the plane call."""

from __future__ import annotations

import os
from pathlib import Path

from flash_mcp.core.errors import UserError
from flash_mcp.domain.project import safe_fs

MAX_ENV_BYTES = 1024 * 1024


def secret_available(name: str, project: Path | None) -> bool:
    """Set in the environment, or declared in `.env`/`.env.local` beside the project or the working directory."""
    folders = [project, Path.cwd()] if project is not None else [Path.cwd()]
    return name in read_secrets([name], folders)


def read_secrets(names: list[str] | set[str], folders: list[Path]) -> dict[str, str]:
    """Values for `names`: the process environment first, then each folder's `.env` and `.env.local`, first wins.

    flash/client/runtime_secrets.py: `KEY=value` lines, `export` tolerated, matching quotes stripped.
    """
    wanted = set(names)
    found = {name: value for name in wanted if (value := os.environ.get(name))}
    for folder in folders:
        for env_file in (folder / ".env", folder / ".env.local"):
            for key, value in _env_file(env_file, wanted).items():
                found.setdefault(key, value)
    return found


def _env_file(path: Path, wanted: set[str]) -> dict[str, str]:
    """A `.env` file's wanted keys; one that is not a regular, singly linked file (a FIFO, a hard link,
    a symlink) is not read."""
    try:
        path = Path(os.path.realpath(path.parent)) / path.name
        if not safe_fs.is_regular(path):
            return {}
        lines = safe_fs.read_text(path, MAX_ENV_BYTES, path.name, errors="ignore").splitlines()
    except (OSError, UserError):
        return {}
    out = {}
    for line in lines:
        text = line.strip().removeprefix("export ").strip()
        if not text or text.startswith("#") or "=" not in text:
            continue
        key, value = (part.strip() for part in text.split("=", 1))
        if len(value) >= 2 and value[0] in "'\"" and value[-1] == value[0]:
            value = value[1:-1]
        if key in wanted and value:
            out[key] = value
    return out

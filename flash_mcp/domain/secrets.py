"""Is a secret available to a run? Checked by name only: values are never read out."""

from __future__ import annotations

import os
import re
from pathlib import Path


def secret_available(name: str, project: Path | None) -> bool:
    """Set in the environment, or declared in `.env`/`.env.local` beside the project or the working directory."""
    if os.environ.get(name):
        return True
    folders = [project, Path.cwd()] if project is not None else [Path.cwd()]
    pattern = re.compile(rf"^\s*(export\s+)?{re.escape(name)}\s*=\s*\S", re.MULTILINE)
    for folder in folders:
        for env_file in (folder / ".env", folder / ".env.local"):
            if env_file.is_file() and pattern.search(env_file.read_text(encoding="utf-8", errors="replace")):
                return True
    return False

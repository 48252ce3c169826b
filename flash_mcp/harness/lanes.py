"""How many lanes (child processes) an environment test splits its rows across."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from flash_mcp.core.errors import UserError
from flash_mcp.domain.project import safe_fs

PARALLEL_MIN_ROWS = 2000
MAX_LANES = 2


def lane_count(project: Path, params: dict[str, Any], limit: int | None) -> int:
    """Parallel lanes, one per core (MAX_LANES at most), only when the packaged dataset is big enough to repay a
    second load."""
    if (os.cpu_count() or 1) < 2 or (limit is not None and limit < PARALLEL_MIN_ROWS):
        return 1
    split = params.get("split") if isinstance(params.get("split"), str) else "train"
    candidate = params.get("dataset_path") or f"dataset/{split.strip() or 'train'}.jsonl"
    try:
        with safe_fs.open_binary(project / str(candidate), str(candidate)) as handle:
            lines = sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))
    except (OSError, UserError):
        return 1
    return min(MAX_LANES, os.cpu_count() or 1) if lines >= PARALLEL_MIN_ROWS else 1

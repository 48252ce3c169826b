"""Warm starts on the local plane: `train.init_from_adapter = "RUN/final"` or `"RUN/step-N"` names a
checkpoint of an earlier local run; the trainer loads that adapter, trainable, instead of a fresh LoRA."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from flash_mcp.core.errors import UserError
from flash_mcp.planes.base import Checkpoint


def warm_start_adapter(ref: str | None, checkpoints: Callable[[str], list[Checkpoint]]) -> Path | None:
    """The adapter folder `ref` names, or None without one; a UserError naming the checkpoints there are."""
    if not ref:
        return None
    run_id = ref.split("/", 1)[0]
    try:
        found = checkpoints(run_id)
    except UserError:
        raise UserError(
            f"train.init_from_adapter = {ref!r}: no local run {run_id!r}; list_runs shows the runs on this plane"
        ) from None
    match = next((c for c in found if c.id == ref), None)
    if match is None or not (Path(match.path) / "adapter_config.json").is_file():
        names = ", ".join(c.id for c in found) or "none yet"
        raise UserError(f"train.init_from_adapter = {ref!r} is not a saved checkpoint; {run_id} has: {names}")
    return Path(match.path)

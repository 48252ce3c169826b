"""What the local plane can do."""

from __future__ import annotations

from flash_mcp.planes.base import PlaneCapabilities

CAPABILITIES = PlaneCapabilities(
    name="local", open_world=False, bills=False, requires_project=False, serves_checkpoints=False,
    evaluates_base=True, quotes_hosted=False, watch_seconds=0.0, algorithms=frozenset({"sft", "grpo", "opd"}),
)  # fmt: skip

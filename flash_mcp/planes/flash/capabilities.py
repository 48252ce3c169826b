"""What the Flash plane can do."""

from __future__ import annotations

from flash_mcp.planes.base import PlaneCapabilities

CAPABILITIES = PlaneCapabilities(
    name="flash", open_world=True, bills=True, requires_project=True, serves_checkpoints=True,
    evaluates_base=False, quotes_hosted=True, watch_seconds=10.0, algorithms=frozenset({"sft", "grpo", "opd"}),
)  # fmt: skip

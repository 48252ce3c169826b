"""Cancel a run: the question a human confirms, and the cancel itself. Saved checkpoints survive."""

from __future__ import annotations

from flash_mcp.loop.runs import RunReport, run_report
from flash_mcp.planes.base import Plane


def cancel_question(plane: Plane, run_id: str) -> str:
    """Only facts that cannot change while the question is pending: a retried call must ask the same one."""
    view = plane.get_run(run_id)
    return f"Cancel {view.plane} {view.algorithm} run {run_id} ({view.model})?"


def cancel_run(plane: Plane, run_id: str) -> RunReport:
    return run_report(plane.cancel(run_id))

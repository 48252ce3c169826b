"""Read runs: pages of runs, one run with what to read next, logs, metrics, samples, checkpoints."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio.to_thread
from pydantic import BaseModel, Field

from flash_mcp.core.errors import UserError
from flash_mcp.core.human_settings import load_human_settings
from flash_mcp.core.visible import clip
from flash_mcp.domain.approval.ledger import LedgerEntry
from flash_mcp.domain.runs import health as run_health
from flash_mcp.domain.runs.noise import Trend
from flash_mcp.loop import waiting
from flash_mcp.loop.spend import Spend
from flash_mcp.planes.base import TERMINAL, Checkpoint, Plane, RunView

HACK = "reward hacking suspected"
POINTS_PER_METRIC = 100
SAMPLE_CHARS = 1500


class RunSummary(BaseModel):
    run_id: str
    state: str
    algorithm: str
    config: str | None = Field(default=None, description="The config the run was launched from")
    model: str
    step: int | None
    total_steps: int | None
    cost_usd: float | None
    created_at: float
    error: str | None = Field(default=None, description="Why it failed, or why its files cannot be read")


class RunPage(BaseModel):
    plane: str
    runs: list[RunSummary]
    total: int
    next_cursor: str | None = Field(description="Pass as cursor for the next page; null at the end")


class RunReport(RunView):
    warnings: list[str] = Field(
        default_factory=list, description="Warning signs, the same as the flash://runs/{run_id} summary's"
    )
    next: list[str] = Field(description="What to read next")
    account: str | None = Field(default=None, description="Who pays for this run on its plane")
    spend: LedgerEntry | None = Field(
        default=None, description="How the budgets count this approved run: approved amount, cost, overrun flag"
    )


class MetricsReport(BaseModel):
    plane: str
    run_id: str
    series: dict[str, list[tuple[int, float]]] = Field(
        description=f"[step, value] pairs per metric, thinned to at most {POINTS_PER_METRIC} points"
    )
    trends: list[Trend]


class SampleList(BaseModel):
    plane: str
    run_id: str
    total: int = Field(description="Samples recorded for the requested step(s)")
    samples: list[dict[str, Any]] = Field(description="prompt, completion, reward, reason, step, row_id; newest last")


class CheckpointList(BaseModel):
    plane: str
    run_id: str
    checkpoints: list[Checkpoint]


def run_report(view: RunView, spend: LedgerEntry | None = None, warnings: list[str] | None = None) -> RunReport:
    """The run as the plane sees it, plus the reads that make sense in its state."""
    next_reads = [f"get_run_metrics('{view.run_id}') for the loss/reward curve"]
    if view.state == "failed":
        next_reads.insert(0, f"read_run_logs('{view.run_id}') for why it failed")
    if view.state == "done":
        next_reads.append(f"list_checkpoints('{view.run_id}') for the adapters")
    if view.state not in TERMINAL:
        next_reads.append(f"get_run('{view.run_id}', wait_s=60) to wait for progress")
    if spend is not None and spend.overrun:
        next_reads.insert(0, "flash://spend: tell the human this run overran its approval")
    return RunReport(**view.model_dump(), warnings=warnings or [], next=next_reads, spend=spend)


def run_warnings(plane: Plane, home: Path, view: RunView) -> list[str]:
    """The run's warnings: the same function, on the same inputs, as the flash://runs/{run_id} summary."""
    rows = plane.metrics(view.run_id)
    evals = run_health.checkpoint_evals(home, view, rows)
    found = run_health.run_warnings(run_health.series(rows), evals, plane.samples(view.run_id, None))
    if any(w.startswith(HACK) for w in found) and load_human_settings(home).watch.cancel_on_hack:
        found.append(f"{HACK}: the run watch cancels such a run as it trains ([watch] cancel_on_hack = true)")
    return found


async def get_run(
    plane: Plane, spend: Spend, home: Path, run_id: str, wait_s: float = 0, until: waiting.RunUntil = "state"
) -> RunReport:
    """The run once it moved as asked (or at the deadline), with how the budgets count it and its warnings."""
    view = await waiting.wait_for_run(plane, run_id, wait_s, until)
    return await anyio.to_thread.run_sync(_report, plane, spend, home, view)


def _report(plane: Plane, spend: Spend, home: Path, view: RunView) -> RunReport:
    view, entry = spend.run(view)
    return run_report(view, entry, run_warnings(plane, home, view))


def list_runs(plane: Plane, state: str | None, limit: int, cursor: str | None) -> RunPage:
    offset = page_offset(cursor, "list_runs")
    runs, total = plane.list_runs(state, limit, offset)
    following = offset + len(runs)
    summaries = [RunSummary(**run.model_dump(include=set(RunSummary.model_fields))) for run in runs]
    return RunPage(
        plane=plane.name, runs=summaries, total=total, next_cursor=str(following) if following < total else None
    )


def metrics(plane: Plane, run_id: str, names: list[str] | None, since_step: int) -> MetricsReport:
    rows = [row for row in plane.metrics(run_id) if row.get("step", 0) >= since_step]
    found = {k: v for k, v in run_health.series(rows).items() if names is None or k in names}
    return MetricsReport(
        plane=plane.name,
        run_id=run_id,
        series={k: run_health.thin(v, POINTS_PER_METRIC) for k, v in found.items()},
        trends=[run_health.trend(k, [value for _, value in v]) for k, v in found.items()],
    )


def samples(plane: Plane, run_id: str, step: int | None, limit: int) -> SampleList:
    rows = plane.samples(run_id, step)
    return SampleList(plane=plane.name, run_id=run_id, total=len(rows), samples=[_clip(r) for r in rows[-limit:]])


def checkpoints(plane: Plane, run_id: str) -> CheckpointList:
    return CheckpointList(plane=plane.name, run_id=run_id, checkpoints=plane.checkpoints(run_id))


def cancel_question(plane: Plane, run_id: str) -> str:
    """Only facts that cannot change while the question is pending: a retried call must ask the same one."""
    view = plane.get_run(run_id)
    return f"Cancel {view.plane} {view.algorithm} run {run_id} ({view.model})?"


def cancel_run(plane: Plane, run_id: str) -> RunReport:
    """Cancel the run; saved checkpoints survive."""
    return run_report(plane.cancel(run_id))


def page_offset(cursor: str | None, listed_by: str) -> int:
    """Where the page `cursor` (a `next_cursor` that `listed_by` returned) starts; a foreign cursor is refused."""
    if cursor is None:
        return 0
    if not cursor.isdigit():
        raise UserError(f"cursor {cursor!r} is not one {listed_by} returned; omit it to start over")
    return int(cursor)


def _clip(sample: dict[str, Any]) -> dict[str, Any]:
    return {k: clip(v, SAMPLE_CHARS) if isinstance(v, str) else v for k, v in sample.items()}

"""Runs as pages to read: the run list, a health summary, log windows, metrics CSV, samples, chart, spec.

The MCP surface serves these as `flash://runs/...` resources; the texts name those URIs as next reads.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from flash_mcp.core.errors import UserError
from flash_mcp.core.visible import clip, visible_whitespace
from flash_mcp.domain.runs import health as run_health
from flash_mcp.loop.spend import SPEND_URI, Spend, run_line
from flash_mcp.planes.base import Plane

RUNS = "flash://runs"
LOG_PAGE = 16_384
SAMPLE_LIMIT = 20
RECENT_RUNS = 50


def run_uri(run_id: str, part: str = "") -> str:
    return f"{RUNS}/{run_id}" + (f"/{part}" if part else "")


def runs_page(plane: Plane) -> str:
    views, total = plane.list_runs(None, RECENT_RUNS, 0)
    if not views:
        return "No runs yet. launch_training starts one.\n"
    lines = [f"{total} run(s); newest first" + (f", showing {RECENT_RUNS}" if total > RECENT_RUNS else "")]
    for v in views:
        cost = "-" if v.cost_usd is None else f"${v.cost_usd:.2f}"
        step = f" step {v.step}/{v.total_steps}" if v.step is not None else ""
        age = run_health.age(v.created_at)
        lines.append(f"{v.run_id} {v.plane} {v.state}{step} {v.algorithm} {v.model} {cost} {age} ago")
    return "\n".join(lines) + "\n"


def summary_page(plane: Plane, run_id: str, home: Path, spend: Spend | None = None) -> str:
    """The health summary; with `spend`, the run is reconciled first and its ledger line closes the page."""
    view, entry = spend.run(plane.get_run(run_id)) if spend else (plane.get_run(run_id), None)
    rows = plane.metrics(run_id)
    evals = run_health.checkpoint_evals(home, view, rows)
    text = run_health.summary_markdown(view, rows, run_uri(run_id), evals, plane.samples(run_id, None))
    return text + (f"\n## Spend\n{run_line(entry)} ({SPEND_URI})\n" if entry is not None else "")


def log_page(plane: Plane, run_id: str, offset: str | None) -> str:
    """The window at `offset`, or the last window when `offset` is None."""
    size = plane.read_logs(run_id, 0, 0).size
    start = max(0, size - LOG_PAGE) if offset is None else _offset(offset, size)
    window = plane.read_logs(run_id, start, LOG_PAGE)
    end = window.next_offset
    hint = f"read the next part at {run_uri(run_id, 'logs')}?offset={end}" if window.more else "end of log so far"
    return f"# bytes {start}-{end} of {window.size}; {hint}\n{window.text}"


def metrics_csv(plane: Plane, run_id: str) -> str:
    return run_health.metrics_csv(plane.metrics(run_id))


def samples_page(plane: Plane, run_id: str, step: str | None) -> str:
    wanted = None if step is None else _offset(step, None)
    rows = plane.samples(run_id, wanted)
    shown = rows[-SAMPLE_LIMIT:]
    head = f"{len(rows)} sample(s)" + (f" at step {wanted}" if wanted is not None else "")
    if len(rows) > len(shown):
        head += f"; the last {len(shown)} shown (pick a step with {run_uri(run_id, 'samples')}?step=N)"
    blocks = [head]
    for row in shown:
        completion = row.get("completion") or ""
        blocks.append(
            f"## step {row.get('step')} · {row.get('row_id')} · reward {row.get('reward')}"
            f"{' · ' + str(row['reason']) if row.get('reason') else ''}\n"
            f"prompt: {_clip(row.get('prompt'))}\ncompletion: {_clip(visible_whitespace(str(completion)))}"
        )
    return "\n\n".join(blocks) + "\n"


def chart_png(plane: Plane, run_id: str, home: Path) -> bytes:
    view, rows = plane.get_run(run_id), plane.metrics(run_id)
    evals = run_health.checkpoint_evals(home, view, rows)
    return run_health.chart_png(rows, f"{run_id} · {view.algorithm} · {view.state}", evals)


def spec_json(plane: Plane, run_id: str) -> str:
    return json.dumps(plane.spec(run_id), indent=1)


def _offset(value: str, size: int | None) -> int:
    if not value.isdigit():
        raise UserError(f"{value!r} is not a whole number")
    number = int(value)
    if size is not None and number > size:
        raise UserError(f"offset {number} is past the end of the log ({size} bytes)")
    return number


def _clip(value: Any, limit: int = 1200) -> str:
    return clip("" if value is None else str(value), limit, count=True)

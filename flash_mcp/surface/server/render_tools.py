"""Text for the results an agent reads most: metric series as one table, and a polled run without the fields
it already reported. Everything else goes through the generic renderer in `render.py`."""

from __future__ import annotations

import json
from typing import Any

from flash_mcp.surface.server.render import render, renders, table

_ALWAYS_SHOWN = frozenset({"run_id", "state", "step", "total_steps"})


@renders("get_run_metrics")
def metrics_text(content: dict[str, Any], said: set[str]) -> str:
    """`series` ({name: [[step, value], ...]}) as one `step | name | ...` table, one row per step."""
    series = content.get("series")
    if not isinstance(series, dict) or not all(_points(points) for points in series.values()):
        return render(content)
    by_step: dict[Any, dict[str, Any]] = {}
    for name, points in series.items():
        for step, value, *_ in points:
            by_step.setdefault(step, {"step": step})[name] = value
    rows = [by_step[step] for step in sorted(by_step, key=lambda s: (isinstance(s, str), s))]
    rows = [{key: _four_digits(value) for key, value in row.items()} for row in rows]
    head = render({key: value for key, value in content.items() if key != "series"})
    lines = table(rows, ["step", *series]) if rows else ["(no points yet)"]
    return f"{head}\nseries ({len(rows)} steps):\n" + "\n".join(f"  {line}" for line in lines)


@renders("get_run")
@renders("cancel_run")
def run_text(content: dict[str, Any], said: set[str]) -> str:
    """A run; fields this session was already told for this run, with the same value, are listed, not repeated."""
    run_id = content.get("run_id")
    if not run_id:
        return render(content)
    shown: dict[str, Any] = {}
    unchanged: list[str] = []  # fields already told for this run, with the same value
    for key, value in content.items():
        cause = _run_cause(run_id, key, value)
        if key in _ALWAYS_SHOWN or cause not in said:
            said.add(cause)
            shown[key] = value
        elif value not in (None, "", [], {}):
            unchanged.append(key)
    text = render(shown)
    return text + (f"\n(+{len(unchanged)} fields as last reported)" if unchanged else "")


@renders("launch_training")
def launch_text(content: dict[str, Any], said: set[str]) -> str:
    """A launch; the run it started counts as reported, so the first get_run says only what changed."""
    run = content.get("run")
    if isinstance(run, dict) and run.get("run_id"):
        for key, value in run.items():
            said.add(_run_cause(run["run_id"], key, value))
    return render(content)


def _run_cause(run_id: str, key: str, value: Any) -> str:
    return f"run:{run_id}:{key}={json.dumps(value, sort_keys=True, default=str)}"


def _four_digits(value: Any) -> Any:
    """Curves are read for their shape: 4 significant digits (the metrics CSV resource keeps every digit)."""
    return float(f"{value:.4g}") if isinstance(value, float) else value


def _points(points: Any) -> bool:
    return isinstance(points, list) and all(
        isinstance(point, list) and len(point) >= 2 and not isinstance(point[1], dict | list) for point in points
    )

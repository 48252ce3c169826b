"""Run outputs as resources: the run list, each run's summary, logs, metrics, samples, chart and spec.

`run_watch.py` tells subscribers when they change and completes run ids.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError

from flash_mcp.loop import run_pages
from flash_mcp.loop.run_pages import RUNS
from flash_mcp.loop.spend import Spend
from flash_mcp.planes.base import Plane
from flash_mcp.surface.server.registry import translate_errors


def register(server: MCPServer, plane: Callable[[], Plane], spend: Callable[[], Spend], home: Path) -> None:
    """Add the run resources."""
    for uri, read, name, mime in _resources(plane, spend, home):
        server.resource(uri, name=name, description=read.__doc__, mime_type=mime)(translate_errors(read, ResourceError))


def _resources(
    plane: Callable[[], Plane], spend: Callable[[], Spend], home: Path
) -> list[tuple[str, Callable[..., Any], str, str]]:
    def runs() -> str:
        """Recent runs, one line each: id, plane, state, algorithm, model, cost, age."""
        return run_pages.runs_page(plane())

    def summary(run_id: str) -> str:
        """Is the run healthy, what it costs against its approval, and what to read next."""
        return run_pages.summary_page(plane(), run_id, home, spend())

    def logs(run_id: str, offset: str | None = None) -> str:
        """A window of the log by byte offset (default: the last window)."""
        return run_pages.log_page(plane(), run_id, offset)

    def metrics(run_id: str) -> str:
        """Every metric the run recorded, one row per step, as CSV."""
        return run_pages.metrics_csv(plane(), run_id)

    def samples(run_id: str, step: str | None = None) -> str:
        """Sampled rollouts: prompt, completion, reward and reason."""
        return run_pages.samples_page(plane(), run_id, step)

    def chart(run_id: str) -> bytes:
        """Reward, loss and KL against step with a smoothed line and noise band; held-out evaluations marked."""
        return run_pages.chart_png(plane(), run_id, home)

    def spec(run_id: str) -> str:
        """The resolved spec the run trained with."""
        return run_pages.spec_json(plane(), run_id)

    return [
        (RUNS, runs, "runs", "text/plain"),
        (RUNS + "/{run_id}", summary, "run", "text/markdown"),
        (RUNS + "/{run_id}/logs{?offset}", logs, "run-logs", "text/plain"),
        (RUNS + "/{run_id}/metrics", metrics, "run-metrics", "text/csv"),
        (RUNS + "/{run_id}/samples{?step}", samples, "run-samples", "text/markdown"),
        (RUNS + "/{run_id}/chart.png", chart, "run-chart", "image/png"),
        (RUNS + "/{run_id}/spec", spec, "run-spec", "application/json"),
    ]

"""Run outputs as resources, completion of run ids, and update notifications in both protocol eras.

Modern (2026-07-28) clients subscribe with `subscriptions/listen` and are told through the SDK's
subscription bus; legacy clients subscribe with `resources/subscribe`, which MCPServer does not
serve, so the low-level handlers here keep their sessions and notify them directly.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError
from mcp.shared.subscriptions import ResourceUpdated
from mcp.types import (
    Completion,
    EmptyResult,
    PromptReference,
    ResourceTemplateReference,
    SubscribeRequestParams,
    UnsubscribeRequestParams,
)

from flash_mcp.core.errors import UserError
from flash_mcp.loop import run_pages
from flash_mcp.loop.run_pages import RECENT_RUNS, RUNS, run_uri
from flash_mcp.loop.spend import SPEND_URI, Spend
from flash_mcp.planes.base import Plane
from flash_mcp.surface.registry import translate_errors

log = logging.getLogger(__name__)
WATCH_SECONDS = 1.0
UNREACHABLE_RETRY_SECONDS = 30.0
COMPLETION_LIMIT = 100


def register(server: MCPServer, plane: Callable[[], Plane], spend: Callable[[], Spend], home: Path) -> RunWatcher:
    """Add the run resources and completion; return the watcher the server's lifespan runs."""
    for uri, read, name, mime in _resources(plane, spend, home):
        server.resource(uri, name=name, description=read.__doc__, mime_type=mime)(translate_errors(read, ResourceError))

    @server.completion()
    async def complete(ref: Any, argument: Any, context: Any) -> Completion | None:
        if argument.name != "run_id" or not isinstance(ref, (ResourceTemplateReference, PromptReference)):
            return None
        ids = await anyio.to_thread.run_sync(lambda: _run_ids(plane(), argument.value))
        return Completion(values=ids[:COMPLETION_LIMIT], total=len(ids), has_more=len(ids) > COMPLETION_LIMIT)

    watcher = RunWatcher(server, plane, spend)
    lowlevel = server._lowlevel_server  # legacy subscriptions need the low-level handlers
    lowlevel.add_request_handler("resources/subscribe", SubscribeRequestParams, watcher.subscribe)
    lowlevel.add_request_handler("resources/unsubscribe", UnsubscribeRequestParams, watcher.unsubscribe)
    return watcher


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


class RunWatcher:
    """Notices runs that changed state or recorded metrics, and tells subscribed clients."""

    def __init__(self, server: MCPServer, plane: Callable[[], Plane], spend: Callable[[], Spend],
                 interval: float = WATCH_SECONDS):  # fmt: skip
        self.server, self.plane, self.spend, self.interval = server, plane, spend, interval
        self.legacy: defaultdict[str, set[Any]] = defaultdict(set)
        self.seen: dict[str, tuple] | None = None

    async def subscribe(self, ctx: Any, params: SubscribeRequestParams) -> EmptyResult:
        self.legacy[str(params.uri)].add(ctx.session)
        return EmptyResult()

    async def unsubscribe(self, ctx: Any, params: UnsubscribeRequestParams) -> EmptyResult:
        self.legacy[str(params.uri)].discard(ctx.session)
        return EmptyResult()

    async def run(self) -> None:
        interval = self.interval
        while True:
            await anyio.sleep(interval)
            await self.tick()
            interval = self._interval()

    def _interval(self) -> float:
        """A remote plane sets its own pace (`watch_seconds`): every tick lists its runs."""
        try:
            return max(self.interval, getattr(self.plane(), "watch_seconds", self.interval))
        except UserError:
            return max(self.interval, UNREACHABLE_RETRY_SECONDS)

    async def tick(self) -> None:
        try:
            changed, costed = await anyio.to_thread.run_sync(self._changed_runs)
        except UserError:
            return
        for run_id in dict.fromkeys([*changed, *costed]):
            for part in ("", "metrics", "samples", "chart.png", "logs"):
                await self.publish(run_uri(run_id, part))
        if changed or costed:
            await self.publish(RUNS)
        if costed:
            await self.publish(SPEND_URI)

    def _changed_runs(self) -> tuple[list[str], list[str]]:
        """Runs whose state or metrics changed, and runs whose ledger changed (settled, overran, cancelled)."""
        views, _ = self.plane().list_runs(None, RECENT_RUNS, 0)
        try:
            costed = self.spend().reconcile(views)
        except Exception:  # the ledger must never stop the watcher that notifies subscribers
            log.exception("reconciling spend failed; retrying on the next tick")
            costed = []
        now = {v.run_id: (v.state, v.stage, v.step, tuple(sorted(v.latest_metrics.items()))) for v in views}
        before, self.seen = self.seen, now
        if before is None:
            return [], costed
        return [run_id for run_id, print_ in now.items() if before.get(run_id) != print_], costed

    async def publish(self, uri: str) -> None:
        await self.server._subscriptions.publish(ResourceUpdated(uri=uri))
        for session in list(self.legacy.get(uri, ())):
            try:
                await session.send_resource_updated(uri)
            except (anyio.ClosedResourceError, anyio.BrokenResourceError, RuntimeError):
                self.legacy[uri].discard(session)
                log.debug("dropped a closed subscriber of %s", uri)


def _run_ids(plane: Plane, prefix: str) -> list[str]:
    return plane.run_ids(prefix or "", COMPLETION_LIMIT + 1)

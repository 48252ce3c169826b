"""Run outputs as resources, completion of run ids, and update notifications in both protocol eras.

Modern (2026-07-28) clients subscribe with `subscriptions/listen` and are told through the SDK's
subscription bus; legacy clients subscribe with `resources/subscribe`, which MCPServer does not
serve, so the low-level handlers here keep their sessions and notify them directly.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Callable
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
from flash_mcp.domain.runs import health as run_health
from flash_mcp.planes.base import Plane
from flash_mcp.surface.registry import translate_errors

log = logging.getLogger(__name__)
RUNS = "flash://runs"
LOG_PAGE = 16_384
SAMPLE_LIMIT = 20
RECENT_RUNS = 50
WATCH_SECONDS = 1.0
UNREACHABLE_RETRY_SECONDS = 30.0
COMPLETION_LIMIT = 100


def run_uri(run_id: str, part: str = "") -> str:
    return f"{RUNS}/{run_id}" + (f"/{part}" if part else "")


def register(server: MCPServer, plane: Callable[[], Plane]) -> RunWatcher:
    """Add the run resources and completion; return the watcher the server's lifespan runs."""

    def runs() -> str:
        """Recent runs, one line each: id, plane, state, algorithm, model, cost, age."""
        views, total = plane().list_runs(None, RECENT_RUNS, 0)
        if not views:
            return "No runs yet. launch_training starts one.\n"
        lines = [f"{total} run(s); newest first" + (f", showing {RECENT_RUNS}" if total > RECENT_RUNS else "")]
        for v in views:
            cost = "-" if v.cost_usd is None else f"${v.cost_usd:.2f}"
            step = f" step {v.step}/{v.total_steps}" if v.step is not None else ""
            age = run_health.age(v.created_at)
            lines.append(f"{v.run_id} {v.plane} {v.state}{step} {v.algorithm} {v.model} {cost} {age} ago")
        return "\n".join(lines) + "\n"

    def summary(run_id: str) -> str:
        """Is the run healthy, and what to read next."""
        view = plane().get_run(run_id)
        return run_health.summary_markdown(view, plane().metrics(run_id), run_uri(run_id))

    def logs(run_id: str, offset: str | None = None) -> str:
        """A window of the log by byte offset (default: the last window)."""
        size = plane().read_logs(run_id, 0, 0).size
        start = max(0, size - LOG_PAGE) if offset is None else _offset(offset, size)
        window = plane().read_logs(run_id, start, LOG_PAGE)
        end = window.next_offset
        hint = f"read the next part at {run_uri(run_id, 'logs')}?offset={end}" if window.more else "end of log so far"
        return f"# bytes {start}-{end} of {window.size}; {hint}\n{window.text}"

    def metrics(run_id: str) -> str:
        """Every metric the run recorded, one row per step, as CSV."""
        return run_health.metrics_csv(plane().metrics(run_id))

    def samples(run_id: str, step: str | None = None) -> str:
        """Sampled rollouts: prompt, completion, reward and reason."""
        wanted = None if step is None else _offset(step, None)
        rows = plane().samples(run_id, wanted)
        shown = rows[-SAMPLE_LIMIT:]
        head = f"{len(rows)} sample(s)" + (f" at step {wanted}" if wanted is not None else "")
        if len(rows) > len(shown):
            head += f"; the last {len(shown)} shown (pick a step with {run_uri(run_id, 'samples')}?step=N)"
        blocks = [head]
        for row in shown:
            blocks.append(
                f"## step {row.get('step')} · {row.get('row_id')} · reward {row.get('reward')}"
                f"{' · ' + str(row['reason']) if row.get('reason') else ''}\n"
                f"prompt: {_clip(row.get('prompt'))}\ncompletion: {_clip(row.get('completion'))}"
            )
        return "\n\n".join(blocks) + "\n"

    def chart(run_id: str) -> bytes:
        """Reward, loss and KL against step, as a PNG."""
        view = plane().get_run(run_id)
        return run_health.chart_png(plane().metrics(run_id), f"{run_id} · {view.algorithm} · {view.state}")

    def spec(run_id: str) -> str:
        """The resolved spec the run trained with."""
        return json.dumps(plane().spec(run_id), indent=1)

    for uri, read, name, mime in (
        (RUNS, runs, "runs", "text/plain"),
        (RUNS + "/{run_id}", summary, "run", "text/markdown"),
        (RUNS + "/{run_id}/logs{?offset}", logs, "run-logs", "text/plain"),
        (RUNS + "/{run_id}/metrics", metrics, "run-metrics", "text/csv"),
        (RUNS + "/{run_id}/samples{?step}", samples, "run-samples", "text/markdown"),
        (RUNS + "/{run_id}/chart.png", chart, "run-chart", "image/png"),
        (RUNS + "/{run_id}/spec", spec, "run-spec", "application/json"),
    ):
        server.resource(uri, name=name, description=read.__doc__, mime_type=mime)(translate_errors(read, ResourceError))

    @server.completion()
    async def complete(ref: Any, argument: Any, context: Any) -> Completion | None:
        if argument.name != "run_id" or not isinstance(ref, (ResourceTemplateReference, PromptReference)):
            return None
        ids = await anyio.to_thread.run_sync(lambda: _run_ids(plane(), argument.value))
        return Completion(values=ids[:COMPLETION_LIMIT], total=len(ids), has_more=len(ids) > COMPLETION_LIMIT)

    watcher = RunWatcher(server, plane)
    lowlevel = server._lowlevel_server  # legacy subscriptions need the low-level handlers
    lowlevel.add_request_handler("resources/subscribe", SubscribeRequestParams, watcher.subscribe)
    lowlevel.add_request_handler("resources/unsubscribe", UnsubscribeRequestParams, watcher.unsubscribe)
    return watcher


class RunWatcher:
    """Notices runs that changed state or recorded metrics, and tells subscribed clients."""

    def __init__(self, server: MCPServer, plane: Callable[[], Plane], interval: float = WATCH_SECONDS):
        self.server, self.plane, self.interval = server, plane, interval
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
            changed = await anyio.to_thread.run_sync(self._changed_runs)
        except UserError:
            return
        for run_id in changed:
            for part in ("", "metrics", "samples", "chart.png", "logs"):
                await self.publish(run_uri(run_id, part))
        if changed:
            await self.publish(RUNS)

    def _changed_runs(self) -> list[str]:
        views, _ = self.plane().list_runs(None, RECENT_RUNS, 0)
        now = {v.run_id: (v.state, v.stage, v.step, tuple(sorted(v.latest_metrics.items()))) for v in views}
        before, self.seen = self.seen, now
        if before is None:
            return []
        return [run_id for run_id, print_ in now.items() if before.get(run_id) != print_]

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


def _offset(value: str, size: int | None) -> int:
    if not value.isdigit():
        raise UserError(f"{value!r} is not a whole number")
    number = int(value)
    if size is not None and number > size:
        raise UserError(f"offset {number} is past the end of the log ({size} bytes)")
    return number


def _clip(value: Any, limit: int = 1200) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= limit else text[:limit] + f"… ({len(text)} chars)"

"""Run ids completed, and clients told when a run changes, in both protocol eras.

Modern (2026-07-28) clients subscribe with `subscriptions/listen` and are told through the SDK's
subscription bus; legacy clients subscribe with `resources/subscribe`, which MCPServer does not
serve, so the low-level handlers here keep their sessions and notify them directly. These handlers
are registered when the server is built (they decide its capabilities); what they read is imported
on first use, so a start stays light.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread
from mcp.server import MCPServer
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

if TYPE_CHECKING:
    from flash_mcp.loop.hack_watch import HackWatch
    from flash_mcp.loop.spend import Spend
    from flash_mcp.planes.base import Plane

log = logging.getLogger(__name__)
WATCH_SECONDS = 1.0
UNREACHABLE_RETRY_SECONDS = 30.0
COMPLETION_LIMIT = 100


def register(
    server: MCPServer, plane: Callable[[], Plane], spend: Callable[[], Spend], interval: float = WATCH_SECONDS
) -> RunWatcher:
    """Add run-id completion and legacy subscriptions; return the watcher the server's lifespan runs."""

    @server.completion()
    async def complete(ref: Any, argument: Any, context: Any) -> Completion | None:
        if argument.name != "run_id" or not isinstance(ref, (ResourceTemplateReference, PromptReference)):
            return None
        ids = await anyio.to_thread.run_sync(lambda: _run_ids(plane(), argument.value))
        return Completion(values=ids[:COMPLETION_LIMIT], total=len(ids), has_more=len(ids) > COMPLETION_LIMIT)

    watcher = RunWatcher(server, plane, spend, interval)
    lowlevel = server._lowlevel_server  # legacy subscriptions need the low-level handlers
    lowlevel.add_request_handler("resources/subscribe", SubscribeRequestParams, watcher.subscribe)
    lowlevel.add_request_handler("resources/unsubscribe", UnsubscribeRequestParams, watcher.unsubscribe)
    return watcher


class RunWatcher:
    """Notices runs that changed state or recorded metrics, and tells subscribed clients."""

    def __init__(self, server: MCPServer, plane: Callable[[], Plane], spend: Callable[[], Spend],
                 interval: float = WATCH_SECONDS):  # fmt: skip
        self.server, self.plane, self.spend, self.interval = server, plane, spend, interval
        self.legacy: defaultdict[str, set[Any]] = defaultdict(set)
        self.seen: dict[str, tuple] | None = None
        self.hacks: HackWatch | None = None

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
            return max(self.interval, self.plane().capabilities.watch_seconds)
        except UserError:
            return max(self.interval, UNREACHABLE_RETRY_SECONDS)

    async def tick(self) -> None:
        from flash_mcp.loop.run_pages import RUNS, run_uri
        from flash_mcp.loop.spend import SPEND_URI

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
        from flash_mcp.loop import notify
        from flash_mcp.loop.run_pages import RECENT_RUNS

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
        changed = [run_id for run_id, print_ in now.items() if before.get(run_id) != print_]
        notify.runs_ended(self.spend().home, {run_id: print_[0] for run_id, print_ in before.items()}, views)
        return changed + [r for r in self._hacks().check(self.plane(), views, set(changed)) if r not in changed], costed

    def _hacks(self) -> HackWatch:
        """The reward-hacking check on running runs' rollouts (`loop/hack_watch.py`), made on first use."""
        if self.hacks is None:
            from flash_mcp.loop.hack_watch import HackWatch

            self.hacks = HackWatch(self.spend().home)
        return self.hacks

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

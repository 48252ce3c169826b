"""The run watch's reward-hacking check: a running run's rollouts read as they arrive (the plane's samples),
flagged once when `domain/runs/hacking.py` suspects a hack, and cancelled when the human set
`[watch] cancel_on_hack = true` (checkpoints kept). The flag itself is what get_run and the run resource say."""

from __future__ import annotations

import logging
from pathlib import Path

from flash_mcp.core.errors import UserError
from flash_mcp.core.human_settings import load_human_settings
from flash_mcp.domain.approval.store import ApprovalStore
from flash_mcp.domain.runs.hacking import suspect
from flash_mcp.loop import notify
from flash_mcp.planes.base import TERMINAL, Plane, RunView

log = logging.getLogger(__name__)


class HackWatch:
    """Remembers which runs it flagged, so each is flagged (and cancelled) once."""

    def __init__(self, home: Path):
        self.home, self.flagged = home, set()

    def check(self, plane: Plane, views: list[RunView], changed: set[str]) -> list[str]:
        """Runs newly suspected among the running ones whose state or step changed."""
        found = []
        for view in views:
            if view.state in TERMINAL or view.run_id in self.flagged or view.run_id not in changed:
                continue
            hack = suspect(plane.samples(view.run_id, None))
            if hack is None:
                continue
            self.flagged.add(view.run_id)
            found.append(view.run_id)
            title = f"Reward hacking suspected in {view.run_id}"
            notify.tell(self.home, f"hack:{view.run_id}", "hack-suspected", title, hack.text()[:1500])
            if load_human_settings(self.home).watch.cancel_on_hack:
                self._cancel(plane, view, hack.text())
        return found

    def _cancel(self, plane: Plane, view: RunView, reason: str) -> None:
        try:
            cancelled = plane.cancel(view.run_id)
        except UserError as exc:
            log.warning("the hack watch could not cancel %s: %s", view.run_id, exc)
            return
        ApprovalStore(self.home).audit("cancel", run_id=view.run_id, plane=view.plane, how="hack watch",
                                       state=cancelled.state, reason=reason[:500],
                                       client={"name": "flash-mcp hack watch"})  # fmt: skip

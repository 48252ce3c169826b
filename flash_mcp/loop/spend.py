"""Spend as the plane charges it: reconcile approved runs, watch for overruns, show what is left.

Called from the server's watcher loop (every tick), from get_run and the run summary, before every
budget decision, and by `flash-mcp spend`. The human's settings.toml decides `overrun_pct` and
`cancel_on_overrun`; nothing here changes them.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

from pydantic import BaseModel, Field

from flash_mcp.core.errors import UserError
from flash_mcp.core.human_settings import BudgetSettings, load_human_settings
from flash_mcp.domain.approval.ledger import Ledger, LedgerEntry, over_pct, overran
from flash_mcp.domain.approval.store import ApprovalStore
from flash_mcp.loop import notify
from flash_mcp.planes.base import TERMINAL, Plane, RunView

log = logging.getLogger(__name__)
SPEND_URI = "flash://spend"


class BudgetLeft(BaseModel):
    period: str = Field(description="The local date or month")
    spent_usd: float = Field(description="Reconciled spend of runs submitted in the period")
    limit_usd: float
    setting: str = Field(description="The settings.toml [budget] key that sets the limit")
    left_usd: float = Field(description="limit - spent; negative when over")


class SpendReport(BaseModel):
    today: BudgetLeft
    month: BudgetLeft
    overrun_pct: float = Field(description="A run is flagged when its cost passes its approval by more than this")
    cancel_on_overrun: bool = Field(description="Whether the server cancels a flagged run (checkpoints kept)")
    runs: list[LedgerEntry] = Field(description="This month's approved runs, newest first")


class Spend:
    """The spend use cases over one plane and FLASH_MCP_HOME."""

    def __init__(self, home: Path, plane: Plane):
        self.home, self.plane = home, plane
        self.store = ApprovalStore(home)
        self.ledger = Ledger(self.store)

    def budget(self) -> BudgetSettings:
        return load_human_settings(self.home).budget

    def reconcile(self, views: list[RunView] | None = None) -> list[str]:
        """Bring every unsettled approved run on this plane up to date; return the runs whose ledger changed.

        `views` are runs the caller already listed; the others are read one by one.
        """
        known = {view.run_id: view for view in views or []}
        changed = []
        for run_id, approved in self.ledger.unsettled(self.plane.name).items():
            view = known.get(run_id)
            if view is None:
                try:
                    view = self.plane.get_run(run_id)
                except UserError as exc:
                    log.info("cannot reconcile %s now: %s", run_id, exc)
                    continue
            if self._apply(view, approved):
                changed.append(run_id)
        return changed

    def run(self, view: RunView) -> tuple[RunView, LedgerEntry | None]:
        """get_run's path: reconcile this one run; a run the overrun watch cancelled is read again."""
        approved = self.ledger.unsettled(self.plane.name).get(view.run_id)
        if approved is not None:
            self._apply(view, approved)
            entry = self.ledger.entry(view.run_id)
            if entry is not None and entry.cancelled_for_overrun and view.state not in TERMINAL:
                view = self.plane.get_run(view.run_id)
                self._apply(view, approved)
        entry = self.ledger.entry(view.run_id)
        if entry is not None:
            view = view.model_copy(update={"notes": [*view.notes, *notes(entry, self.budget())]})
        return view, entry

    def report(self, *, reconcile: bool = True) -> SpendReport:
        if reconcile:
            self.reconcile()
        budget, today = self.budget(), dt.date.today()
        day_spent, month_spent = self.store.spent()
        return SpendReport(
            today=_left(today.isoformat(), day_spent, budget.daily_usd, "daily_usd"),
            month=_left(today.strftime("%Y-%m"), month_spent, budget.monthly_usd, "monthly_usd"),
            overrun_pct=budget.overrun_pct,
            cancel_on_overrun=budget.cancel_on_overrun,
            runs=self.ledger.month(today),
        )

    def _apply(self, view: RunView, approved: float) -> bool:
        settled = view.state in TERMINAL
        cost = (view.cost_usd or 0.0) if settled else view.estimated_cost_usd
        changed = self.ledger.observe(view.run_id, view.state, cost, settled=settled)
        if changed:
            self.store.audit("settle", run_id=view.run_id, plane=view.plane, state=view.state, quote_usd=approved,
                             cost_usd=cost, difference_usd=round((cost or 0.0) - approved, 2))  # fmt: skip
        budget = self.budget()
        if cost is None or not overran(approved, cost, budget.overrun_pct):
            return changed
        if self.ledger.claim_overrun(view.run_id, cost):
            self.store.audit("overrun", run_id=view.run_id, plane=view.plane, state=view.state, settled=settled,
                             approved_usd=approved, cost_usd=cost, over_pct=over_pct(approved, cost),
                             overrun_pct=budget.overrun_pct, cancel_on_overrun=budget.cancel_on_overrun)  # fmt: skip
            told = f"${cost:.2f} against the approved ${approved:.2f} (more than {budget.overrun_pct:g}% over)"
            notify.tell(self.home, f"overrun:{view.run_id}", "overrun", f"Run {view.run_id} is over its approval", told)
            changed = True
        if budget.cancel_on_overrun and not settled and self._cancel(view, approved, cost):
            changed = True
        return changed

    def _cancel(self, view: RunView, approved: float, cost: float) -> bool:
        if not self.ledger.claim_cancel(view.run_id):
            return False
        try:
            cancelled = self.plane.cancel(view.run_id)
        except UserError as exc:
            self.ledger.release_cancel(view.run_id)
            log.warning("the overrun watch could not cancel %s: %s", view.run_id, exc)
            return False
        self.store.audit("cancel", run_id=view.run_id, plane=view.plane, how="overrun watch", state=cancelled.state,
                         reason=f"cost ${cost:.2f} passed the approved ${approved:.2f} by more than overrun_pct",
                         client={"name": "flash-mcp overrun watch"})  # fmt: skip
        return True


def notes(entry: LedgerEntry, budget: BudgetSettings) -> list[str]:
    """What the agent must not miss about a run's spend."""
    found = []
    if entry.overrun and entry.cost_usd is not None:
        found.append(
            f"OVERRUN: {'settled' if entry.settled else 'running'} cost ${entry.cost_usd:.2f} is more than "
            f"{budget.overrun_pct:g}% over the approved ${entry.approved_usd:.2f}; tell the human"
        )
    if entry.cancelled_for_overrun:
        found.append(
            "the server cancelled this run because it overran its approval ([budget] cancel_on_overrun = true); "
            "checkpoints saved so far are kept"
        )
    return found


def render(report: SpendReport) -> str:
    """Compact text for the flash://spend resource and `flash-mcp spend`."""
    lines = [_budget_line("today", report.today), _budget_line("this month", report.month),
             f"overrun watch: flag a run over its approval by more than {report.overrun_pct:g}%; "
             f"cancel_on_overrun {'true' if report.cancel_on_overrun else 'false'}"]  # fmt: skip
    if not report.runs:
        return "\n".join([*lines, "no approved runs this month"]) + "\n"
    lines.append("run | plane | state | approved | cost | diff | flags")
    lines += [run_line(entry) for entry in report.runs]
    return "\n".join(lines) + "\n"


def run_line(e: LedgerEntry) -> str:
    """One approved run: `run | plane | state | approved | cost | diff | flags`."""
    cost = "-" if e.cost_usd is None else f"${e.cost_usd:.2f} {'settled' if e.settled else 'running'}"
    diff = "-" if e.difference_usd is None else f"{e.difference_usd:+.2f}"
    flags = ",".join(f for f, on in (("OVERRUN", e.overrun), ("cancelled", e.cancelled_for_overrun)) if on)
    return f"{e.run_id} | {e.plane} | {e.state or '-'} | ${e.approved_usd:.2f} | {cost} | {diff} | {flags or '-'}"


def _left(period: str, spent: float, limit: float, setting: str) -> BudgetLeft:
    spent, left = round(spent, 2), round(limit - spent, 2)
    return BudgetLeft(period=period, spent_usd=spent, limit_usd=limit, setting=setting, left_usd=left)


def _budget_line(label: str, left: BudgetLeft) -> str:
    rest = f"${left.left_usd:.2f} left" if left.left_usd >= 0 else f"OVER by ${-left.left_usd:.2f}"
    return f"{label} ({left.period}): ${left.spent_usd:.2f} of {left.setting} ${left.limit_usd:.2f}, {rest}"

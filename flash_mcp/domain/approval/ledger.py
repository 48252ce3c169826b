"""The reconciled ledger: what each approved run counts against the budgets, and whether it overran.

A run approved for a quote counts the larger of that quote and the plane's running estimate while it
runs, and its settled cost once the plane settles it. Each transition is claimed with one conditional
UPDATE, so two servers (or a server and `flash-mcp`) watching the same run audit it once.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from pydantic import BaseModel, Field

from flash_mcp.domain.approval.store import COUNTED_USD, ApprovalStore

RECONCILE_DAYS = 14


class LedgerEntry(BaseModel):
    """One approved run as the budgets count it."""

    run_id: str
    plane: str
    day: str = Field(description="Local date the run was submitted")
    state: str | None = Field(description="The run's state when last reconciled (null: not seen yet)")
    approved_usd: float = Field(description="The quote the run was approved for")
    cost_usd: float | None = Field(description="Settled cost, or the plane's running estimate; null when unknown")
    settled: bool = Field(description="True once the plane settled the cost")
    counted_usd: float = Field(description="What the budgets count: settled cost, else max(approved, running)")
    difference_usd: float | None = Field(description="cost_usd - approved_usd")
    overrun: bool = Field(description="The cost passed the approved amount by more than [budget] overrun_pct")
    cancelled_for_overrun: bool = Field(description="The server cancelled it because [budget] cancel_on_overrun")


def overran(approved: float, cost: float | None, pct: float) -> bool:
    """More than `pct` percent over the approved amount (a cent of rounding is not an overrun)."""
    return cost is not None and round(cost - approved, 2) > round(approved * pct / 100, 2)


def over_pct(approved: float, cost: float) -> float | None:
    return round((cost - approved) / approved * 100, 1) if approved > 0 else None


_ENTRY = f"""
SELECT p.run_id, p.plane, p.day, p.usd AS approved_usd, s.state, s.running_usd, s.settled_usd, s.overrun_at,
       s.cancelled_at, {COUNTED_USD} AS counted_usd
FROM spend p LEFT JOIN settlements s ON s.run_id = p.run_id
"""


def _entry(row: Any) -> LedgerEntry:
    settled = row["settled_usd"] is not None
    cost = row["settled_usd"] if settled else row["running_usd"]
    return LedgerEntry(
        run_id=row["run_id"], plane=row["plane"], day=row["day"], state=row["state"],
        approved_usd=row["approved_usd"], cost_usd=cost, settled=settled, counted_usd=row["counted_usd"],
        difference_usd=None if cost is None else round(cost - row["approved_usd"], 2),
        overrun=row["overrun_at"] is not None, cancelled_for_overrun=row["cancelled_at"] is not None,
    )  # fmt: skip


class Ledger:
    """Settlements kept beside the spend rows in approvals.db."""

    def __init__(self, store: ApprovalStore):
        self.store = store

    def unsettled(self, plane: str) -> dict[str, float]:
        """Approved (paid) runs on `plane` whose cost the plane has not settled yet: run id -> approved.

        Only runs submitted in the last RECONCILE_DAYS: a run lives at most a day on Flash, so an older
        unsettled one is on a plane this server no longer reaches (and keeps counting its approval).
        """
        with self.store.connect() as db:
            rows = db.execute(
                "SELECT p.run_id, p.usd FROM spend p LEFT JOIN settlements s ON s.run_id = p.run_id "
                "WHERE p.plane = ? AND p.usd > 0 AND s.settled_usd IS NULL AND p.created_at > ?",
                (plane, time.time() - RECONCILE_DAYS * 86400),
            ).fetchall()
        return {row[0]: float(row[1]) for row in rows}

    def observe(self, run_id: str, state: str, cost: float | None, *, settled: bool) -> bool:
        """Record what the plane reports now; True when this call is the one that settled the run."""
        now = time.time()
        with self.store.writing() as db:
            db.execute(
                "INSERT INTO settlements (run_id, state, running_usd, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(run_id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at, "
                "running_usd = COALESCE(excluded.running_usd, settlements.running_usd) "
                "WHERE settlements.settled_usd IS NULL",
                (run_id, state, None if settled else cost, now),
            )
            if not settled:
                return False
            settle = "UPDATE settlements SET settled_usd = ? WHERE run_id = ? AND settled_usd IS NULL"
            return db.execute(settle, (cost or 0.0, run_id)).rowcount == 1

    def claim_overrun(self, run_id: str, cost: float) -> bool:
        """Flag the run once; True for the caller that flagged it."""
        sql = "UPDATE settlements SET overrun_usd = ?, overrun_at = ? WHERE run_id = ? AND overrun_at IS NULL"
        with self.store.writing() as db:
            return db.execute(sql, (cost, time.time(), run_id)).rowcount == 1

    def claim_cancel(self, run_id: str) -> bool:
        """Take the one cancel an overrun earns; True for the caller that should send it."""
        sql = "UPDATE settlements SET cancelled_at = ? WHERE run_id = ? AND cancelled_at IS NULL"
        with self.store.writing() as db:
            return db.execute(sql, (time.time(), run_id)).rowcount == 1

    def release_cancel(self, run_id: str) -> None:
        self.store.write("UPDATE settlements SET cancelled_at = NULL WHERE run_id = ?", (run_id,))

    def entry(self, run_id: str) -> LedgerEntry | None:
        with self.store.connect() as db:
            row = db.execute(_ENTRY + "WHERE p.run_id = ? AND p.usd > 0", (run_id,)).fetchone()
        return _entry(row) if row else None

    def month(self, when: dt.date | None = None) -> list[LedgerEntry]:
        """This month's approved runs, newest first."""
        month = (when or dt.date.today()).strftime("%Y-%m")
        with self.store.connect() as db:
            rows = db.execute(_ENTRY + "WHERE p.month = ? AND p.usd > 0 ORDER BY p.created_at DESC", (month,))
            found = rows.fetchall()
        return [_entry(row) for row in found]

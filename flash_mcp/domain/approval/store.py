"""Proposals, the spend ledger and the audit trail, in FLASH_MCP_HOME (approvals.db, audit.jsonl).

The state directory is off-limits to every file tool, so nothing here is reachable from the agent
except through the launch path and the read-only proposal views.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from flash_mcp.core.sqlite import Database

PROPOSAL_TTL_S = 24 * 3600
RECENT_SUBMIT_S = 10 * 60
_SCHEMA = """
CREATE TABLE IF NOT EXISTS proposals (
    id TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    status TEXT NOT NULL,
    plane TEXT NOT NULL,
    workspace TEXT NOT NULL,
    config TEXT NOT NULL,
    request TEXT NOT NULL,
    quote_usd REAL NOT NULL,
    quote_label TEXT NOT NULL,
    account TEXT,
    config_digest TEXT NOT NULL,
    environment_id TEXT NOT NULL,
    environment_digest TEXT,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    decided_at REAL,
    run_id TEXT,
    details TEXT
);
CREATE INDEX IF NOT EXISTS proposals_by_fingerprint ON proposals (fingerprint, status);
CREATE TABLE IF NOT EXISTS spend (
    run_id TEXT PRIMARY KEY,
    plane TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    usd REAL NOT NULL,
    day TEXT NOT NULL,
    month TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS settlements (
    run_id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    running_usd REAL,
    settled_usd REAL,
    overrun_usd REAL,
    overrun_at REAL,
    cancelled_at REAL,
    updated_at REAL NOT NULL
);
"""
# What a run counts in the totals: its settled cost once the plane settled it, before that the larger
# of the approved quote and the plane's running estimate (`s` is settlements, `p` is spend).
COUNTED_USD = "CASE WHEN s.settled_usd IS NOT NULL THEN s.settled_usd ELSE MAX(p.usd, COALESCE(s.running_usd, 0)) END"


class DataFile(BaseModel):
    """A file the run trains on, as it was when the proposal was made."""

    path: str = Field(description="Relative to the workspace")
    sha256: str
    bytes: int


class ProposalView(BaseModel):
    """A proposal as tools and resources show it: what will run, exactly, and what it was checked against."""

    id: str
    kind: str = Field(default="launch", description="launch (a training run) or deployment (serving a checkpoint)")
    status: str = Field(description="pending, approved, submitted, denied or refused")
    live: bool = Field(description="Pending and not expired: `flash-mcp approve` can still act on it")
    plane: str
    config: str
    quote_usd: float
    quote_label: str
    account: str | None
    config_digest: str
    environment_id: str
    environment_digest: str | None
    created_at: float
    expires_at: float
    decided_at: float | None
    run_id: str | None
    fingerprint: str
    workspace: str
    overrides: dict[str, Any] = Field(default_factory=dict, description="The launch's overrides (flash train --set)")
    config_diff: str | None = Field(default=None, description="The overrides as a diff against the config file")
    data: list[DataFile] = Field(default_factory=list, description="The data the run trains on, by digest")
    run: dict[str, Any] = Field(default_factory=dict, description="The resolved run exactly as it will be submitted")
    denied_reason: str | None = Field(default=None, description="Why the human denied it, in their words")
    offline: dict[str, Any] | None = Field(
        default=None,
        description="Proposed before the plane could be reached (no login): the package to push at approval (its "
        "digest), Flash's offline estimate, and `approved_usd`, the most the live quote may be",
    )


class Proposal(ProposalView):
    """A stored proposal: the view plus the exact request `flash-mcp approve` submits."""

    request: str = Field(exclude=True)

    def public(self) -> ProposalView:
        return ProposalView.model_validate(self.model_dump())


def _proposal(row: Any) -> Proposal:
    data = dict(row)
    details = json.loads(data.pop("details", None) or "{}")
    return Proposal(**data, **details, live=data["status"] == "pending" and data["expires_at"] > time.time())


class ApprovalStore(Database):
    def __init__(self, home: Path):
        super().__init__(home / "approvals.db", _SCHEMA)
        self.audit_path = home / "audit.jsonl"
        self.lock_path = home / "approvals.lock"
        with self.writing() as db:  # databases made before proposals kept their details
            if "details" not in {row[1] for row in db.execute("PRAGMA table_info(proposals)")}:
                db.execute("ALTER TABLE proposals ADD COLUMN details TEXT")

    @contextmanager
    def launch_lock(self) -> Iterator[None]:
        """One launch decision at a time across every server process on this state directory: an exclusive
        flock held from the duplicate check through the budget and concurrency checks to the recorded submit."""
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    # -- proposals ------------------------------------------------------------------------------

    def propose(self, *, details: dict[str, Any] | None = None, **fields: Any) -> Proposal:
        now = time.time()
        fields["details"] = json.dumps(details or {}, sort_keys=True, default=str)
        row = {"id": f"prop-{secrets.token_hex(6)}", "status": "pending", "created_at": now,
               "expires_at": now + PROPOSAL_TTL_S, "decided_at": None, "run_id": None, **fields}  # fmt: skip
        with self.writing() as db:
            db.execute(
                f"INSERT INTO proposals ({', '.join(row)}) VALUES ({', '.join('?' for _ in row)})", tuple(row.values())
            )
        return _proposal(row)

    def get(self, proposal_id: str) -> Proposal | None:
        with self.connect() as db:
            row = db.execute("SELECT * FROM proposals WHERE id = ?", (proposal_id,)).fetchone()
        return _proposal(row) if row else None

    def pending_for(self, fingerprint: str) -> Proposal | None:
        with self.connect() as db:
            row = db.execute(
                "SELECT * FROM proposals WHERE fingerprint = ? AND status = 'pending' AND expires_at > ? "
                "ORDER BY created_at DESC LIMIT 1",
                (fingerprint, time.time()),
            ).fetchone()
        return _proposal(row) if row else None

    def approved_for(self, fingerprint: str) -> Proposal | None:
        """A live proposal the human approved and nothing has used yet (deployments: `evaluate` uses it)."""
        with self.connect() as db:
            row = db.execute(
                "SELECT * FROM proposals WHERE fingerprint = ? AND status = 'approved' AND expires_at > ? "
                "ORDER BY created_at DESC LIMIT 1",
                (fingerprint, time.time()),
            ).fetchone()
        return _proposal(row) if row else None

    def list(self, status: str | None = None, limit: int = 50) -> list[Proposal]:
        where, params = ("WHERE status = ?", (status,)) if status else ("", ())
        with self.connect() as db:
            rows = db.execute(
                f"SELECT * FROM proposals {where} ORDER BY created_at DESC LIMIT ?", (*params, limit)
            ).fetchall()
        return [_proposal(row) for row in rows]

    def decide(self, proposal_id: str, status: str) -> bool:
        """pending -> approved or denied, once: the single-use guarantee. False if it was not pending and live."""
        with self.writing() as db:
            changed = db.execute(
                "UPDATE proposals SET status = ?, decided_at = ? "
                "WHERE id = ? AND status = 'pending' AND expires_at > ?",
                (status, time.time(), proposal_id, time.time()),
            ).rowcount
        return changed == 1

    def note_denial(self, proposal_id: str, reason: str) -> None:
        """Keep the human's reason beside the proposal (in its details), for the agent to read."""
        with self.writing() as db:
            row = db.execute("SELECT details FROM proposals WHERE id = ?", (proposal_id,)).fetchone()
            details = {**json.loads((row["details"] if row else None) or "{}"), "denied_reason": reason}
            db.execute("UPDATE proposals SET details = ? WHERE id = ?", (json.dumps(details), proposal_id))

    def settle(self, proposal_id: str, status: str, run_id: str | None = None) -> None:
        self.write("UPDATE proposals SET status = ?, run_id = ? WHERE id = ?", (status, run_id, proposal_id))

    # -- spend ----------------------------------------------------------------------------------

    def record_spend(self, run_id: str, plane: str, fingerprint: str, usd: float) -> None:
        today = dt.date.today()
        self.write(
            "INSERT OR REPLACE INTO spend VALUES (?, ?, ?, ?, ?, ?, ?)",
            (run_id, plane, fingerprint, usd, today.isoformat(), today.strftime("%Y-%m"), time.time()),
        )

    def spent(self) -> tuple[float, float]:
        """Reconciled spend of runs submitted today and this month (local dates): see COUNTED_USD."""
        today = dt.date.today()
        total = f"SELECT COALESCE(SUM({COUNTED_USD}), 0) FROM spend p LEFT JOIN settlements s ON s.run_id = p.run_id"
        with self.connect() as db:
            day = db.execute(f"{total} WHERE p.day = ?", (today.isoformat(),)).fetchone()
            month = db.execute(f"{total} WHERE p.month = ?", (today.strftime("%Y-%m"),)).fetchone()
        return float(day[0]), float(month[0])

    def recent_run(self, fingerprint: str) -> str | None:
        with self.connect() as db:
            row = db.execute(
                "SELECT run_id FROM spend WHERE fingerprint = ? AND created_at > ? ORDER BY created_at DESC LIMIT 1",
                (fingerprint, time.time() - RECENT_SUBMIT_S),
            ).fetchone()
        return row[0] if row else None

    # -- audit ----------------------------------------------------------------------------------

    def audit(self, event: str, **fields: Any) -> None:
        """Append one JSON line (locked, fsynced): propose, approve, deny, submit, cancel."""
        line = json.dumps({"ts": time.time(), "event": event, **fields}, sort_keys=True, default=str) + "\n"
        self.audit_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.audit_path, "a", encoding="utf-8") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())

    def audit_events(self) -> list[dict[str, Any]]:
        if not self.audit_path.is_file():
            return []
        return [json.loads(line) for line in self.audit_path.read_text(encoding="utf-8").splitlines() if line.strip()]

"""The guard's own records, in its state directory (guard.db): proposals, the spend ledger, the audit trail.

SQLite in WAL mode with one writer (the guard), its schema versioned and migrated forward on open (MIGRATIONS); a
proposal holds the exact body it will submit, the digest of that body, and the quote the human approves. An approval
is used at most once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flash_mcp.core.sqlite import Database

PROPOSAL_TTL_S = 24 * 3600
_SCHEMA = """
CREATE TABLE IF NOT EXISTS proposals (
    id TEXT PRIMARY KEY,
    path TEXT NOT NULL,
    body TEXT NOT NULL,
    digest TEXT NOT NULL,
    quote_usd REAL NOT NULL,
    summary TEXT NOT NULL,
    status TEXT NOT NULL,
    run_id TEXT,
    error TEXT,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    decided_at REAL
);
CREATE TABLE IF NOT EXISTS spend (
    proposal_id TEXT PRIMARY KEY,
    usd REAL NOT NULL,
    day TEXT NOT NULL,
    month TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS changes (
    id TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    digest TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS audit (
    at REAL NOT NULL,
    event TEXT NOT NULL,
    facts TEXT NOT NULL
);
"""
# Each takes guard.db from version i to i + 1 (PRAGMA user_version); a file from before versioning is version 0.
# Append only: an upgrade applies what its file lacks and keeps every proposal, ledger row and audit event.
MIGRATIONS = (
    """
    CREATE INDEX IF NOT EXISTS proposals_by_status ON proposals (status, created_at);
    CREATE INDEX IF NOT EXISTS audit_by_time ON audit (at);
    """,
    """
    ALTER TABLE proposals ADD COLUMN denied_reason TEXT;
    CREATE INDEX IF NOT EXISTS audit_by_event ON audit (event, at);
    """,
)
REASON_MAX = 500  # characters of the human's reason for a denial that the store keeps


def body_digest(body: dict[str, Any]) -> str:
    """sha256 of the body in canonical JSON: what the human approves is what is submitted."""
    return hashlib.sha256(canonical(body)).hexdigest()


def canonical(body: dict[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


@dataclass(frozen=True)
class GuardProposal:
    id: str
    path: str
    body: dict[str, Any]
    digest: str
    quote_usd: float
    summary: str
    status: str
    run_id: str | None
    error: str | None
    created_at: float
    expires_at: float
    decided_at: float | None = None
    denied_reason: str | None = None

    def public(self) -> dict[str, Any]:
        """What the MCP server may read back: never the body's secrets (runtime_secrets are dropped)."""
        shown = {k: v for k, v in self.body.items() if k != "runtime_secrets"}
        return {"id": self.id, "path": self.path, "digest": self.digest, "quote_usd": self.quote_usd,
                "summary": self.summary, "status": self.status, "run_id": self.run_id, "error": self.error,
                "created_at": self.created_at, "expires_at": self.expires_at, "denied_reason": self.denied_reason,
                "body": shown}  # fmt: skip


class GuardStore(Database):
    def __init__(self, home: Path):
        super().__init__(home / "guard.db", _SCHEMA, MIGRATIONS)

    def propose(self, path: str, body: dict[str, Any], quote_usd: float, summary: str) -> GuardProposal:
        now, proposal_id = time.time(), "gp-" + secrets.token_hex(6)
        self.write(
            "INSERT INTO proposals (id, path, body, digest, quote_usd, summary, status, created_at, expires_at) "
            "VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?)",
            (proposal_id, path, json.dumps(body), body_digest(body), quote_usd, summary[:500], now,
             now + PROPOSAL_TTL_S),
        )  # fmt: skip
        self.audit("propose", proposal_id=proposal_id, path=path, digest=body_digest(body), quote_usd=quote_usd)
        return self.get(proposal_id)  # type: ignore[return-value]

    def get(self, proposal_id: str) -> GuardProposal | None:
        with self.connect() as db:
            row = db.execute("SELECT * FROM proposals WHERE id = ?", (proposal_id,)).fetchone()
        return _proposal(row) if row else None

    def list(self, status: str | None = None, limit: int = 50) -> list[GuardProposal]:
        query, args = "SELECT * FROM proposals", ()
        if status:
            query, args = query + " WHERE status = ?", (status,)
        with self.connect() as db:
            rows = db.execute(query + " ORDER BY created_at DESC LIMIT ?", (*args, limit)).fetchall()
        return [_proposal(row) for row in rows]

    def claim(self, proposal_id: str, digest: str) -> bool:
        """pending → submitting, once, for a live proposal whose body still has `digest`."""
        with self.writing() as db:
            changed = db.execute(
                "UPDATE proposals SET status = 'submitting', decided_at = ? WHERE id = ? AND status = 'pending' "
                "AND digest = ? AND expires_at > ?",
                (time.time(), proposal_id, digest, time.time()),
            ).rowcount
        return changed == 1

    def settle(self, proposal_id: str, status: str, run_id: str | None = None, error: str | None = None) -> None:
        self.write("UPDATE proposals SET status = ?, run_id = ?, error = ? WHERE id = ?",
                   (status, run_id, error, proposal_id))  # fmt: skip
        self.audit(status, proposal_id=proposal_id, run_id=run_id, error=error)

    def deny(self, proposal_id: str, reason: str | None = None) -> bool:
        """pending → denied, once, keeping the human's reason (clipped to REASON_MAX) for the agent to read."""
        kept = (reason or "").strip()[:REASON_MAX] or None
        with self.writing() as db:
            changed = db.execute(
                "UPDATE proposals SET status = 'denied', decided_at = ?, denied_reason = ? "
                "WHERE id = ? AND status = 'pending'",
                (time.time(), kept, proposal_id),
            ).rowcount
        if changed:
            self.audit("deny", proposal_id=proposal_id, reason=kept)
        return changed == 1

    def record_spend(self, proposal_id: str, usd: float) -> None:
        today = dt.date.today()
        self.write("INSERT OR REPLACE INTO spend VALUES (?, ?, ?, ?, ?)",
                   (proposal_id, usd, today.isoformat(), today.strftime("%Y-%m"), time.time()))  # fmt: skip

    def spent(self) -> tuple[float, float]:
        """(today, this month) in USD, from what the guard submitted."""
        today = dt.date.today()
        with self.connect() as db:
            day = db.execute("SELECT COALESCE(SUM(usd), 0) FROM spend WHERE day = ?", (today.isoformat(),))
            spent_today = day.fetchone()[0]
            month = db.execute("SELECT COALESCE(SUM(usd), 0) FROM spend WHERE month = ?", (today.strftime("%Y-%m"),))
            return float(spent_today), float(month.fetchone()[0])

    def add_change(self, change: dict[str, Any]) -> tuple[str, str]:
        """A settings change that waits for the passkey: (id, digest)."""
        change_id, digest = "gc-" + secrets.token_hex(6), body_digest(change)
        self.write("INSERT INTO changes VALUES (?, ?, ?, 'pending', ?)", (change_id, json.dumps(change), digest,
                                                                           time.time()))  # fmt: skip
        self.audit("change-proposed", change_id=change_id, change=change)
        return change_id, digest

    def change(self, change_id: str) -> tuple[dict[str, Any], str, str] | None:
        with self.connect() as db:
            row = db.execute("SELECT * FROM changes WHERE id = ?", (change_id,)).fetchone()
        return (json.loads(row["body"]), row["digest"], row["status"]) if row else None

    def settle_change(self, change_id: str) -> bool:
        with self.writing() as db:
            done = db.execute("UPDATE changes SET status = 'applied' WHERE id = ? AND status = 'pending'",
                              (change_id,)).rowcount  # fmt: skip
        if done:
            self.audit("change-applied", change_id=change_id)
        return done == 1

    def audit(self, event: str, **facts: Any) -> None:
        self.write("INSERT INTO audit VALUES (?, ?, ?)", (time.time(), event, json.dumps(facts, default=str)))

    def audit_events(self, limit: int = 200, event: str | None = None) -> list[dict[str, Any]]:
        """The latest `limit` events, newest first; only those of kind `event` when it is given."""
        where, args = ("WHERE event = ?", (event,)) if event else ("", ())
        with self.connect() as db:
            rows = db.execute(f"SELECT * FROM audit {where} ORDER BY at DESC LIMIT ?", (*args, limit)).fetchall()
        return [{"at": row["at"], "event": row["event"], **json.loads(row["facts"])} for row in rows]

    def audit_kinds(self) -> list[str]:
        """Every event kind the trail holds, sorted: the page's filter offers these."""
        with self.connect() as db:
            return [row[0] for row in db.execute("SELECT DISTINCT event FROM audit ORDER BY event")]


def _proposal(row: Any) -> GuardProposal:
    fields = dict(row)
    return GuardProposal(**{**fields, "body": json.loads(fields["body"])})

"""guard.db across an upgrade: a file in the schema before versioning (main's, frozen below) is migrated in place
and keeps its proposals, ledger and audit trail; a file from a newer flash-mcp is refused and left as it was."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sqlite3
import time
from pathlib import Path

import pytest

from flash_mcp.core.sqlite import NewerSchema
from flash_mcp.guard.store import MIGRATIONS, REASON_MAX, GuardStore, body_digest

# guard.db as flash-mcp wrote it before schema versions (user_version 0): kept verbatim, never imported.
UNVERSIONED = """
CREATE TABLE IF NOT EXISTS proposals (
    id TEXT PRIMARY KEY, path TEXT NOT NULL, body TEXT NOT NULL, digest TEXT NOT NULL, quote_usd REAL NOT NULL,
    summary TEXT NOT NULL, status TEXT NOT NULL, run_id TEXT, error TEXT, created_at REAL NOT NULL,
    expires_at REAL NOT NULL, decided_at REAL
);
CREATE TABLE IF NOT EXISTS spend (
    proposal_id TEXT PRIMARY KEY, usd REAL NOT NULL, day TEXT NOT NULL, month TEXT NOT NULL, created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS changes (
    id TEXT PRIMARY KEY, body TEXT NOT NULL, digest TEXT NOT NULL, status TEXT NOT NULL, created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS audit (at REAL NOT NULL, event TEXT NOT NULL, facts TEXT NOT NULL);
"""
BODY = {"spec": {"algorithm": "grpo", "model": "m", "environment": {"id": "env-1"}}}


def _old_guard_db(home: Path) -> Path:
    path, now, today = home / "guard.db", time.time(), dt.date.today()
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript(UNVERSIONED)
    digest = body_digest(BODY)
    rows = [("gp-00000000000a", "pending", None, None), ("gp-00000000000b", "submitted", now - 60, "run-7"),
            ("gp-00000000000c", "denied", now - 30, None)]  # fmt: skip
    for proposal_id, status, decided, run_id in rows:
        db.execute("INSERT INTO proposals VALUES (?, '/v1/runs', ?, ?, 4.5, 'grpo on m', ?, ?, NULL, ?, ?, ?)",
                   (proposal_id, json.dumps(BODY), digest, status, run_id, now - 120, now + 3600, decided))  # fmt: skip
    db.execute("INSERT INTO spend VALUES ('gp-00000000000b', 4.5, ?, ?, ?)",
               (today.isoformat(), today.strftime("%Y-%m"), now - 60))  # fmt: skip
    db.execute("INSERT INTO changes VALUES ('gc-00000000000a', '{\"settings\": {}}', 'd', 'pending', ?)", (now,))
    for event, facts in (("propose", {"proposal_id": "gp-00000000000b"}), ("submitted", {"run_id": "run-7"})):
        db.execute("INSERT INTO audit VALUES (?, ?, ?)", (now - 60, event, json.dumps(facts)))
    db.commit()
    db.close()
    return path


def test_an_unversioned_guard_db_is_migrated_and_keeps_its_approvals_ledger_and_audit(tmp_path: Path) -> None:
    path = _old_guard_db(tmp_path)
    store = GuardStore(tmp_path)
    with store.connect() as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS) >= 1
        indexes = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"proposals_by_status", "audit_by_time"} <= indexes
    assert [p.id for p in store.list()] and {p.status for p in store.list()} == {"pending", "submitted", "denied"}
    assert store.get("gp-00000000000b").run_id == "run-7"  # type: ignore[union-attr]
    assert store.spent() == (4.5, 4.5)
    assert sorted(e["event"] for e in store.audit_events()) == ["propose", "submitted"]
    assert store.change("gc-00000000000a") is not None

    # Still usable: the old pending proposal is claimed once, new ones and new audit rows are written.
    assert store.claim("gp-00000000000a", body_digest(BODY)) and not store.claim("gp-00000000000a", body_digest(BODY))
    store.record_spend("gp-00000000000a", 1.5)
    assert store.spent() == (6.0, 6.0)
    fresh = store.propose("/v1/runs", BODY, 2.0, "again")
    assert store.get(fresh.id) == fresh and store.audit_events()[0]["proposal_id"] == fresh.id

    reopened = GuardStore(tmp_path)  # opening again changes nothing
    assert len(reopened.list()) == 4 and reopened.spent() == (6.0, 6.0)
    assert path.exists()


def test_a_guard_db_from_a_newer_flash_mcp_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    path = _old_guard_db(tmp_path)
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(NewerSchema, match=r"newer than this flash-mcp knows .* left as it was; upgrade flash-mcp"):
        GuardStore(tmp_path)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


def test_a_fresh_guard_db_starts_at_the_current_version(tmp_path: Path) -> None:
    store = GuardStore(tmp_path)
    with store.connect() as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert store.list() == [] and store.spent() == (0.0, 0.0)


def test_a_version_1_guard_db_gains_denied_reasons_and_keeps_what_it_held(tmp_path: Path) -> None:
    """Version 1 (the indexes, no denied_reason): the column is added, old rows read None, new denials keep theirs."""
    path = _old_guard_db(tmp_path)
    db = sqlite3.connect(path)
    db.executescript(MIGRATIONS[0])
    db.execute("PRAGMA user_version = 1")
    db.commit()
    assert "denied_reason" not in {row[1] for row in db.execute("PRAGMA table_info(proposals)")}
    db.close()
    store = GuardStore(tmp_path)
    with store.connect() as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS) == 2
        indexes = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"proposals_by_status", "audit_by_time", "audit_by_event"} <= indexes
    assert store.get("gp-00000000000c").status == "denied"  # type: ignore[union-attr]
    assert store.get("gp-00000000000c").denied_reason is None  # type: ignore[union-attr]
    assert store.spent() == (4.5, 4.5) and len(store.audit_events()) == 2

    assert store.deny("gp-00000000000a", "  too few steps <b>; try 40  ") and not store.deny("gp-00000000000a", "again")
    denied = store.get("gp-00000000000a")
    assert denied.status == "denied" and denied.denied_reason == "too few steps <b>; try 40"  # type: ignore[union-attr]
    assert denied.public()["denied_reason"] == denied.denied_reason  # type: ignore[union-attr]
    assert store.audit_events(event="deny") == [
        {**store.audit_events(event="deny")[0], "proposal_id": "gp-00000000000a", "reason": denied.denied_reason}  # type: ignore[union-attr]
    ]
    assert store.audit_kinds() == ["deny", "propose", "submitted"]
    fresh = store.propose("/v1/runs", BODY, 2.0, "long")
    assert store.deny(fresh.id, "x" * 2000) and store.get(fresh.id).denied_reason == "x" * REASON_MAX  # type: ignore[union-attr]
    assert GuardStore(tmp_path).get("gp-00000000000a") == denied  # reopening changes nothing

"""The local plane's SQLite store: pushes and runs. WAL; the server is its only writer.

Trainer processes never write here: they write their run directory, and the server folds that
into the store when it reads a run. What the trainer cannot touch lives here: the sealed job (`job`: the
spec the run was launched with) and the process the server spawned (`pid`, `pid_start`).
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from flash_mcp.core.sqlite import Database
from flash_mcp.planes.base import PushRecord

_SCHEMA = """
CREATE TABLE IF NOT EXISTS pushes (
    environment_id TEXT NOT NULL,
    digest TEXT NOT NULL,
    source TEXT NOT NULL,
    package TEXT NOT NULL,
    files INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS pushes_by_id ON pushes (environment_id, created_at);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    model TEXT NOT NULL,
    trained_model TEXT,
    config TEXT,
    environment_id TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    finished_at REAL,
    error TEXT,
    notes TEXT NOT NULL DEFAULT '[]',
    run_dir TEXT NOT NULL,
    pid INTEGER,
    pid_start INTEGER,
    job TEXT
);
CREATE INDEX IF NOT EXISTS runs_by_time ON runs (created_at);
"""


# Columns added since the first schema: a store from then gains them (empty) when it is opened.
_ADDED = {"pid_start": "INTEGER", "job": "TEXT", "worker_scratch": "TEXT", "files_settled": "REAL"}


class Store(Database):
    def __init__(self, path: Path):
        super().__init__(path, _SCHEMA)
        with self.writing() as db:
            have = {row[1] for row in db.execute("PRAGMA table_info(runs)")}
            for column, kind in _ADDED.items():
                if column not in have:
                    db.execute(f"ALTER TABLE runs ADD COLUMN {column} {kind}")

    # -- pushes ------------------------------------------------------------------------------

    def add_push(self, record: PushRecord) -> None:
        self.write(
            "INSERT INTO pushes VALUES (?, ?, ?, ?, ?, ?, ?)",
            (record.environment_id, record.digest, record.source, record.package, record.files, record.bytes,
             record.created_at),
        )  # fmt: skip

    def latest_push(self, environment_id: str) -> PushRecord | None:
        with self.connect() as db:
            row = db.execute(
                "SELECT * FROM pushes WHERE environment_id = ? ORDER BY created_at DESC LIMIT 1", (environment_id,)
            ).fetchone()
        return PushRecord(**dict(row)) if row else None

    def pushes_from(self, source: str) -> list[PushRecord]:
        with self.connect() as db:
            rows = db.execute("SELECT * FROM pushes WHERE source = ? ORDER BY created_at DESC", (source,)).fetchall()
        return [PushRecord(**dict(row)) for row in rows]

    # -- runs --------------------------------------------------------------------------------

    def add_run(self, row: dict[str, Any]) -> None:
        row = {**row, "notes": json.dumps(row.get("notes", [])), "job": json.dumps(row.get("job"))}
        columns = ", ".join(row)
        self.write(f"INSERT INTO runs ({columns}) VALUES ({', '.join('?' for _ in row)})", tuple(row.values()))

    def update_run(self, run_id: str, **fields: Any) -> None:
        if "notes" in fields:
            fields["notes"] = json.dumps(fields["notes"])
        fields["updated_at"] = fields.get("updated_at", time.time())
        assignments = ", ".join(f"{key} = ?" for key in fields)
        self.write(f"UPDATE runs SET {assignments} WHERE run_id = ?", (*fields.values(), run_id))

    def claim_files(self, run_id: str) -> float | None:
        """Mark an ended run's files as being settled (domain/job_files.py); the time, or None if already done."""
        now = time.time()
        with self.writing() as db:
            claimed = db.execute(
                "UPDATE runs SET files_settled = ? WHERE run_id = ? AND files_settled IS NULL", (now, run_id)
            ).rowcount
        return now if claimed else None

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        with self.connect() as db:
            row = db.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return _run(row) if row else None

    def list_runs(self, state: str | None, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
        where, params = ("WHERE state = ?", (state,)) if state else ("", ())
        with self.connect() as db:
            total = db.execute(f"SELECT COUNT(*) FROM runs {where}", params).fetchone()[0]
            rows = db.execute(
                f"SELECT * FROM runs {where} ORDER BY created_at DESC LIMIT ? OFFSET ?", (*params, limit, offset)
            ).fetchall()
        return [_run(row) for row in rows], total

    def run_ids(self, prefix: str, limit: int) -> list[str]:
        with self.connect() as db:
            rows = db.execute(
                "SELECT run_id FROM runs WHERE run_id LIKE ? ORDER BY created_at DESC LIMIT ?", (f"{prefix}%", limit)
            ).fetchall()
        return [row[0] for row in rows]


def _run(row: sqlite3.Row) -> dict[str, Any]:
    data = dict(row)
    data["notes"] = json.loads(data["notes"] or "[]")
    data["job"] = json.loads(data["job"]) if data.get("job") else None
    return data

"""What this server pushed to and submitted on a Flash plane, kept in FLASH_MCP_HOME/flash.db.

Flash ids carry no version, so the pre-shim digest recorded at push time is how a launch knows the
environment is unchanged; submissions remember which config a run came from.
"""

from __future__ import annotations

import time
from pathlib import Path

from flash_mcp.core.sqlite import Database
from flash_mcp.planes.base import PushRecord

_SCHEMA = """
CREATE TABLE IF NOT EXISTS pushes (
    api_url TEXT NOT NULL,
    environment_id TEXT NOT NULL,
    digest TEXT NOT NULL,
    source TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS pushes_by_id ON pushes (api_url, environment_id, created_at);
CREATE TABLE IF NOT EXISTS submissions (
    api_url TEXT NOT NULL,
    run_id TEXT NOT NULL,
    config TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (api_url, run_id)
);
"""


class FlashRecords(Database):
    def __init__(self, path: Path, api_url: str):
        super().__init__(path, _SCHEMA)
        self.api_url = api_url

    def add_push(self, environment_id: str, digest: str, source: str) -> None:
        self.write(
            "INSERT INTO pushes VALUES (?, ?, ?, ?, ?)", (self.api_url, environment_id, digest, source, time.time())
        )

    def latest_push(self, environment_id: str) -> PushRecord | None:
        with self.connect() as db:
            row = db.execute(
                "SELECT environment_id, digest, source, created_at FROM pushes WHERE api_url = ? AND environment_id = ?"
                " ORDER BY created_at DESC LIMIT 1",
                (self.api_url, environment_id),
            ).fetchone()
        return PushRecord(**dict(row)) if row else None

    def add_submission(self, run_id: str, config: str) -> None:
        row = (self.api_url, run_id, config, time.time())
        self.write("INSERT OR REPLACE INTO submissions VALUES (?, ?, ?, ?)", row)

    def configs(self) -> dict[str, str]:
        with self.connect() as db:
            rows = db.execute("SELECT run_id, config FROM submissions WHERE api_url = ?", (self.api_url,)).fetchall()
        return {row["run_id"]: row["config"] for row in rows}

"""Environment-test verdicts kept by the server (FLASH_MCP_HOME/envtests.db), keyed by the package digest tested.

The server writes a record when `test_environment` finishes, from the report it computed itself; the child that
ran the agent's code never sees this file. What a human reviews later (the proposal page) reads it by the pushed
digest: the exact package, or an older test of the same project, shown as stale.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from flash_mcp.core.sqlite import Database
from flash_mcp.core.visible import one_line
from flash_mcp.domain.envtest.audit import RewardAudit
from flash_mcp.domain.envtest.families import ANY_ANSWER, FAMILY_TEXT, NOT_RUN, PARTIAL_TEXT
from flash_mcp.domain.envtest.report import EnvTestReport

MAX_FINDINGS = 12
MAX_MESSAGE = 200
MAX_SUMMARY = 300
KEPT = 2000  # records kept; older ones are dropped as new ones come
_SCHEMA = """
CREATE TABLE IF NOT EXISTS envtests (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    digest TEXT NOT NULL,
    project TEXT NOT NULL,
    record TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS envtests_by_digest ON envtests (digest, created_at);
CREATE INDEX IF NOT EXISTS envtests_by_project ON envtests (project, created_at);
"""


class AuditFinding(BaseModel):
    code: str = Field(description="The stable warning code, e.g. format-credit")
    status: str = Field(description="open, partial, not-run")
    message: str = Field(description="One line: what was found")


class EnvTestRecord(BaseModel):
    """One finished environment test, as the server judged it."""

    digest: str = Field(description="The package digest a push of the project would record (build_package's)")
    project: str = Field(description="The project folder tested (absolute)")
    label: str = Field(description="The project folder, workspace-relative")
    environment: str | None = Field(description="What the environment called itself when it loaded")
    config: str | None = Field(description="The config the test read its params and algorithm from")
    algorithm: str
    created_at: float
    verdict: Literal["pass", "fail"]
    summary: str
    rows_checked: int
    rows_passed: int
    rows_total: int | None
    audit_verdict: Literal["pass", "warn", "fail"] = Field(
        description="fail: open exploit families fail this config's reward-trained run; warn: some found; pass: none"
    )
    findings: list[AuditFinding] = Field(description=f"The audit's findings, at most {MAX_FINDINGS}")


def audit_verdict(audit: RewardAudit) -> Literal["pass", "warn", "fail"]:
    if audit.blocking:
        return "fail"
    found = audit.any_answer_rows or any(f.status in ("open", "partial") for f in audit.families)
    return "warn" if found else "pass"


def audit_findings(audit: RewardAudit) -> list[AuditFinding]:
    """Each open or partial family in one line, the any-answer rows, then the families never probed."""
    found = [
        AuditFinding(code=f.code, status=f.status,
                     message=FAMILY_TEXT[f.family][1] if f.status == "open" else PARTIAL_TEXT[f.family])
        for f in audit.families if f.status in ("open", "partial")
    ]  # fmt: skip
    if audit.any_answer_rows:
        found.append(AuditFinding(code=ANY_ANSWER[0], status="open", message=ANY_ANSWER[1]))
    skipped = [f.family for f in audit.families if f.status == "not-run"]
    if skipped:
        found.append(AuditFinding(code=NOT_RUN[0], status="not-run", message=f"not probed: {', '.join(skipped)}"))
    return [f.model_copy(update={"message": _clip(f.message, MAX_MESSAGE)}) for f in found[:MAX_FINDINGS]]


def record_of(report: EnvTestReport, digest: str, project: Path, label: str, config: str | None,
              algorithm: str) -> EnvTestRecord:  # fmt: skip
    """The record a finished test leaves: its verdicts and counts, never the environment's output."""
    return EnvTestRecord(
        digest=digest, project=str(project), label=label, environment=_clip(report.environment, 120),
        config=config, algorithm=algorithm, created_at=time.time(), verdict=report.verdict,
        summary=_clip(report.summary, MAX_SUMMARY) or "", rows_checked=report.rows_checked,
        rows_passed=report.rows_passed, rows_total=report.rows_total, audit_verdict=audit_verdict(report.audit),
        findings=audit_findings(report.audit),
    )  # fmt: skip


class EnvTestStore(Database):
    def __init__(self, home: Path):
        super().__init__(home / "envtests.db", _SCHEMA)

    def add(self, record: EnvTestRecord) -> None:
        with self.writing() as db:
            db.execute(
                "INSERT INTO envtests (digest, project, record, created_at) VALUES (?, ?, ?, ?)",
                (record.digest, record.project, record.model_dump_json(), record.created_at),
            )
            db.execute("DELETE FROM envtests WHERE id <= (SELECT MAX(id) FROM envtests) - ?", (KEPT,))

    def latest(self, digest: str) -> EnvTestRecord | None:
        """The newest test of exactly this package."""
        return self._one("WHERE digest = ?", (digest,))

    def latest_of_project(self, project: str) -> EnvTestRecord | None:
        """The newest test of this project folder, whatever its digest."""
        return self._one("WHERE project = ?", (project,))

    def _one(self, where: str, params: tuple) -> EnvTestRecord | None:
        with self.connect() as db:
            row = db.execute(f"SELECT record FROM envtests {where} ORDER BY created_at DESC, id DESC LIMIT 1",
                             params).fetchone()  # fmt: skip
        return EnvTestRecord.model_validate_json(row["record"]) if row else None


def _clip(text: str | None, limit: int) -> str | None:
    return None if text is None else one_line(text, limit)

"""What the server keeps of each environment test: a record under the digest a push of the tested project records,
with both verdicts and the audit's findings; the store answers the newest test of a digest, or of a project."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from mcp import Client

from flash_mcp.core.settings import ServerSettings
from flash_mcp.domain.envtest import verdicts
from flash_mcp.domain.envtest.verdicts import AuditFinding, EnvTestRecord, EnvTestStore
from flash_mcp.loop import envtest
from flash_mcp.server import build_server
from tests.conftest import call
from tests.envs import projects as seeds
from tests.envs.scorers import OPEN, STRICT

pytestmark = pytest.mark.anyio
ROWS = 12


@pytest.fixture
async def client(settings: ServerSettings) -> AsyncIterator[Client]:
    async with Client(build_server(settings)) as connected:
        yield connected


def _record(digest: str, project: str, at: float, verdict: str = "pass", **extra: object) -> EnvTestRecord:
    fields = {
        "digest": digest, "project": project, "label": Path(project).name, "environment": "Env", "config": None,
        "algorithm": "grpo", "created_at": at, "verdict": verdict, "summary": f"{verdict.upper()}: 3/3 rows passed",
        "rows_checked": 3, "rows_passed": 3, "rows_total": 3, "audit_verdict": "pass", "findings": [], **extra,
    }  # fmt: skip
    return EnvTestRecord.model_validate(fields)


def test_the_store_answers_the_newest_test_of_a_digest_and_of_a_project(tmp_path: Path) -> None:
    store = EnvTestStore(tmp_path)
    finding = AuditFinding(code="format-credit", status="open", message="any answer in the right format is paid")
    store.add(_record("a" * 64, "/ws/p", 100.0, "pass"))
    store.add(_record("a" * 64, "/ws/p", 200.0, "fail", audit_verdict="fail", findings=[finding]))
    store.add(_record("b" * 64, "/ws/p", 150.0, "pass"))
    store.add(_record("c" * 64, "/ws/q", 300.0, "pass"))

    newest = EnvTestStore(tmp_path).latest("a" * 64)  # a fresh handle reads what is on disk
    assert newest is not None and newest.created_at == 200.0 and newest.verdict == "fail"
    assert newest.audit_verdict == "fail" and newest.findings == [finding]
    assert store.latest("b" * 64).created_at == 150.0  # type: ignore[union-attr]
    assert store.latest("d" * 64) is None
    assert store.latest_of_project("/ws/p").digest == "a" * 64  # type: ignore[union-attr]
    assert store.latest_of_project("/ws/r") is None

    standing = envtest.standing(tmp_path, "d" * 64, Path("/ws/p"))
    assert standing.exact is None and standing.stale is not None and standing.stale.created_at == 200.0
    exact = envtest.standing(tmp_path, "b" * 64, Path("/ws/p"))
    assert exact.exact is not None and exact.exact.created_at == 150.0 and exact.stale is None


def test_old_records_are_dropped_past_the_cap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(verdicts, "KEPT", 2)
    store = EnvTestStore(tmp_path)
    for n, digest in enumerate("xyz"):
        store.add(_record(digest * 64, "/ws/p", float(n)))
    assert store.latest("x" * 64) is None
    assert store.latest("y" * 64) is not None and store.latest("z" * 64) is not None


async def test_a_finished_test_is_recorded_under_the_digest_its_push_records(
    client: Client, workspace: Path, isolated_home: Path
) -> None:
    scorer = OPEN["pays-length"]
    seeds.make_project(workspace, "p", scorer.source(), scorer.rows(ROWS))
    report = await call(client, "test_environment", directory="p", config="p/configs/rl.toml")
    assert report["verdict"] == "fail", "GRPO trains on a reward that pays length"
    pushed = await call(client, "push_environment", name="lengthy", directory="p")

    record = EnvTestStore(isolated_home).latest(pushed["digest"])
    assert record is not None, "the test is found by the digest the push recorded"
    assert record.project == str(workspace / "p") and record.label == "p" and record.config == "p/configs/rl.toml"
    assert (record.verdict, record.audit_verdict, record.algorithm) == ("fail", "fail", "grpo")
    assert (record.rows_checked, record.rows_passed, record.rows_total) == (ROWS, ROWS, ROWS)
    found = {(f["code"], f["status"]) for f in report["audit"]["families"] if f["status"] in ("open", "partial")}
    assert {(f.code, f.status) for f in record.findings} == found
    assert all(len(f.message) <= verdicts.MAX_MESSAGE and "\n" not in f.message for f in record.findings)
    assert len(record.summary) <= verdicts.MAX_SUMMARY and report["summary"].startswith(record.summary[:60])


async def test_a_strict_sft_test_passes_both_verdicts_and_a_new_test_supersedes_it(
    client: Client, workspace: Path, isolated_home: Path
) -> None:
    scorer = STRICT["exact"]
    seeds.make_project(workspace, "p", scorer.source(), scorer.rows(ROWS))
    first = await call(client, "test_environment", directory="p", rows=4)
    again = await call(client, "test_environment", directory="p")
    assert first["verdict"] == again["verdict"] == "pass"
    pushed = await call(client, "push_environment", name="strict", directory="p")
    record = EnvTestStore(isolated_home).latest(pushed["digest"])
    assert record is not None and record.rows_checked == ROWS, "the newest test of the digest is the one shown"
    assert (record.verdict, record.audit_verdict, record.config, record.findings) == ("pass", "pass", None, [])

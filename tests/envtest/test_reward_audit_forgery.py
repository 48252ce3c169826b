"""The reward audit's verdict is the server's: an environment that monkeypatches the harness inside its own
process (the probe builders, the sampler, the child's row and reporting functions, the audit itself) cannot
turn an exploitable reward's FAIL into a PASS. Real environments on the freesolo SDK, through the MCP client."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from mcp import Client

from flash_mcp.domain.envtest import probes
from flash_mcp.domain.envtest.report import Tally
from flash_mcp.harness.channel import ProtocolError
from flash_mcp.harness.probe_check import ProbeCheck
from tests.conftest import call
from tests.envs import projects as seeds
from tests.envs.scorers import OPEN

pytestmark = pytest.mark.anyio
ROWS = 20
REACH = """
import flash_mcp.domain.envtest.audit as _audit
import flash_mcp.domain.envtest.probes as _probes
import flash_mcp.domain.envtest.strictness as _strictness
_child = sys.modules.get("flash_mcp.jobs.envtest_child") or sys.modules["__main__"]
"""
# patch -> what it must come to: "protocol" (the server refuses the child's results) or "same" (no effect)
PATCHES = {
    "the probe builder returns nothing": ("_probes.build = lambda *a, **k: {}", "protocol"),
    "the derived probes are dropped": ("_probes.derived_probes = lambda *a, **k: {}", "protocol"),
    "the sampler never probes fully": ("_probes.Sampler.__call__ = lambda self, index: False", "protocol"),
    "the child's row check drops the probes": (
        "_orig = _child.check_row\n"
        "_child.check_row = lambda *a, **k: {k2: v for k2, v in _orig(*a, **k).items() if k2 not in ('pr', 'ex')}",
        "protocol",
    ),
    "the child's channel reports only gold and wrong": (
        "_row = _child.Channel.row\n"
        "_keep = ('i', 'id', 'ok', 'gold', 'junk')\n"
        "_child.Channel.row = lambda self, r: _row(self, {k: r[k] for k in _keep if k in r})",
        "protocol",
    ),
    "the probe scores are rewritten as quiet": (
        "_run = _child.run_probes\n"
        "def _quiet(*a, **k):\n"
        "    out = _run(*a, **k)\n"
        "    out['pr'] = {name: 0.0 for name in out.get('pr', {})}\n"
        "    return out\n"
        "_child.run_probes = _quiet",
        "protocol",  # the top probe, re-scored, is named from the server's view of the scores
    ),
    "every row is sent as a plain run": (
        "import flash_mcp.harness.wire as _wire\n"
        "_child.packed = lambda rows: [{'run': [r['i'], 1], 'b': _wire._scores_text([r.get('gold', 1.0),"
        " r.get('junk', 0.0), 0.0, 0.0])} for r in rows]",
        "protocol",
    ),
    "the audit's judgement says resisted": (
        "_audit.Audit.result = lambda self, algorithm: None\n"
        "_probes.exploit_level = lambda *a, **k: None\n"
        "_strictness.Strictness.result = lambda self: None",
        "same",
    ),
}


@pytest.fixture
async def client(settings) -> AsyncIterator[Client]:
    from flash_mcp.server import build_server

    async with Client(build_server(settings)) as connected:
        yield connected


async def _report(client: Client, workspace: Path, name: str, patch: str) -> dict:
    scorer = OPEN["substring"]
    source = scorer.source().replace("\nclass Env(", REACH + patch + "\n\n\nclass Env(", 1)
    seeds.make_project(workspace, name, source, scorer.rows(ROWS))
    return await call(client, "test_environment", directory=name, config=f"{name}/configs/rl.toml")


def _opened(report: dict) -> set[str]:
    return {f["family"] for f in report["audit"]["families"] if f["status"] == "open"}


@pytest.mark.parametrize("name", PATCHES)
async def test_patching_the_harness_in_the_environments_process_cannot_pass_it(
    client: Client, workspace: Path, name: str
) -> None:
    honest = await _report(client, workspace, "honest", "")
    patch, outcome = PATCHES[name]
    report = await _report(client, workspace, "hostile", patch)
    assert honest["verdict"] == "fail" and _opened(honest) == OPEN["substring"].open
    assert report["verdict"] == "fail", report["summary"]
    if outcome == "protocol":
        assert "broke the results protocol" in report["stopped"], report["summary"]
        assert "due every probe" in report["stopped"] or "not those it was due" in report["stopped"]
    else:
        assert _opened(report) == _opened(honest) and "can be gamed" in report["summary"]
        padded = next(f for f in report["audit"]["families"] if f["family"] == "several-answers")
        assert padded["example"]["response"], "the example text is the server's own build, not the child's"


def test_the_server_decides_which_rows_were_due_every_probe() -> None:
    tally = Tally(rows_total=1000)
    cheap = {"i": 0, "id": "example_000000", "ok": True, "gold": 1.0, "junk": 0.0, "pr": {"near": 0.0, "several": 0.0}}
    with pytest.raises(ProtocolError, match="due every probe"):
        ProbeCheck(time.monotonic()).check(dict(cheap), tally)
    spent = ProbeCheck(time.monotonic() - probes.PROBE_BUDGET_S - 1)
    for index in range(probes.MIN_FULL_ROWS):
        with pytest.raises(ProtocolError, match="due every probe"):  # the first rows are due, budget or not
            spent.check(dict(cheap, i=index), tally)
    assert spent.check(dict(cheap, i=probes.MIN_FULL_ROWS), tally)["pr"], "a spent budget leaves the cheap probes"
    with pytest.raises(ProtocolError, match="not due them"):
        ProbeCheck(time.monotonic()).check(dict(cheap, i=65, g2=1.0), tally)


def test_a_run_of_plain_rows_is_refused_at_the_row_due_every_probe() -> None:
    tally, stride = Tally(rows_total=100_000), probes.spread(100_000)
    plain = [index for index in range(stride + 1, 2 * stride)]
    ProbeCheck(time.monotonic()).plain(plain, tally)  # none of these rows is sampled: nothing was due
    with pytest.raises(ProtocolError, match=f"row {2 * stride} was due every probe"):
        ProbeCheck(time.monotonic()).plain([*plain, 2 * stride, 2 * stride + 1], tally)
    tally.audit.multi = True
    with pytest.raises(ProtocolError, match=f"row {stride + 1} was due every probe"):
        ProbeCheck(time.monotonic()).plain(plain, tally)  # a multi-turn row has no cheap probes to report

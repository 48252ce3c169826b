"""The spend gate's rules as plain functions over the in-memory plane (planes/memory.py): no server, no process."""

from __future__ import annotations

from pathlib import Path

import pytest

from flash_mcp.core.advice import human_command
from flash_mcp.core.errors import BudgetRefusal, UserError
from flash_mcp.core.settings import ServerSettings
from flash_mcp.loop import launch, push, scaffold
from flash_mcp.loop.gate import Gate, environment_digest, environment_unchanged
from flash_mcp.planes.memory import MemoryPlane

CONFIG = "p/configs/sft.toml"


@pytest.fixture
def plane(isolated_home: Path) -> MemoryPlane:
    return MemoryPlane(isolated_home)


@pytest.fixture
def gate(settings: ServerSettings, plane: MemoryPlane) -> Gate:
    return Gate(settings.home, plane, settings.workspace.root)


@pytest.fixture
def pushed(settings: ServerSettings, plane: MemoryPlane) -> str:
    scaffold.setup_project(settings.workspace, "p", project=None, multi_turn=False, reasoning=False)
    return push.push_environment(settings.workspace, plane, "p", "starter", None, True).environment_id


def test_a_quote_over_max_run_usd_is_refused_naming_the_setting(gate: Gate) -> None:
    with pytest.raises(BudgetRefusal, match=r"over max_run_usd \$50\.00; nothing was launched"):
        gate.check_budget(50.01)


def test_the_concurrency_limit_counts_the_planes_active_runs_not_its_finished_ones(
    gate: Gate, plane: MemoryPlane
) -> None:
    plane.add_run("theirs-1", "running")
    plane.add_run("old", "done")
    gate.check_budget(1.0)  # one active run, max_concurrent_runs 2
    plane.add_run("theirs-2", "queued")
    with pytest.raises(BudgetRefusal, match="2 runs are active on the memory plane"):
        gate.check_budget(1.0)
    gate.check_budget(1.0, concurrency=False)


def test_an_unpushed_environment_has_no_digest_and_an_edited_one_is_no_longer_unchanged(
    settings: ServerSettings, plane: MemoryPlane, pushed: str
) -> None:
    with pytest.raises(UserError, match="has not been pushed to the memory plane"):
        environment_digest(plane, "memory/default/other")
    assert environment_digest(plane, pushed) == plane.pushes[pushed].digest
    assert environment_unchanged(plane, pushed)
    environment = settings.workspace.root / "p" / "environment.py"
    environment.write_text(environment.read_text() + "\n# edited\n")
    assert not environment_unchanged(plane, pushed)
    with pytest.raises(UserError, match="changed on disk since the push"):
        launch.prepare_launch(settings, plane, Gate(settings.home, plane, settings.workspace.root), CONFIG, {})


def test_a_billing_plane_asks_the_human_and_a_launch_without_a_question_leaves_a_proposal(
    settings: ServerSettings, plane: MemoryPlane, gate: Gate, pushed: str
) -> None:
    ready = launch.prepare_launch(settings, plane, gate, CONFIG, {})
    assert ready.paid and ready.approval_reason == "[approval] mode is always"
    report = launch.decide(gate, ready, can_ask=False, approved=False, client={})
    assert report.status == "awaiting_approval" and plane.calls["submit"] == 0
    assert report.approve_command == human_command("approve", report.proposal.id)


def test_an_approved_launch_submits_once_and_a_repeat_returns_the_same_run(
    settings: ServerSettings, plane: MemoryPlane, gate: Gate, pushed: str
) -> None:
    ready = launch.prepare_launch(settings, plane, gate, CONFIG, {})
    first = launch.decide(gate, ready, can_ask=True, approved=True, client={})
    again = launch.decide(gate, launch.prepare_launch(settings, plane, gate, CONFIG, {}), can_ask=True,
                          approved=True, client={})  # fmt: skip
    assert (first.status, again.status) == ("launched", "existing_run")
    assert first.run_id == again.run_id and plane.calls["submit"] == 1


def test_one_launch_reads_the_push_record_once(
    settings: ServerSettings, plane: MemoryPlane, gate: Gate, pushed: str
) -> None:
    plane.calls.clear()
    launch.prepare_launch(settings, plane, gate, CONFIG, {})
    assert plane.calls["pushed"] == 1

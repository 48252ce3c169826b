"""`evaluate` on the flash plane, as `flash env eval` 1.3.28 does it, against the real control plane in hosted
mode: the deployment gated (a proposal approved with `flash-mcp approve`, or the human asked in the client) and
audited, answers from /v1/runs/{id}/chat scored here by the environment, the same evaluation record as a
local one, the deployment undeployed at the end (also when Flash refuses mid-way), Flash's refusals surfaced.

Stood in for, beyond tests/flashplane/hosted.py: the serving backend, where the control plane leaves its
process (`flash.serve.deployment.deploy.deploy_adapter`, `chat`, `undeploy_adapter` and the readiness smoke);
FLASH_DEPLOY_SYNC=1 makes the control plane run its deployment job inside the deploy request, as Flash's own
tests do.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from mcp import Client
from mcp.types import ElicitResult

from flash_mcp.core.advice import human_command
from flash_mcp.core.settings import ServerSettings
from flash_mcp.domain.approval.store import ApprovalStore
from flash_mcp.server import build_server
from tests.conftest import PROJECT, call, call_error
from tests.flashplane.conftest import MODEL
from tests.flashplane.hosted import USER_KEY, HostedPlane, hosted_plane_fixture  # noqa: F401 - the fixture
from tests.local.conftest import CONSTANT_ENV, TERMINAL

pytestmark = pytest.mark.anyio
ROWS = 4  # held-out rows "Is 100..103 a number?"; the served model says "yes" to the even ones
LOOKS_FOR_KEYS = """
import os as _os
_seen = [name for name in ("FREESOLO_API_KEY", "FREESOLO_INTERNAL_KEY", "HF_TOKEN") if _os.environ.get(name)]
with open(_os.path.join(_os.path.dirname(__file__), "keys_seen"), "a") as _out:
    _out.write(",".join(_seen) or "none")
"""


class Serving:
    """The serving backend as the control plane calls it: registers and verifies adapters, answers, unloads."""

    def __init__(self) -> None:
        self.deployed: list[str] = []
        self.undeployed: list[str] = []
        self.chats: list[dict[str, Any]] = []
        self.on_chat: Any = None  # called before each answer
        self.thinking = False  # answer as a thinking model: reasoning that names the other answer, then the answer

    def deploy_adapter(self, original, run_id, model, hf_repo, adapter_prefix, *, dry_run=False, checkpoint_step=None,
                       before_register=None, before_ready=None, **kw):  # fmt: skip
        import flash.serve.deployment.deploy as serving_deploy

        if dry_run:
            return original(run_id, model, hf_repo, adapter_prefix, dry_run=True, checkpoint_step=checkpoint_step, **kw)
        dep = serving_deploy.deployment_record(run_id, model, adapter_prefix, state="deploying",
                                               checkpoint_step=checkpoint_step)  # fmt: skip
        dep.deployment_generation = "gen-1"
        before_ready(serving_deploy.DeploymentReadinessFacts(dep.checkpoint_id, dep.checkpoint_id, frozenset(), False))
        self.deployed.append(dep.checkpoint_id)
        dep.state = "ready"
        return dep

    def chat(self, *, run_id: str, messages: list[dict], max_tokens: int, temperature: float, **_: Any) -> dict:
        self.chats.append({"checkpoint": run_id, "messages": messages, "max_tokens": max_tokens})
        if self.on_chat:
            self.on_chat()
        number = int(messages[-1]["content"].split()[1])
        text = "yes" if number % 2 == 0 else "no idea"
        if self.thinking:
            text = f"<think>\nnot '{'no' if text == 'yes' else 'yes'}'\n</think>\n\n{text}"
        return {"choices": [{"message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                "usage": {"completion_tokens": len(text.split())}, "freesolo": {"checkpoint_id": run_id}}  # fmt: skip

    def undeploy_adapter(self, checkpoint_id: str, *, org_id: str, timeout_s: float | None = None) -> dict:
        self.undeployed.append(checkpoint_id)
        return {"serving_deregistered": True}


@pytest.fixture
def serving(hosted_plane: HostedPlane, monkeypatch: pytest.MonkeyPatch) -> Serving:
    import flash.serve.deployment.deploy as serving_deploy
    from flash.server.routes import serving_smoke

    stand_in = Serving()
    original = serving_deploy.deploy_adapter
    monkeypatch.setenv("FLASH_DEPLOY_SYNC", "1")
    monkeypatch.setattr(serving_deploy, "deploy_adapter", lambda *a, **k: stand_in.deploy_adapter(original, *a, **k))
    monkeypatch.setattr(serving_deploy, "chat", stand_in.chat)
    monkeypatch.setattr(serving_deploy, "undeploy_adapter", stand_in.undeploy_adapter)
    monkeypatch.setattr(serving_deploy, "fetch_registered_checkpoint", lambda *a, **k: None)
    monkeypatch.setattr(serving_smoke, "_run_deployment_smoke", lambda *a, **k: {"verified_at": time.time()})
    return stand_in


@asynccontextmanager
async def connected(world: HostedPlane, settings: ServerSettings, human=None) -> AsyncIterator[Client]:
    server = build_server(settings, plane_factory=lambda: world.plane(settings.home))
    async with Client(server, elicitation_callback=human) if human else Client(server) as client:
        yield client


def raw(world: HostedPlane, method: str, path: str) -> Any:
    http = httpx.Client(transport=world.transport, base_url="http://flash.test")
    return http.request(method, path, headers={"Authorization": f"Bearer {USER_KEY}"}).json()


async def trained_run(
    client: Client, world: HostedPlane, workspace: Path, code: str = "", **config: Any
) -> tuple[str, str]:
    """A pushed constant-answer environment with a held-out split, and a finished RL run on it."""
    await call(client, "setup_project", directory="p", project=PROJECT)
    project = workspace / "p"
    (project / "environment.py").write_text(CONSTANT_ENV + code, encoding="utf-8")
    rows = [{"input": f"Is {i} a number?", "output": "yes"} for i in range(100, 100 + ROWS)]
    (project / "dataset" / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    await call(client, "edit_config", config="p/configs/rl.toml", set={"model": MODEL, "train.max_steps": 2, **config})
    await call(client, "push_environment", name="math", directory="p")
    launched = await call(client, "launch_training", config="p/configs/rl.toml")
    world.worker.finish()
    with anyio.fail_after(60):
        run = await call(client, "get_run", run_id=launched["run_id"])
        while run["state"] != "done":
            run = await call(client, "get_run", run_id=launched["run_id"], wait_s=5)
    return "p/configs/rl.toml", launched["run_id"]


async def finished(client: Client, eval_id: str) -> dict:
    with anyio.fail_after(120):
        while True:
            found = await call(client, "get_evaluation", eval_id=eval_id, wait_s=30, rows_limit=50)
            if found["state"] in TERMINAL:
                return found


async def test_a_proposal_approved_with_the_cli_deploys_once_scores_from_chat_and_undeploys(
    hosted_plane: HostedPlane, serving: Serving, flash_settings: ServerSettings, workspace: Path,
    monkeypatch: pytest.MonkeyPatch, capsys,
) -> None:  # fmt: skip
    world, home = hosted_plane, flash_settings.home
    async with connected(world, flash_settings) as client:
        config, run_id = await trained_run(client, world, workspace, LOOKS_FOR_KEYS)
        target = f"{run_id}/final"
        asked = await call_error(client, "evaluate", config=config, target=target, max_tokens=8)
        assert "flash-mcp approve prop-" in asked and "Nothing was deployed" in asked, asked
        proposal_id = asked.split("flash-mcp approve ")[1].split("`")[0]
        again = await call_error(client, "evaluate", config=config, target=target, max_tokens=8)
        assert proposal_id in again  # a repeat returns the same proposal
        assert serving.deployed == [] and not serving.chats
        listed = await call(client, "list_proposals")
        [shown] = [p for p in listed["proposals"] if p["id"] == proposal_id]
        assert shown["kind"] == "deployment" and shown["run"]["deploy"] == target
        assert shown["quote_label"].startswith("unknown")

        import flash_mcp.planes
        from flash_mcp.cli import main

        monkeypatch.setattr(flash_mcp.planes, "make_plane", lambda settings: world.plane(settings.home))
        capsys.readouterr()
        assert await anyio.to_thread.run_sync(lambda: main(["approve", proposal_id, "--yes"])) == 0
        assert f"approved {proposal_id}" in capsys.readouterr().out

        started = await call(client, "evaluate", config=config, target=target, max_tokens=8)
        done = await finished(client, started["eval_id"])
        once_more = await call_error(client, "evaluate", config=config, target=target, max_tokens=8)

    assert done["state"] == "done", done
    assert done["spec"]["plane"] == "flash" and done["spec"]["adapter"] == target
    assert done["summary"]["n_rows"] == ROWS and done["summary"]["mean_reward"] == 0.5
    assert [r["completion"] for r in done["rows"]] == ["yes", "no idea", "yes", "no idea"]
    seen = (home / "evals" / done["eval_id"] / "package" / "keys_seen").read_text()
    assert seen == "nonenone"  # loaded to render, then to score: never with a key in its environment
    assert [r["row_id"] for r in done["rows"]] == [f"test:example_00000{i}" for i in range(ROWS)]
    assert serving.deployed == [target] and serving.undeployed == [target]
    assert {c["checkpoint"] for c in serving.chats} == {target} and serving.chats[0]["max_tokens"] == 8
    assert raw(world, "GET", f"/v1/runs/{run_id}/deploy?checkpoint_id={target}")["state"] == "undeployed"
    assert "flash-mcp approve prop-" in once_more and proposal_id not in once_more  # an approval is used once
    events = [e for e in ApprovalStore(home).audit_events() if e.get("kind") == "deployment" or "deployment" in e]
    assert [e["event"] for e in events] == ["propose", "approve", "evaluate", "deploy", "undeploy", "propose"]
    assert events[1]["how"] == "cli" and events[2]["how"] == f"proposal {proposal_id}"


async def test_the_human_accepts_in_the_client_and_a_refusal_mid_way_still_undeploys(
    hosted_plane: HostedPlane, serving: Serving, flash_settings: ServerSettings, workspace: Path
) -> None:
    world, asked = hosted_plane, []

    async def human(context, params):
        asked.append(params.message)
        return ElicitResult(action="accept", content={"approve": True})

    async with connected(world, flash_settings, human) as client:
        config, run_id = await trained_run(client, world, workspace)
        target = f"{run_id}/final"
        chat = ("POST", f"/v1/runs/{run_id}/chat")
        world.transport.refuse_next[chat] = lambda request: httpx.Response(
            409, json={"detail": f"checkpoint {target} has not passed a successful deployment smoke"}
        )
        started = await call(client, "evaluate", config=config, target=target)
        failed = await finished(client, started["eval_id"])
        accepted = await call(client, "evaluate", config=config, target=target)
        done = await finished(client, accepted["eval_id"])

    assert len(asked) == 2 and target in asked[0] and "per token" in asked[0] and "unknown" in asked[0]
    assert failed["state"] == "failed" and "Flash answered HTTP 409" in failed["error"], failed
    assert "deployment smoke" in failed["error"] and failed["rows"] == []
    assert done["state"] == "done" and done["summary"]["mean_reward"] == 0.5
    assert serving.deployed == [target, target] and serving.undeployed == [target, target]
    events = [e["event"] for e in ApprovalStore(flash_settings.home).audit_events() if "deployment" in e]
    assert events == ["approve", "evaluate", "deploy", "undeploy"] * 2
    assert ApprovalStore(flash_settings.home).audit_events()[-4]["how"] == "elicitation"


async def test_a_thinking_run_is_scored_on_the_answer_after_think_as_flash_env_eval_does(
    hosted_plane: HostedPlane, serving: Serving, flash_settings: ServerSettings, workspace: Path
) -> None:
    """`flash env eval` 1.3.28 strips `<think>` (up to the last `</think>`) before scoring when the run was
    trained with thinking = true, and records the raw answer; unstripped, every row here would score 0."""

    async def human(context, params):
        return ElicitResult(action="accept", content={"approve": True})

    serving.thinking = True
    async with connected(hosted_plane, flash_settings, human) as client:
        config, run_id = await trained_run(client, hosted_plane, workspace, model="Qwen/Qwen3.5-4B", thinking=True)
        started = await call(client, "evaluate", config=config, target=f"{run_id}/final")
        done = await finished(client, started["eval_id"])
    assert done["state"] == "done", done
    assert [r["score"] for r in done["rows"]] == [1.0, 0.0, 1.0, 0.0] and done["summary"]["mean_reward"] == 0.5
    assert done["rows"][0]["completion"] == "<think>\nnot 'no'\n</think>\n\nyes"  # recorded raw


async def test_refusals_reach_the_agent_and_deploy_nothing(
    hosted_plane: HostedPlane, serving: Serving, flash_settings: ServerSettings, workspace: Path
) -> None:
    world = hosted_plane
    async with connected(world, flash_settings) as client:
        config, run_id = await trained_run(client, world, workspace)
        missing = await call_error(client, "evaluate", config=config, target=f"{run_id}/step-7")
        unknown = await call_error(client, "evaluate", config=config, target="flash-nope/final")
    assert "Flash answered HTTP 404" in missing and "no deployable checkpoint at step 7" in missing
    assert "Flash answered HTTP 404" in unknown
    assert serving.deployed == [] and not serving.chats
    assert ApprovalStore(flash_settings.home).list() == []


async def test_base_proposes_the_one_step_baseline_run_and_the_cli_approval_submits_it(
    hosted_plane: HostedPlane, serving: Serving, flash_settings: ServerSettings, workspace: Path,
    monkeypatch: pytest.MonkeyPatch, capsys,
) -> None:  # fmt: skip
    """No base-model endpoint on Flash: target='base' launches a one-step lr-1e-9 run through launch_training's
    gate (here: every paid run needs the human, and the client cannot ask, so a proposal), nothing deployed."""
    world, home = hosted_plane, flash_settings.home
    async with connected(world, flash_settings) as client:
        config, trained = await trained_run(client, world, workspace)
        (home / "settings.toml").write_text("[budget]\nmax_run_usd = 50.0\n", encoding="utf-8")  # the defaults
        asked = await call(client, "evaluate", config=config, target="base", max_rows=3, max_tokens=8)
        again = await call(client, "evaluate", config=config, target="base", max_rows=3, max_tokens=8)
        proposal = asked["proposal"]
        assert asked["eval_id"] is None and asked["state"] == "awaiting_approval" and asked["baseline_run"] is None
        assert again["proposal"]["id"] == proposal["id"]  # a repeat returns the same proposal
        assert asked["approve_command"] == human_command("approve", proposal["id"])
        assert proposal["kind"] == "launch" and proposal["overrides"] == {
            "train.max_steps": 1, "train.learning_rate": 1e-9
        }, proposal  # fmt: skip
        assert "no base-model endpoint" in asked["notes"][0] and "B matrix at zero" in asked["notes"][0]
        assert any("target='RUN/final', split='test', max_rows=3" in step and "max_tokens=8" in step
                   for step in asked["next"]), asked["next"]  # fmt: skip

        import flash_mcp.planes
        from flash_mcp.cli import main

        monkeypatch.setattr(flash_mcp.planes, "make_plane", lambda settings: world.plane(settings.home))
        capsys.readouterr()
        assert await anyio.to_thread.run_sync(lambda: main(["approve", proposal["id"], "--yes"])) == 0
        said = capsys.readouterr().out
        runs = await call(client, "list_runs")
    [baseline] = [run["run_id"] for run in runs["runs"] if run["run_id"] != trained and run["state"] != "dry_run"]
    assert f"submitted {baseline} on the flash plane" in said and '"train.max_steps": 1' in said, said
    spec = raw(world, "GET", f"/v1/runs/{baseline}")["spec"]
    assert spec["train"]["max_steps"] == 1 and spec["train"]["learning_rate"] == 1e-9, spec["train"]
    assert serving.deployed == [] and not serving.chats
    events = [e["event"] for e in ApprovalStore(home).audit_events()]
    assert events[-3:] == ["propose", "approve", "submit"], events


async def test_base_asks_the_human_in_the_client_and_launches_the_baseline_run(
    hosted_plane: HostedPlane, serving: Serving, flash_settings: ServerSettings, workspace: Path
) -> None:
    world, home, asked = hosted_plane, flash_settings.home, []

    async def human(context, params):
        asked.append(params.message)
        return ElicitResult(action="accept", content={"approve": True})

    async with connected(world, flash_settings, human) as client:
        config, trained = await trained_run(client, world, workspace)
        (home / "settings.toml").write_text("[budget]\nmax_run_usd = 50.0\n", encoding="utf-8")  # the defaults
        launched = await call(client, "evaluate", config=config, target="base", split="test", seed=3)
        again = await call(client, "evaluate", config=config, target="base", split="test", seed=3)
    run = launched["baseline_run"]
    assert launched["eval_id"] is None and run and run != trained and launched["proposal"] is None
    assert again["baseline_run"] == run and len(asked) == 1  # the same launch minutes later: no second run
    assert "one-step run with learning_rate 1e-9" in asked[0] and "Quote $" in asked[0], asked[0]
    assert any(f"target='{run}/final', split='test'" in step and "seed=3" in step for step in launched["next"])
    spec = raw(world, "GET", f"/v1/runs/{run}")["spec"]
    assert spec["train"]["max_steps"] == 1 and spec["train"]["learning_rate"] == 1e-9
    events = [e for e in ApprovalStore(home).audit_events() if e["event"] in ("approve", "submit")]
    assert events[-2]["how"] == "elicitation" and events[-1]["run_id"] == run, events
    assert serving.deployed == []


async def test_a_cancel_mid_way_keeps_the_answered_rows_and_undeploys(
    hosted_plane: HostedPlane, serving: Serving, flash_settings: ServerSettings, workspace: Path
) -> None:
    from flash_mcp.loop import evaluate as use_case

    world, home = hosted_plane, flash_settings.home

    async def human(context, params):
        return ElicitResult(action="accept", content={"approve": True})

    def cancel_at_second_answer() -> None:  # the agent's cancel_evaluation, arriving while row 2 is answered
        if len(serving.chats) == 2:
            [eval_id] = [entry.name for entry in (home / "evals").iterdir() if entry.is_dir()]
            use_case.cancel_evaluation(home, eval_id)

    async with connected(world, flash_settings, human) as client:
        config, run_id = await trained_run(client, world, workspace)
        serving.on_chat = cancel_at_second_answer
        started = await call(client, "evaluate", config=config, target=f"{run_id}/final")
        cancelled = await finished(client, started["eval_id"])
    assert cancelled["state"] == "cancelled", cancelled
    assert [r["completion"] for r in cancelled["rows"]] == ["yes", "no idea"] and len(serving.chats) == 2
    assert serving.undeployed == [f"{run_id}/final"]

"""Use case: evaluate a checkpoint on the Flash plane, as `flash env eval` 1.3.28 does: the checkpoint served
through the control plane (`/v1/runs/{id}/deploy`, `/v1/runs/{id}/chat`), the rows rendered and scored here
by the environment (in the sandbox, which never sees the API key), written with the same record as a local
evaluation, and the deployment it made undeployed at the end, whatever happened.

A deployment bills per token and Flash quotes no price for it, so the quote is unknown and deploying always
needs the human: asked in the client (elicitation), or a stored proposal of kind `deployment` that
`flash-mcp approve` marks approved; the agent's next `evaluate` with the same arguments uses it once. The
daily and monthly budgets must still have room. Every step is in the audit trail.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flash_mcp.core.advice import human_command
from flash_mcp.core.errors import UserError
from flash_mcp.core.settings import ServerSettings
from flash_mcp.domain.evaluation.record import (
    CANCEL,
    EvalSpec,
    Evaluation,
    eval_dir,
    new_eval_id,
    parse_target,
    read_spec,
    update_status,
    write_json,
    write_spec,
)
from flash_mcp.domain.packaging.package import build_package, current_digest
from flash_mcp.loop import evaluate as local
from flash_mcp.loop.gate import Gate, file_digest
from flash_mcp.planes.base import Plane
from flash_mcp.sandbox import SandboxSpec, kill_tree, launch, python_argv, sandbox_settings

QUOTE_LABEL = "unknown: Flash bills a deployment per token and quotes no price for it"
READY_WAIT_S, READY_POLL_S = 20 * 60.0, 5.0
CHILD_TIMEOUT_S = 600.0
PROMPTS, ANSWERS = "prompts.jsonl", "answers.jsonl"  # flash_mcp/jobs/evaluator/remote.py writes and reads them


@dataclass(frozen=True)
class FlashEval:
    """Everything checked before a decision: what would be deployed, for which rows, with what."""

    request: local.EvalRequest
    config: local.ConfigView
    checkpoint: str
    environment_id: str
    environment_digest: str
    source: Path
    fingerprint: str
    thinking: bool = False  # the run's own `thinking`: the CLI strips <think> before scoring only then

    def question(self) -> str:
        return (
            f"Deploy {self.checkpoint} on the Flash plane to evaluate it on {self.request.suite or self.request.split} "
            f"(max_rows {self.request.max_rows or 'all'}, max_tokens {self.request.sampling.max_tokens}, "
            f"{self.request.sampling.samples_per_row} sample(s) per row)? Flash bills the deployment per token and "
            "gives no price, so the cost is unknown. It is undeployed when the evaluation ends."
        )


def base_refusal(config: str) -> str:
    return (
        "target='base' on the flash plane deploys nothing: Flash serves trained adapters only (no base-model "
        "endpoint), so the evaluate tool launches the baseline instead (loop/evaluate_baseline.py: a one-step run "
        f"with train.max_steps 1 and train.learning_rate 1e-9 from '{config}', gated like launch_training); "
        "evaluate its RUN/final with the same split, max_rows and sampling once it is done"
    )


def plan(settings: ServerSettings, plane: Plane, request: local.EvalRequest) -> FlashEval:
    """Validate the config, the target and the push; ask Flash (a free deploy dry run) whether it can serve it."""
    config = local.load_config(settings, request.config)
    try:
        run_id, _ = parse_target(request.target)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if run_id is None:
        raise UserError(base_refusal(request.config))
    checkpoint = request.target.strip()
    spec = config.spec
    env_id = spec["environment"]["id"]
    push = getattr(plane, "pushed", lambda _: None)(env_id)
    if push is None:
        raise UserError(
            f"{env_id} was not pushed from here; evaluation scores with the environment's own code, so push it "
            "with push_environment (the run must train on that id)"
        )
    if not _unchanged(Path(push.source), push.digest, settings.home):
        raise UserError(f"the environment pushed as {env_id} changed on disk since the push; push it again")
    run = plane.get_run(run_id)
    if run.model != spec["model"]:
        raise UserError(f"{run_id} trained {run.model} but the config names {spec['model']}; use the run's config")
    if run.environment_id and run.environment_id != env_id:
        raise UserError(f"{run_id} trained on {run.environment_id}, the config names {env_id}; use the run's config")
    plane.deploy(checkpoint, dry_run=True)  # Flash's own refusal (run state, checkpoint, model) surfaces here
    run_spec = getattr(plane, "spec", lambda _: {})(run_id)
    thinking = bool(run_spec.get("thinking")) if isinstance(run_spec, dict) else False  # as `flash env eval`
    facts = {"plane": plane.name, "kind": "deployment", "checkpoint": checkpoint, "config": config.path,
             "environment": push.digest, "split": request.split, "suite": request.suite,
             "max_rows": request.max_rows, "sampling": request.sampling.model_dump()}  # fmt: skip
    fingerprint = hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()
    return FlashEval(request, config, checkpoint, env_id, push.digest, Path(push.source), fingerprint, thinking)


def _unchanged(source: Path, digest: str, home: Path) -> bool:
    try:
        return current_digest(source, exclude=(home,)) == digest
    except (UserError, OSError):
        return False


def approved_already(gate: Gate, ready: FlashEval) -> bool:
    return gate.store.approved_for(ready.fingerprint) is not None


# -- the decision --------------------------------------------------------------------------------


def authorize(gate: Gate, ready: FlashEval, *, can_ask: bool, approved: bool, client: dict[str, Any]) -> str:
    """How the deployment was approved ('cli' proposal or 'elicitation'), or a refusal naming the next step."""
    gate.check_budget(0.0, concurrency=False)  # no price to add: the totals must still have room
    found = gate.store.approved_for(ready.fingerprint)
    if found is not None:
        gate.store.settle(found.id, "submitted", ready.checkpoint)
        return f"proposal {found.id}"
    if can_ask and approved:
        gate.store.audit("approve", how="elicitation", kind="deployment", deployment=ready.checkpoint,
                         config=ready.config.path, quote_usd=None, client=client)  # fmt: skip
        return "elicitation"
    if can_ask:
        gate.store.audit("decline", how="elicitation", kind="deployment", deployment=ready.checkpoint,
                         config=ready.config.path, client=client)  # fmt: skip
        raise UserError(f"not evaluated: the human declined deploying {ready.checkpoint}; nothing was deployed")
    proposal = gate.store.pending_for(ready.fingerprint) or _propose(gate, ready, client)
    raise UserError(
        f"deploying {ready.checkpoint} bills per token and Flash gives no price, so the human must approve it: "
        f"ask them to run `{human_command('approve', proposal.id)}`, then call evaluate again with the same "
        "arguments. "
        "Nothing was deployed"
    )


def _propose(gate: Gate, ready: FlashEval, client: dict[str, Any]):
    config_file = gate.workspace_root / ready.config.path
    proposal = gate.store.propose(
        fingerprint=ready.fingerprint, plane="flash", workspace=str(gate.workspace_root), config=ready.config.path,
        request=json.dumps({"checkpoint": ready.checkpoint, "target": ready.request.target}), quote_usd=0.0,
        quote_label=QUOTE_LABEL, account=None, config_digest=file_digest(config_file),
        environment_id=ready.environment_id, environment_digest=ready.environment_digest,
        details={"kind": "deployment", "run": {"deploy": ready.checkpoint, "split": ready.request.split,
                                               "suite": ready.request.suite, "max_rows": ready.request.max_rows,
                                               "sampling": ready.request.sampling.model_dump()}},
    )  # fmt: skip
    gate.store.audit("propose", proposal_id=proposal.id, kind="deployment", deployment=ready.checkpoint,
                     config=ready.config.path, quote_usd=None, client=client)  # fmt: skip
    return proposal


# -- starting and driving ------------------------------------------------------------------------


def start(settings: ServerSettings, plane: Plane, gate: Gate, ready: FlashEval, how: str) -> Evaluation:
    """Write the evaluation (same record as a local one), then drive it on a thread of this server."""
    request = ready.request
    if request.suite:
        split, row_ids, params = f"suite:{request.suite}", [], local.environment_params(ready.config.spec, None)
    else:
        split = request.split
        params = local.environment_params(ready.config.spec, request.split)
    eval_id = new_eval_id()
    directory = eval_dir(settings.home, eval_id)
    package = build_package(ready.source, "evaluation", exclude=(settings.home,))
    for relative, data in package.members:
        target = directory / "package" / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    if not request.suite:
        row_ids = local.held_out_rows(directory / "package", request.split, request.max_rows)
    spec = EvalSpec(
        eval_id=eval_id, target=request.target, plane="flash", config=ready.config.path,
        model=ready.config.spec["model"], adapter=ready.checkpoint, environment_id=ready.environment_id,
        environment_digest=ready.environment_digest, split=split, row_ids=row_ids, sampling=request.sampling,
    )  # fmt: skip
    write_spec(directory, spec)
    write_json(directory / local.JOB, {"entrypoint": str(directory / "package" / "environment.py"), "params": params,
                                 "max_rows": request.max_rows, "thinking": ready.thinking})  # fmt: skip
    note = f"deployment approved by {how}; the cost is billed per token by Flash (no quote)"
    update_status(directory, remote=True, driver_pid=os.getpid(), notes=[note])
    gate.store.audit("evaluate", eval_id=eval_id, deployment=ready.checkpoint, how=how, config=ready.config.path)
    threading.Thread(target=drive, args=(plane, gate, directory, ready.checkpoint), daemon=True,
                     name=f"evaluate-{eval_id}").start()  # fmt: skip
    return local.read_evaluation(settings.home, eval_id)


def drive(plane: Plane, gate: Gate, directory: Path, checkpoint: str) -> None:
    """Render, deploy (unless already served), chat, score; undeploy what this deployed, even on failure."""
    deployed, outcome = False, {"state": "failed", "stage": "error"}
    try:
        update_status(directory, state="running", stage="rendering", started_at=time.time())
        child(directory, "render")
        prompts = [json.loads(line) for line in (directory / PROMPTS).read_text(encoding="utf-8").splitlines()]
        if plane.deployment(checkpoint).state != "ready":
            update_status(directory, stage="deploying")
            deployed = True
            gate.store.audit("deploy", deployment=checkpoint, eval_id=directory.name)
            await_ready(plane, checkpoint, plane.deploy(checkpoint).state)
        answers = converse(plane, directory, checkpoint, prompts)
        with (directory / ANSWERS).open("w", encoding="utf-8") as handle:
            handle.write("".join(json.dumps(answer) + "\n" for answer in answers))
        update_status(directory, stage="scoring")
        child(directory, "score")
        cancelled = (directory / CANCEL).exists()
        outcome = {"state": "cancelled" if cancelled else "done", "stage": "cancelled" if cancelled else "done"}
    except BaseException as exc:  # the evaluation's verdict, whatever happened
        outcome["error"] = f"{exc}"[:2000] if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}"[:2000]
        if (directory / CANCEL).exists():
            outcome.update(state="cancelled", stage="cancelled")
    finally:
        if deployed:
            outcome.update(undeploy(plane, gate, directory, checkpoint))
        update_status(directory, **outcome, finished_at=time.time())


def await_ready(plane: Plane, checkpoint: str, state: str) -> None:
    deadline = time.monotonic() + READY_WAIT_S
    while state != "ready":
        if state not in ("deploying",):
            found = plane.deployment(checkpoint)
            raise UserError(f"Flash could not deploy {checkpoint}: {found.state}: {found.error or found.detail}")
        if time.monotonic() > deadline:
            raise UserError(f"{checkpoint} was not ready after {READY_WAIT_S:.0f}s")
        getattr(plane, "wait", time.sleep)(READY_POLL_S)
        state = plane.deployment(checkpoint).state


def converse(plane: Plane, directory: Path, checkpoint: str, prompts: list[dict]) -> list[dict]:
    """Every row's answers from /chat. Flash's refusal (4xx) ends the evaluation; a serving failure is one
    errored answer."""
    spec = read_spec(directory)
    assert spec is not None
    sampling, answers = spec.sampling, []
    update_status(directory, stage="generating", total=len(prompts) * sampling.samples_per_row, done=0)
    for prompt in prompts:
        for sample in range(sampling.samples_per_row):
            if (directory / CANCEL).exists():
                return answers
            answers.append(answer(plane, checkpoint, prompt, sample, sampling))
        update_status(directory, done=len(answers))
    return answers


def answer(plane: Plane, checkpoint: str, prompt: dict, sample: int, sampling: Any) -> dict:
    base = {"row_id": prompt["row_id"], "sample": sample}
    if prompt.get("error"):
        return {**base, "error": prompt["error"]}
    try:
        got = plane.chat(checkpoint, prompt["messages"], temperature=sampling.temperature,
                         max_tokens=sampling.max_tokens)  # fmt: skip
    except UserError as exc:
        status = getattr(exc, "status", None)
        if status is not None and 400 <= status < 500:
            raise
        return {**base, "error": f"generation failed: {exc}"[:500]}
    return {**base, "text": got.text, "tokens": got.tokens, "truncated": got.truncated}


def undeploy(plane: Plane, gate: Gate, directory: Path, checkpoint: str) -> dict[str, Any]:
    try:
        plane.undeploy(checkpoint)
    except Exception as exc:  # reported, never hidden: the deployment may still bill
        gate.store.audit("undeploy_failed", deployment=checkpoint, eval_id=directory.name, error=str(exc)[:500])
        return {"undeploy_error": f"{checkpoint} may still be deployed and billing: {exc}"[:1000]}
    gate.store.audit("undeploy", deployment=checkpoint, eval_id=directory.name)
    return {"undeployed": checkpoint}


def child(directory: Path, mode: str) -> None:
    """The environment's half (flash_mcp/jobs/evaluator/remote.py), in the sandbox: a clean environment (no key),
    no network, writing only its evaluation directory."""
    home = directory.parent.parent  # FLASH_MCP_HOME/evals/<eval_id>
    policy = sandbox_settings(home)
    with (directory / "log").open("ab") as log:
        process = launch(
            SandboxSpec(
                python_argv("flash_mcp.jobs.evaluator.remote", mode, str(directory)),
                read_write=[directory], env={"PYTHONUNBUFFERED": "1"}, limits=policy.limits, cwd=directory,
                stdout=log, allow_unsandboxed=policy.allow_unsandboxed, state_dir=home,
            )
        )  # fmt: skip
        try:
            code = process.wait(CHILD_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            kill_tree(process)
            raise RuntimeError(f"the environment took over {CHILD_TIMEOUT_S:.0f}s while {mode}ing") from None
    if code:
        tail = (directory / "log").read_text(encoding="utf-8", errors="replace")[-800:]
        raise RuntimeError(f"the environment failed while {mode}ing (exit {code}): {tail}")


def start_evaluation(
    settings: ServerSettings, plane: Plane, gate: Gate | None, request: local.EvalRequest, *,
    can_ask: bool = False, approved: bool = False, client: dict[str, Any] | None = None,
) -> Evaluation:  # fmt: skip
    """Either plane: local evaluations run here; on Flash the deployment is gated, then driven."""
    if plane.name != "flash":
        return local.start_evaluation(settings, plane, request)
    assert gate is not None
    ready = plan(settings, plane, request)
    how = authorize(gate, ready, can_ask=can_ask, approved=approved, client=client or {})
    return start(settings, plane, gate, ready, how)

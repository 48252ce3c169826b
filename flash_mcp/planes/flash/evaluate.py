"""A checkpoint evaluated on the Flash plane, as `flash env eval` 1.3.28 does: served through the control plane
(`/v1/runs/{id}/deploy`, `/v1/runs/{id}/chat`), the rows rendered and scored here by the environment (in the
sandbox, which never sees the API key), written with the same record as a local evaluation, and the deployment
it made undeployed at the end, whatever happened. The approval of the deployment is loop/evaluate_flash.py's."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Protocol

from flash_mcp.core.errors import NotPushed, StalePush, UserError
from flash_mcp.domain import job_files, lifecycle
from flash_mcp.domain.approval.store import ApprovalStore
from flash_mcp.domain.evaluation.record import (
    CANCEL,
    EvalSpec,
    eval_dir,
    new_eval_id,
    parse_target,
    read_spec,
    update_status,
    write_json,
    write_spec,
)
from flash_mcp.domain.evaluation.request import (
    JOB,
    ConfigView,
    EvalApproval,
    EvalRequest,
    environment_params,
    held_out_rows,
)
from flash_mcp.domain.packaging.package import build_package
from flash_mcp.planes.base import ChatAnswer, Deployment, Plane
from flash_mcp.sandbox import SandboxSpec, kill_tree, launch, python_argv, sandbox_settings, spawned


class FlashPlane(Plane, Protocol):
    """What a Flash-plane evaluation needs of its plane (planes/flash/plane.py): serving too."""

    home: Path

    def deploy(self, checkpoint_id: str, *, dry_run: bool = False) -> Deployment: ...
    def deployment(self, checkpoint_id: str) -> Deployment: ...
    def undeploy(self, checkpoint_id: str) -> Deployment: ...
    def chat(self, checkpoint_id: str, messages: list[dict], *, temperature: float, max_tokens: int) -> ChatAnswer: ...


READY_WAIT_S, READY_POLL_S = 20 * 60.0, 5.0
CHILD_TIMEOUT_S = 600.0
PROMPTS, ANSWERS = "prompts.jsonl", "answers.jsonl"  # flash_mcp/jobs/evaluator/remote.py writes and reads them


def base_refusal(config: str) -> str:
    return (
        "target='base' on the flash plane deploys nothing: Flash serves trained adapters only (no base-model "
        "endpoint), so the evaluate tool launches the baseline instead (loop/evaluate_baseline.py: a one-step run "
        f"with train.max_steps 1 and train.learning_rate 1e-9 from '{config}', gated like launch_training); "
        "evaluate its RUN/final with the same split, max_rows and sampling once it is done"
    )


def plan(plane: FlashPlane, config: ConfigView, request: EvalRequest) -> EvalApproval:
    """Check the target and the push; ask Flash (a free deploy dry run) whether it can serve it."""
    try:
        run_id, _ = parse_target(request.target)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if run_id is None:
        raise UserError(base_refusal(request.config))
    checkpoint = request.target.strip()
    spec = config.spec
    env_id = spec["environment"]["id"]
    push = plane.pushed(env_id)
    if push is None:
        why = "evaluation scores with the environment's own code, pushed from here; the run must train on that id"
        raise NotPushed(env_id, "flash", why)
    if not plane.push_unchanged(push):
        raise StalePush(env_id)
    run = plane.get_run(run_id)
    if run.model != spec["model"]:
        raise UserError(f"{run_id} trained {run.model} but the config names {spec['model']}; use the run's config")
    if run.environment_id and run.environment_id != env_id:
        raise UserError(f"{run_id} trained on {run.environment_id}, the config names {env_id}; use the run's config")
    plane.deploy(checkpoint, dry_run=True)  # Flash's own refusal (run state, checkpoint, model) surfaces here
    run_spec = plane.spec(run_id)
    thinking = bool(run_spec.get("thinking")) if isinstance(run_spec, dict) else False  # as `flash env eval`
    facts = {"plane": plane.name, "kind": "deployment", "checkpoint": checkpoint, "config": config.path,
             "environment": push.digest, "split": request.split, "suite": request.suite,
             "max_rows": request.max_rows, "sampling": request.sampling.model_dump()}  # fmt: skip
    fingerprint = hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()
    return EvalApproval(
        request=request, config=config, checkpoint=checkpoint, environment_id=env_id, environment_digest=push.digest,
        source=Path(push.source), fingerprint=fingerprint, question=question(request, checkpoint), plane=plane.name,
        thinking=thinking,
    )  # fmt: skip


def question(request: EvalRequest, checkpoint: str) -> str:
    return (
        f"Deploy {checkpoint} on the Flash plane to evaluate it on {request.suite or request.split} "
        f"(max_rows {request.max_rows or 'all'}, max_tokens {request.sampling.max_tokens}, "
        f"{request.sampling.samples_per_row} sample(s) per row)? Flash bills the deployment per token and "
        "gives no price, so the cost is unknown. It is undeployed when the evaluation ends."
    )


# -- starting and driving ------------------------------------------------------------------------


def start(plane: FlashPlane, store: ApprovalStore, ready: EvalApproval, how: str) -> str:
    """Write the evaluation (same record as a local one), then drive it on a thread of this server."""
    request = ready.request
    if request.suite:
        split, row_ids, params = f"suite:{request.suite}", [], environment_params(ready.config.spec, None)
    else:
        split = request.split
        params = environment_params(ready.config.spec, request.split)
    eval_id = new_eval_id()
    directory = eval_dir(plane.home, eval_id)
    package = build_package(ready.source, "evaluation", exclude=(plane.home,))
    for relative, data in package.members:
        target = directory / "package" / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    if not request.suite:
        row_ids = held_out_rows(directory / "package", request.split, request.max_rows)
    spec = EvalSpec(
        eval_id=eval_id, target=request.target, plane="flash", config=ready.config.path,
        model=ready.config.spec["model"], adapter=ready.checkpoint, environment_id=ready.environment_id,
        environment_digest=ready.environment_digest, split=split, row_ids=row_ids, sampling=request.sampling,
    )  # fmt: skip
    write_spec(directory, spec)
    write_json(directory / JOB, {"entrypoint": str(directory / "package" / "environment.py"), "params": params,
                                 "max_rows": request.max_rows, "thinking": ready.thinking})  # fmt: skip
    note = f"deployment approved by {how}; the cost is billed per token by Flash (no quote)"
    lifecycle.write_record(directory, lifecycle.JobRecord(spawned(os.getpid()), time.time(), driver=True))
    update_status(directory, remote=True, notes=[note])
    store.audit("evaluate", eval_id=eval_id, deployment=ready.checkpoint, how=how, config=ready.config.path)
    threading.Thread(target=drive, args=(plane, store, directory, ready.checkpoint), daemon=True,
                     name=f"evaluate-{eval_id}").start()  # fmt: skip
    return eval_id


def drive(plane: FlashPlane, store: ApprovalStore, directory: Path, checkpoint: str) -> None:
    """Render, deploy (unless already served), chat, score; undeploy what this deployed, even on failure."""
    deployed, outcome = False, {"state": "failed", "stage": "error"}
    try:
        update_status(directory, state="running", stage="rendering", started_at=time.time())
        child(directory, "render")
        prompts = [json.loads(line) for line in (directory / PROMPTS).read_text(encoding="utf-8").splitlines()]
        if plane.deployment(checkpoint).state != "ready":
            update_status(directory, stage="deploying")
            deployed = True
            store.audit("deploy", deployment=checkpoint, eval_id=directory.name)
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
            outcome.update(undeploy(plane, store, directory, checkpoint))
        update_status(directory, **outcome, finished_at=time.time())
        quota = sandbox_settings(directory.parent.parent).job_disk_bytes  # FLASH_MCP_HOME/evals/<eval_id>
        notes = job_files.settle_evaluation(directory, quota)
        lifecycle.record_end(directory, outcome["state"], outcome.get("error"), notes)


def await_ready(plane: FlashPlane, checkpoint: str, state: str) -> None:
    deadline = time.monotonic() + READY_WAIT_S
    while state != "ready":
        if state not in ("deploying",):
            found = plane.deployment(checkpoint)
            raise UserError(f"Flash could not deploy {checkpoint}: {found.state}: {found.error or found.detail}")
        if time.monotonic() > deadline:
            raise UserError(f"{checkpoint} was not ready after {READY_WAIT_S:.0f}s")
        plane.wait(READY_POLL_S)
        state = plane.deployment(checkpoint).state


def converse(plane: FlashPlane, directory: Path, checkpoint: str, prompts: list[dict]) -> list[dict]:
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


def answer(plane: FlashPlane, checkpoint: str, prompt: dict, sample: int, sampling: Any) -> dict:
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


def undeploy(plane: FlashPlane, store: ApprovalStore, directory: Path, checkpoint: str) -> dict[str, Any]:
    try:
        plane.undeploy(checkpoint)
    except Exception as exc:  # reported, never hidden: the deployment may still bill
        store.audit("undeploy_failed", deployment=checkpoint, eval_id=directory.name, error=str(exc)[:500])
        return {"undeploy_error": f"{checkpoint} may still be deployed and billing: {exc}"[:1000]}
    store.audit("undeploy", deployment=checkpoint, eval_id=directory.name)
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

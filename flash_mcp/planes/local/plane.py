"""The local plane: push to FLASH_MCP_HOME, train in a detached trainer process, read the run directory."""

from __future__ import annotations

import importlib.util
import os
import secrets
import time
from pathlib import Path
from typing import Any

from flash_mcp.core.errors import UserError
from flash_mcp.core.human_settings import load_human_settings, settings_file
from flash_mcp.domain.approval.store import ApprovalStore
from flash_mcp.domain.config.fidelity import unmapped_notes
from flash_mcp.domain.config.steps import planned_steps
from flash_mcp.domain.config.validate import count_rows
from flash_mcp.domain.evaluation.request import ConfigView, EvalApproval, EvalRequest
from flash_mcp.domain.packaging.package import build_package, normalize_name
from flash_mcp.domain.project import safe_fs
from flash_mcp.domain.project.files import read_chunk
from flash_mcp.domain.project.preflight import MAX_SOURCE_BYTES
from flash_mcp.domain.project.secrets import read_secrets
from flash_mcp.domain.runs import rundir
from flash_mcp.planes.base import (
    TERMINAL,
    Checkpoint,
    DryRun,
    Identity,
    LogWindow,
    PushRecord,
    PushResult,
    Quote,
    RunView,
    SubmitRequest,
)
from flash_mcp.planes.local import evaluate, jobs
from flash_mcp.planes.local.capabilities import CAPABILITIES
from flash_mcp.planes.local.models import LocalModel, local_device, resolve_model, resolve_teacher
from flash_mcp.planes.local.store import Store
from flash_mcp.planes.local.warm_start import warm_start_adapter
from flash_mcp.sandbox import kill_tree, launch_job, launch_worker, model_tree, remove_scratch, sandbox_settings

LOCAL_EXTRA = ("torch", "transformers", "trl", "peft", "datasets", "accelerate")
DEFAULT_PROJECT = "default"


class LocalPlane:
    name = "local"
    capabilities = CAPABILITIES

    def __init__(self, home: Path):
        self.home = home
        self.store = Store(home / "state.db")
        self.runs_dir = home / "runs"
        self.envs_dir = home / "envs"

    # -- identity and pushes -------------------------------------------------------------------

    def identity(self) -> Identity:
        detail = {"home": str(self.home), "device": local_device()}
        return Identity(plane=self.name, who=f"this machine ({os.uname().nodename})", detail=detail)

    def push(self, project: Path, name: str, project_id: str | None) -> PushResult:
        slug = normalize_name(name)
        if slug is None:
            raise UserError(f"environment name {name!r} has no usable letters or digits; use e.g. 'math-env'")
        package = build_package(project, slug, exclude=(self.home,))
        target = self.envs_dir / package.digest
        if not target.exists():
            staging = self.envs_dir / f".{package.digest}.{secrets.token_hex(4)}"
            for relative, data in package.members:
                path = staging / relative
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
            staging.rename(target)
        environment_id = f"local/{project_id or DEFAULT_PROJECT}/{slug}"
        self.store.add_push(
            PushRecord(
                environment_id=environment_id,
                digest=package.digest,
                source=str(project),
                created_at=time.time(),
                package=str(target),
                files=len(package.members),
                bytes=package.total_bytes,
            )
        )
        return PushResult(
            plane=self.name,
            environment_id=environment_id,
            digest=package.digest,
            files=len(package.members),
            bytes=package.total_bytes,
            packaged=package.listing(),
        )

    def pushed(self, environment_id: str) -> PushRecord | None:
        return self.store.latest_push(environment_id)

    def push_unchanged(self, record: PushRecord) -> bool:
        return record.unchanged(exclude=(self.home,))

    def wait(self, seconds: float) -> None:
        time.sleep(seconds)

    # -- dry run and submit -------------------------------------------------------------------

    def dry_run(self, request: SubmitRequest) -> DryRun:
        """Refuses what `submit` would refuse, so a dry run that passes is a launch that starts."""
        spec = request.spec
        self._refuse_unsupported(spec, self._dataset_base(request))
        warm_start_adapter(spec["train"].get("init_from_adapter"), self.checkpoints)
        rows = self._rows(request)
        steps = planned_steps(spec["algorithm"], spec["train"], rows or 0) if rows is not None else None
        notes = [*unmapped_notes(spec, request.authored_train_keys), local_device()]
        tokens = None
        model = None
        try:
            model = resolve_model(spec["model"], load_human_settings(self.home).local.stand_in_model)
            trained, notes = model.label, notes + model.notes
            tokens = self._tokens(request, model.path)
        except UserError as exc:
            trained, notes = None, [*notes, str(exc)]
        teacher = self._teacher(spec, model)  # without one an OPD run cannot start: refused, not noted
        notes += teacher.notes if teacher else []
        wall_time, basis = self._wall_time(trained, steps)
        if trained and steps:
            notes.append(basis or "no earlier finished local run of this model to estimate wall time from")
        return DryRun(
            plane=self.name,
            rows=rows,
            steps=steps,
            tokens=tokens,
            wall_time_s=wall_time,
            trained_model=trained,
            quote=Quote(plane=self.name, usd=0.0, label="local compute is free"),
            notes=notes,
        )

    def submit(self, request: SubmitRequest) -> RunView:
        spec = request.spec
        push = request.push or self.pushed(request.environment_id)
        if push is None:
            raise UserError(f"{request.environment_id} was never pushed locally; call push_environment first")
        self._refuse_unsupported(spec, Path(push.package))
        model = resolve_model(spec["model"], load_human_settings(self.home).local.stand_in_model)
        teacher = self._teacher(spec, model)
        adapter = warm_start_adapter(spec["train"].get("init_from_adapter"), self.checkpoints)
        run_id = f"local-{int(time.time())}-{secrets.token_hex(4)}"
        run_dir = self.runs_dir / run_id
        run_dir.mkdir(parents=True)
        notes = [*model.notes, *(teacher.notes if teacher else []), *unmapped_notes(spec, request.authored_train_keys),
                 local_device()]  # fmt: skip
        job = {
            "run_id": run_id,
            "run_dir": str(run_dir),
            "spec": spec,
            "entrypoint": str(Path(push.package) / "environment.py"),
            "model_path": str(model.path),
            "config": request.config_path,
            "init_adapter_path": str(adapter) if adapter else None,
            "teacher_path": str(teacher.path) if teacher else None,
        }
        rundir.write_json(run_dir / rundir.JOB, job)
        rundir.write_json(run_dir / rundir.STATUS, {"state": "queued", "stage": "queued"})
        now = time.time()
        self.store.add_run(
            {
                "run_id": run_id, "state": "queued", "algorithm": spec["algorithm"], "model": spec["model"],
                "trained_model": model.label, "config": request.config_path,
                "environment_id": spec["environment"]["id"], "created_at": now, "updated_at": now,
                "notes": notes, "run_dir": str(run_dir), "job": job,
            }
        )  # fmt: skip
        declared = spec["environment"].get("secrets") or []
        run_secrets = read_secrets(declared, [Path(push.project)]) if declared else {}
        read_only = [model_tree(Path(model.path)), *([adapter] if adapter else [])]
        read_only += [model_tree(teacher.path)] if teacher else []
        spawned, scratch = _spawn_trainer(self.home, run_dir, Path(push.package), read_only, run_secrets)
        self.store.update_run(run_id, pid=spawned.pid, pid_start=spawned.start, worker_scratch=scratch)
        return self.get_run(run_id)

    def _teacher(self, spec: dict[str, Any], student: LocalModel | None) -> LocalModel | None:
        """For OPD, the teacher the run distils from, on this machine (checked against the student when known)."""
        if spec["algorithm"] != "opd":
            return None
        teachers = load_human_settings(self.home).local.teachers
        name = spec["train"].get("teacher_model")
        return resolve_teacher(name, teachers, settings_file(self.home), student.path if student else None)

    @staticmethod
    def _refuse_unsupported(spec: dict[str, Any], environment: Path) -> None:
        """What no local run can rehearse: training without the local extra, and multi-turn OPD (local distillation
        plays single-turn prompts; `environment` holds the environment.py to check)."""
        missing = [name for name in LOCAL_EXTRA if importlib.util.find_spec(name) is None]
        if missing:
            raise UserError(
                f"local training needs {', '.join(missing)}: install the local extra "
                "(pip install torch==2.13.0 && pip install 'flash-mcp[local]')"
            )
        entry = environment / "environment.py"
        if spec["algorithm"] != "opd" or not safe_fs.is_regular(entry):
            return
        if b"EnvironmentMultiTurn" in safe_fs.read_bytes(entry, MAX_SOURCE_BYTES, "environment.py"):
            raise UserError(
                "multi-turn OPD cannot be rehearsed locally (local distillation plays single-turn prompts only); "
                "rehearse this environment with grpo locally, or launch the OPD run with plane='flash'"
            )

    def _dataset_base(self, request: SubmitRequest) -> Path:
        """Where the run's dataset lives: the pushed package if there is one, else the project."""
        push = request.push or self.pushed(request.environment_id)
        return Path(push.package) if push and push.package else request.project_dir

    def _rows(self, request: SubmitRequest) -> int | None:
        rows = count_rows(self._dataset_base(request), request.environment_params)
        cap = request.spec["train"].get("max_examples")
        return min(rows, cap) if rows is not None and cap else rows

    def _tokens(self, request: SubmitRequest, model_path: Path) -> int | None:
        """Input + gold-output tokens over the training rows, with the model's own tokenizer."""
        tokenizer_file = model_path / "tokenizer.json"
        if not tokenizer_file.is_file() or importlib.util.find_spec("tokenizers") is None:
            return None
        from tokenizers import Tokenizer

        from flash_mcp.domain.project.dataset import first_rows, gold_text

        base = self._dataset_base(request)
        split = request.environment_params.get("split") or "train"
        path = base / "dataset" / f"{split}.jsonl"
        if not path.is_file():
            return None
        rows = first_rows(path, request.spec["train"].get("max_examples") or None)
        texts = [f"{r.value.get('input', '')}\n{gold_text(r.value)}" for r in rows if isinstance(r.value, dict)]
        tokenizer = Tokenizer.from_file(str(tokenizer_file))
        return sum(len(encoding.ids) for encoding in tokenizer.encode_batch(texts))

    def _wall_time(self, trained: str | None, steps: int | None) -> tuple[float | None, str | None]:
        """Start-up plus seconds per step, both measured on the latest finished local run of the same model
        (a run's first minutes are imports and model loading, so one rate per step would overestimate)."""
        if not trained or not steps:
            return None, None
        runs, _ = self.store.list_runs("done", 20, 0)
        for run in runs:
            if run["trained_model"] == trained and run["finished_at"]:
                timing = jobs.run_timing(run)
                if timing is not None:
                    startup, per_step = timing
                    estimate = round(startup + per_step * steps, 1)
                    basis = (
                        f"wall time ~{estimate:.0f} s: {startup:.0f} s start-up + {per_step:.2f} s/step x {steps} "
                        f"steps, as measured on {run['run_id']}"
                    )
                    return estimate, basis
        return None, None

    rescore = evaluate.rescore  # evaluation: planes/local/evaluate.py

    def plan_evaluation(self, config: ConfigView, request: EvalRequest) -> EvalApproval | None:
        return None  # the evaluator runs here: nothing to approve

    def start_evaluation(self, config: ConfigView, request: EvalRequest, approval: EvalApproval | None,
                         store: ApprovalStore | None, how: str) -> str:  # fmt: skip
        return evaluate.start(self, config, request)

    # -- reading runs -------------------------------------------------------------------------

    def list_runs(self, state: str | None, limit: int, offset: int) -> tuple[list[RunView], int]:
        rows, total = self.store.list_runs(state, limit, offset)
        return [self._view(self._refresh(row)) for row in rows], total

    def get_run(self, run_id: str) -> RunView:
        return self._view(self._refresh(self._row(run_id)))

    def run_ids(self, prefix: str, limit: int = 20) -> list[str]:
        return self.store.run_ids(prefix, limit)

    def read_logs(self, run_id: str, offset: int, max_bytes: int) -> LogWindow:
        path = self._dir(run_id) / rundir.LOG
        size = path.lstat().st_size if path.is_file() and not path.is_symlink() else 0  # the trainer's to replace
        if offset > size:
            raise UserError(f"offset {offset} is past the end of the log ({size} bytes)")
        if size == 0 or max_bytes == 0:
            return LogWindow(run_id=run_id, offset=offset, next_offset=offset, size=size, text="", more=offset < size)
        chunk = read_chunk(path, offset, max_bytes)
        end = chunk.next_offset if chunk.next_offset is not None else chunk.size
        return LogWindow(
            run_id=run_id, offset=offset, next_offset=end, size=chunk.size, text=chunk.text, more=end < size
        )

    def spec(self, run_id: str) -> dict[str, Any]:
        """The spec the run was launched with: the server's sealed copy, never the trainer's job.json."""
        job = self._row(run_id)["job"]
        return job.get("spec", {}) if isinstance(job, dict) else {}

    def metrics(self, run_id: str) -> list[dict[str, Any]]:
        return jobs.metric_rows(self._dir(run_id))

    def samples(self, run_id: str, step: int | None) -> list[dict[str, Any]]:
        rows = rundir.read_jsonl(self._dir(run_id) / rundir.SAMPLES)
        return [row for row in rows if step is None or row.get("step") == step]

    def checkpoints(self, run_id: str) -> list[Checkpoint]:
        base = self._dir(run_id) / rundir.CHECKPOINTS
        found = []
        # The trainer writes this folder: only real step-N folders count (no symlink, no odd name).
        steps = [p for p in base.glob("step-*") if p.name[5:].isdigit() and p.is_dir() and not p.is_symlink()]
        for path in sorted(steps, key=lambda p: int(p.name[5:])):
            found.append(Checkpoint(id=f"{run_id}/{path.name}", step=int(path.name[5:]), path=str(path)))
        if (base / "final").is_dir() and not (base / "final").is_symlink():
            found.append(Checkpoint(id=f"{run_id}/final", step=None, path=str(base / "final")))
        return found

    def guard_proposals(self, status: str | None) -> list[dict[str, Any]]:
        return []  # no spend guard holds this plane's runs

    def cancel(self, run_id: str) -> RunView:
        row = self._refresh(self._row(run_id))
        if row["state"] not in TERMINAL:
            jobs.cancel(self.store, row)
        return self.get_run(run_id)

    # -- internals ----------------------------------------------------------------------------

    def _row(self, run_id: str) -> dict[str, Any]:
        row = self.store.get_run(run_id)
        if row is None:
            raise UserError(f"no local run {run_id!r}; list_runs shows the runs on this plane")
        return row

    def _dir(self, run_id: str) -> Path:
        return Path(self._row(run_id)["run_dir"])

    def _refresh(self, row: dict[str, Any]) -> dict[str, Any]:
        return jobs.refresh(self.store, row, sandbox_settings(self.home).job_disk_bytes)

    def _view(self, row: dict[str, Any]) -> RunView:
        return jobs.view(self.name, row)


def _spawn_trainer(home: Path, run_dir: Path, package: Path, read_only: list[Path | str], run_secrets: dict[str, str]):
    """The run's environment worker on the pushed package (with the run's declared secrets) and the trainer beside
    it, both detached in the sandbox under the human's training limits. The trainer reads the model (and a warm
    start's adapter), writes only its run directory, has no network and runs no agent code; it alone holds the
    worker's pipe ends, so when it ends the worker sees EOF and exits. (spawned trainer, the worker's scratch: the
    server removes it at the end)."""
    worker = launch_worker(home, package, limits="training", secrets=run_secrets, detached=True)
    fds = (worker.to_worker, worker.from_worker)
    try:
        spawned = launch_job(home, "flash_mcp.jobs.trainer", run_dir, read_only, pass_fds=fds,
                             args=[str(fd) for fd in fds])  # fmt: skip
    except BaseException:
        kill_tree(worker.process)
        remove_scratch(worker.scratch)
        raise
    finally:
        worker.close()
    return spawned, str(worker.scratch)

"""Validate a training config: Flash's verdict, the mistakes that waste a run, and the resolved spec.

Every finding names its dotted key in `where`. Errors are Flash's refusals (code `config-invalid`), and the
fit and data checks Flash would fail the run on; warnings are accepted by Flash. A warning of severity
`waste` certainly wastes a paid run (it fails, or trains on nothing useful): check_project and a launch
treat it as an error.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flash_mcp.core.errors import UserError
from flash_mcp.core.findings import Finding, Severity
from flash_mcp.domain.config import catalog
from flash_mcp.domain.config.fit import fit_problem, flash_available
from flash_mcp.domain.config.resolve import ResolvedSpec, apply_overrides, resolve
from flash_mcp.domain.config.rules import INVALID, Checker, Parsed
from flash_mcp.domain.project import safe_fs
from flash_mcp.domain.project.dataset import count_file_rows, dataset_file, params_problems
from flash_mcp.domain.project.secrets import secret_available

MAX_CONFIG_BYTES = 1024 * 1024

HIGH_LEARNING_RATE = 1e-5


@dataclass
class Validation:
    errors: list[Finding] = field(default_factory=list)
    warnings: list[Finding] = field(default_factory=list)
    resolved: ResolvedSpec | None = None

    @property
    def valid(self) -> bool:
        return not self.errors

    @property
    def waste(self) -> list[Finding]:
        """The warnings that certainly waste a paid run: errors before anything is quoted or launched."""
        return [w for w in self.warnings if w.severity == "waste"]


def load_toml(path: Path, label: str | None = None) -> dict[str, Any]:
    """Parse a config file (a regular file, opened by descriptor); a syntax error is one refusal."""
    return read_config(path, label)[1]


def read_config(path: Path, label: str | None = None) -> tuple[str, dict[str, Any]]:
    """A config file's text and its parsed TOML, from one read."""
    label = label or path.name
    if safe_fs.lstat(path, label) is None:
        raise UserError(f"config {label} does not exist; setup_project scaffolds configs/sft.toml")
    try:
        text = safe_fs.read_text(path, MAX_CONFIG_BYTES, label)
        return text, tomllib.loads(text)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{label} is not valid TOML: {exc}; fix the syntax first") from None


def validate_raw(
    raw: dict[str, Any],
    *,
    overrides: dict[str, Any] | None = None,
    project_required: bool = False,
    project_dir: Path | None = None,
) -> Validation:
    try:
        merged = apply_overrides(raw, overrides or {})
    except ValueError as exc:
        fix = "override a key inside a table, e.g. train.epochs"
        return Validation(errors=[Finding(code="overrides-invalid", message=str(exc), fix=fix, where="overrides")])
    checker = Checker(merged, project_required=project_required)
    parsed = checker.run()
    errors = checker.errors + _outside_data(merged)
    if not errors:
        problem = fit_problem(
            merged,
            model=parsed.model,
            algorithm=parsed.algorithm,
            thinking=parsed.thinking,
            warm_start=parsed.train.get("init_from_adapter", ""),
        )
        if problem:
            fix = "pick a larger gpu.type, raise gpu.count, or shrink the run"
            errors.append(Finding(code="gpu-fit", message=problem, fix=fix, where=_fit_key(problem)))
    result = Validation(errors=errors, resolved=resolve(parsed, merged))
    error_keys = {finding.where for finding in errors}
    result.warnings = _warnings(parsed, merged, result.resolved, project_dir, project_required, error_keys)
    return result


def _default_context_warning(algorithm: str, resolved_train: dict[str, Any]) -> Finding:
    """The config leaves max_context_tokens to the recipe: say which value applies and what it means."""
    context = resolved_train.get("max_context_tokens")
    completion = resolved_train.get("max_completion_tokens")
    if context and completion:
        budget = f"the {algorithm} default of {context} tokens applies: prompts over {context - completion} tokens "
        budget += f"({context} minus max_completion_tokens = {completion})"
    elif context:
        budget = f"the {algorithm} default of {context} tokens applies: prompts over it"
    else:
        budget = f"prompts longer than the {algorithm} prompt budget"
    return _warning(
        "context-default",
        "train.max_context_tokens",
        f"max_context_tokens is not set in the config, so {budget} are dropped, not truncated",
        "set max_context_tokens to cover your longest prompt plus max_completion_tokens",
    )


def _fit_key(message: str) -> str:
    for key in ("gpu.type", "gpu.count", "model"):
        if message.startswith(key) or (key == "model" and message.startswith("unsupported model")):
            return key
    return "gpu"


def _warnings(
    parsed: Parsed,
    raw: dict[str, Any],
    spec: ResolvedSpec,
    project_dir: Path | None,
    project_required: bool,
    error_keys: set[str],
) -> list[Finding]:
    found: list[Finding] = []
    train, algorithm = parsed.train, spec.algorithm
    rollout = algorithm in ("grpo", "opd")
    if rollout and not train.get("max_examples") and not train.get("max_steps"):
        found.append(
            _warning(
                "max-examples-missing",
                "train.max_examples",
                f"cannot price {algorithm} without a prompt-pool size: it sets neither [train] max_examples nor "
                "max_steps, so Flash's dry-run and launch fail",
                "set [train] max_examples to your row count (or set max_steps)",
                severity="waste",
            )
        )
    rows = count_rows(project_dir, spec.environment.get("params", {})) if project_dir else None
    if rows is not None and train.get("max_examples") and train["max_examples"] < rows:
        found.append(
            _warning(
                "max-examples-below-rows",
                "train.max_examples",
                f"max_examples = {train['max_examples']} trains on {train['max_examples']} of the {rows} rows "
                "in the dataset",
                f"set max_examples = {rows} (or 0 for every row) unless a subset is intended",
            )
        )
    if rollout and not train.get("max_context_tokens"):
        found.append(_default_context_warning(algorithm, spec.train))
    serving = catalog.MODELS.get(spec.model, catalog.MODELS[catalog.DEFAULT_MODEL]).max_model_len
    if train.get("max_context_tokens", 0) > serving:
        found.append(
            _warning(
                "context-over-model",
                "train.max_context_tokens",
                f"max_context_tokens = {train['max_context_tokens']} exceeds the model's serving context "
                f"({serving}): Flash refuses the run at submit",
                f"use at most {serving}",
                severity="waste",
            )
        )
    lr = spec.train.get("learning_rate") or 0
    if algorithm == "grpo" and train.get("kl_penalty_coef") == 0.0 and lr > HIGH_LEARNING_RATE:
        found.append(
            _warning(
                "kl-off-high-lr",
                "train.kl_penalty_coef",
                f"kl_penalty_coef = 0 with learning_rate {lr:g}: nothing holds the policy near the base model",
                f"keep learning_rate at or below {HIGH_LEARNING_RATE:g}, or set a small kl_penalty_coef",
            )
        )
    save_every = spec.train.get("save_every") or 20
    if algorithm == "opd" and 0 < (train.get("max_steps") or 0) < save_every and not train.get("save_at_steps"):
        found.append(
            _warning(
                "final-adapter-only",
                "train.save_at_steps",
                f"OPD checkpoints every {save_every} steps: this {train['max_steps']}-step run keeps only its "
                "final adapter",
                "set save_at_steps for intermediate checkpoints",
            )
        )
    if train.get("credit_assignment") == "per_turn":
        found.append(
            _warning(
                "per-turn-unverified",
                "train.credit_assignment",
                'credit_assignment = "per_turn" does nothing unless the environment emits per_turn_rewards metadata',
                "emit metadata['per_turn_rewards'] from score_episode, or use per_episode",
            )
        )
    if parsed.thinking and train.get("structured_outputs"):
        found.append(
            _warning(
                "structured-after-think",
                "train.structured_outputs",
                "with thinking = true, structured_outputs constrains only the answer after </think>",
                "set thinking = false to constrain from the first token",
            )
        )
    if not project_required and not parsed.project and "project" not in error_keys:
        found.append(
            _warning(
                "project-unset",
                "project",
                "project is unset: fine for a local rehearsal, but Flash needs it to push and train",
                'before moving to Flash, set project = "<your Freesolo project UUID>"',
            )
        )
    if raw.get("wandb") and not secret_available("WANDB_API_KEY", project_dir):
        found.append(
            _warning(
                "wandb-key-missing",
                "wandb",
                "WANDB_API_KEY is not in the environment or a .env file: the run will train with W&B logging disabled",
                "ask the human to export WANDB_API_KEY or add it to .env (never paste it into a tool)",
            )
        )
    if not flash_available():
        found.append(
            _warning(
                "gpu-fit-unchecked",
                "gpu",
                "GPU fit not checked locally (freesolo-flash is not installed); the plane's dry-run checks it",
                "pip install freesolo-flash==1.3.28 beside flash-mcp for the exact VRAM check",
            )
        )
    return found


def _warning(code: str, key: str, message: str, fix: str, severity: Severity = "warning") -> Finding:
    return Finding(code=code, severity=severity, message=message, fix=fix, where=key)


def _outside_data(raw: dict[str, Any]) -> list[Finding]:
    """[environment.params] paths that would read outside the project: refused before any run or test."""
    env = raw.get("environment") if isinstance(raw.get("environment"), dict) else {}
    params = env.get("params") if isinstance(env.get("params"), dict) else {}
    fix = "use a path relative to the project, e.g. 'dataset/train.jsonl'"
    return [Finding(code=INVALID, message=problem, fix=fix, where=key) for key, problem in params_problems(params)]


def count_rows(project_dir: Path, params: dict[str, Any]) -> int | None:
    """Rows in the split the config trains on, or None when there is no file (or its path is already an error).
    A dataset that is not a regular, singly linked file inside the project is refused."""
    if params_problems(params):
        return None
    path = dataset_file(project_dir, params)
    return count_file_rows(path, path.name) if path is not None else None

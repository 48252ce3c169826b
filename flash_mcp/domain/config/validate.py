"""Validate a training config: Flash's verdict, the mistakes that waste a run, and the resolved spec."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flash_mcp.core.errors import UserError
from flash_mcp.domain.config import catalog
from flash_mcp.domain.config.fit import fit_problem, flash_available
from flash_mcp.domain.config.resolve import ResolvedSpec, apply_overrides, resolve
from flash_mcp.domain.config.rules import Checker, Issue, Parsed
from flash_mcp.domain.project import safe_fs
from flash_mcp.domain.project.dataset import count_file_rows, dataset_file, params_problems
from flash_mcp.domain.project.secrets import secret_available

MAX_CONFIG_BYTES = 1024 * 1024

HIGH_LEARNING_RATE = 1e-5


@dataclass
class Validation:
    errors: list[Issue] = field(default_factory=list)
    warnings: list[Issue] = field(default_factory=list)
    resolved: ResolvedSpec | None = None

    @property
    def valid(self) -> bool:
        return not self.errors


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
        return Validation(errors=[Issue("overrides", str(exc), "override a key inside a table, e.g. train.epochs")])
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
            errors.append(
                Issue(_fit_key(problem), problem, "pick a larger gpu.type, raise gpu.count, or shrink the run")
            )
    result = Validation(errors=errors, resolved=resolve(parsed, merged))
    error_keys = {issue.key for issue in errors}
    result.warnings = _warnings(parsed, merged, result.resolved, project_dir, project_required, error_keys)
    return result


def _default_context_warning(algorithm: str, resolved_train: dict[str, Any]) -> Issue:
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
    return Issue(
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
) -> list[Issue]:
    found: list[Issue] = []
    train, algorithm = parsed.train, spec.algorithm
    rollout = algorithm in ("grpo", "opd")
    if rollout and not train.get("max_examples") and not train.get("max_steps"):
        found.append(
            Issue(
                "train.max_examples",
                f"cannot price {algorithm} without a prompt-pool size: Flash's dry-run and launch will fail",
                "set [train] max_examples to your row count (or set max_steps)",
            )
        )
    rows = count_rows(project_dir, spec.environment.get("params", {})) if project_dir else None
    if rows is not None and train.get("max_examples") and train["max_examples"] < rows:
        found.append(
            Issue(
                "train.max_examples",
                f"max_examples = {train['max_examples']} trains on {train['max_examples']} of the {rows} rows "
                "in the dataset",
                f"set max_examples = {rows} (or 0 for every row) unless a subset is intended",
            )
        )
    if rollout and not train.get("max_context_tokens"):
        found.append(_default_context_warning(algorithm, spec.train))
    if (
        train.get("max_context_tokens", 0)
        > catalog.MODELS.get(spec.model, catalog.MODELS[catalog.DEFAULT_MODEL]).max_model_len
    ):
        found.append(
            Issue(
                "train.max_context_tokens",
                "max_context_tokens exceeds the model's serving context (32768); Flash refuses it at submit",
                "use at most 32768",
            )
        )
    lr = spec.train.get("learning_rate") or 0
    if algorithm == "grpo" and train.get("kl_penalty_coef") == 0.0 and lr > HIGH_LEARNING_RATE:
        found.append(
            Issue(
                "train.kl_penalty_coef",
                f"kl_penalty_coef = 0 with learning_rate {lr:g}: nothing holds the policy near the base model",
                f"keep learning_rate at or below {HIGH_LEARNING_RATE:g}, or set a small kl_penalty_coef",
            )
        )
    save_every = spec.train.get("save_every") or 20
    if algorithm == "opd" and 0 < (train.get("max_steps") or 0) < save_every and not train.get("save_at_steps"):
        found.append(
            Issue(
                "train.save_at_steps",
                f"OPD checkpoints every {save_every} steps: this {train['max_steps']}-step run keeps only its "
                "final adapter",
                "set save_at_steps for intermediate checkpoints",
            )
        )
    if train.get("credit_assignment") == "per_turn":
        found.append(
            Issue(
                "train.credit_assignment",
                'credit_assignment = "per_turn" does nothing unless the environment emits per_turn_rewards metadata',
                "emit metadata['per_turn_rewards'] from score_episode, or use per_episode",
            )
        )
    if parsed.thinking and train.get("structured_outputs"):
        found.append(
            Issue(
                "train.structured_outputs",
                "with thinking = true, structured_outputs constrains only the answer after </think>",
                "set thinking = false to constrain from the first token",
            )
        )
    if not project_required and not parsed.project and "project" not in error_keys:
        found.append(
            Issue(
                "project",
                "project is unset: fine for a local rehearsal, but Flash needs it to push and train",
                'before moving to Flash, set project = "<your Freesolo project UUID>"',
            )
        )
    if raw.get("wandb") and not secret_available("WANDB_API_KEY", project_dir):
        found.append(
            Issue(
                "wandb",
                "WANDB_API_KEY is not in the environment or a .env file: the run will train with W&B logging disabled",
                "ask the human to export WANDB_API_KEY or add it to .env (never paste it into a tool)",
            )
        )
    if not flash_available():
        found.append(
            Issue(
                "gpu",
                "GPU fit not checked locally (freesolo-flash is not installed); the plane's dry-run checks it",
                "pip install freesolo-flash==1.3.28 beside flash-mcp for the exact VRAM check",
            )
        )
    return found


def _outside_data(raw: dict[str, Any]) -> list[Issue]:
    """[environment.params] paths that would read outside the project: refused before any run or test."""
    env = raw.get("environment") if isinstance(raw.get("environment"), dict) else {}
    params = env.get("params") if isinstance(env.get("params"), dict) else {}
    return [Issue(key, problem, "use a path relative to the project, e.g. 'dataset/train.jsonl'")
            for key, problem in params_problems(params)]  # fmt: skip


def count_rows(project_dir: Path, params: dict[str, Any]) -> int | None:
    """Rows in the split the config trains on, or None when there is no file (or its path is already an error).
    A dataset that is not a regular, singly linked file inside the project is refused."""
    if params_problems(params):
        return None
    path = dataset_file(project_dir, params)
    return count_file_rows(path, path.name) if path is not None else None

"""Flash 1.3.28's config rules (flash/schema, flash/core/spec.py), collected rather than raised.

Flash stops at the first problem; this checker walks the same rules in the same order and keeps
going where later rules do not depend on an earlier failure, so an agent can fix everything in
one pass. Messages use Flash's own wording; every issue names its dotted key and a fix.
"""

from __future__ import annotations

import difflib
import json
import math
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from flash_mcp.domain.config import catalog
from flash_mcp.domain.config.env_ids import is_environment_id
from flash_mcp.domain.config.schema import (
    ENVIRONMENT_KEYS,
    GPU_KEYS,
    TABLES,
    TOP_LEVEL_KEYS,
    TRAIN_KNOBS,
    WANDB_KEYS,
)
from flash_mcp.domain.config.structured_outputs import canonical_structured_outputs, structured_problem

MAX_SEED = 2**63 - 1
_RESERVED_SECRETS = frozenset(
    {
        "MODAL_TOKEN_ID", "MODAL_TOKEN_SECRET", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "GITHUB_TOKEN",
        "FREESOLO_API_KEY", "FREESOLO_INTERNAL_KEY", "RUN_ID", "HF_REPO", "GIT_ASKPASS", "FLASH_ARM", "SEED",
        "FLASH_OPD_RESUME_REVISION", "FLASH_PUBLIC_URL", "FLASH_TEACHER_CAPABILITY", "FLASH_SECRET_ENV_KEYS",
        "PARASAIL_API_KEY",
    }
)  # fmt: skip
_GRPO_RESERVED_SECRETS = frozenset(
    {"OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS", "RAYON_NUM_THREADS",
     "TOKENIZERS_PARALLELISM"}
)  # fmt: skip
_CHECKPOINT_REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}/(?:final|step-(?:0|[1-9][0-9]{0,17}))$")
_PIP_USERINFO = re.compile(r"://[^/@\s]+@")
_PIP_QUERY = re.compile(r"://[^\s]*\?")
# Keys an algorithm rejects by name, before values are parsed (Flash's algorithm-only keys).
_ALGORITHM_ONLY = {"batch_size": ("sft",), "prompts_per_step": ("grpo", "opd")}
# Keys an algorithm rejects when their value differs from the default, with Flash's reason.
_INAPPLICABLE: dict[str, dict[str, str]] = {
    "sft": {
        "structured_outputs": "only applies to rollout algorithms (grpo, opd); SFT trains on dataset completions "
        "and never generates",
        "group_size": "only applies to rollout algorithms (grpo, opd); it sizes the generations per prompt, "
        "and SFT never generates",
        "temperature": "only applies to rollout algorithms (grpo, opd); SFT trains on dataset completions "
        "and never samples",
        "max_completion_tokens": "only applies to rollout algorithms (grpo, opd); SFT never generates, so cap the "
        "training rows with max_context_tokens instead",
        "kl_penalty_coef": "only applies to rollout algorithms (grpo, opd); SFT's objective has no KL term",
        "thinking_length_penalty_coef": "only applies to grpo; it penalizes generated reasoning length, "
        "and SFT never generates",
        "teacher_model": "only applies to opd; SFT trains on dataset completions, not a teacher",
        "credit_assignment": "only applies to grpo; it distributes rollout advantage across turns, "
        "and SFT has no rollouts",
        "stop_sequences": "only applies to rollout algorithms (grpo, opd); they bound sampling, "
        "and SFT never generates",
    },
    "opd": {
        "thinking_length_penalty_coef": "only applies to grpo; it shapes the grpo reward, and opd optimizes a "
        "distillation objective with no reward term",
        "credit_assignment": "only applies to grpo; it distributes group-relative advantage, and opd has no "
        "advantages to assign",
    },
    "grpo": {"teacher_model": "only applies to opd; grpo optimizes its environment reward and has no teacher"},
}
_UNSET = {"teacher_model": "", "stop_sequences": (), "structured_outputs": "", "credit_assignment": "per_episode"}


@dataclass(frozen=True)
class Issue:
    key: str
    message: str
    fix: str


@dataclass
class Parsed:
    """The values that passed their checks, in Flash's canonical form."""

    model: str | None = None
    project: str = ""
    algorithm: str | None = None
    thinking: bool = False
    seed: int = 42
    environment: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    gpu: dict[str, Any] = field(default_factory=dict)
    wandb: dict[str, str] = field(default_factory=dict)


class _Invalid(Exception):
    """A value failed its check; the issue is already recorded."""


class Checker:
    def __init__(self, raw: dict[str, Any], *, project_required: bool):
        self.raw = raw
        self.project_required = project_required
        self.errors: list[Issue] = []
        self.parsed = Parsed()

    # -- recording -----------------------------------------------------------------------------

    def fail(self, key: str, message: str, fix: str) -> _Invalid:
        self.errors.append(Issue(key, message, fix))
        return _Invalid()

    def attempt(self, check, *args) -> Any:
        try:
            return check(*args)
        except _Invalid:
            return None

    # -- the walk, in Flash's order -------------------------------------------------------------

    def run(self) -> Parsed:
        self.attempt(self._unknown_top_level)
        self.attempt(self._model)
        self.attempt(self._project)
        self.attempt(self._algorithm)
        self.attempt(self._thinking)
        env = self.attempt(self._table, "environment") or {}
        train = self.attempt(self._table, "train") or {}
        algorithm = self.parsed.algorithm
        if env:
            self._environment(env, algorithm)
        if train is not None:
            self._train_keys(train, algorithm)
            if algorithm == "grpo":
                self.attempt(self._grpo_shape, train)
        self.attempt(self._gpu)
        self.attempt(self._model_and_algorithm, train)
        self.attempt(self._wandb)
        self._train_values(train)
        self.attempt(self._seed)
        self._algorithm_rules()
        self.attempt(self._environment_id, env)
        return self.parsed

    def _unknown_top_level(self) -> None:
        unknown = sorted(set(self.raw) - set(TOP_LEVEL_KEYS))
        if not unknown:
            return
        hint = ""
        if {"grpo", "sft", "opd"} & set(unknown):
            hint = (
                " - algorithm knobs (group_size, batch_size, max_completion_tokens, ...) "
                "belong under [train], not a per-algorithm table"
            )
        noun = "section(s)" if any(isinstance(self.raw[key], dict) for key in unknown) else "key(s)"
        for key in unknown:
            self.fail(
                key,
                f"unknown config {noun}: {', '.join(unknown)} (allowed tables: {', '.join(TABLES)}){hint}",
                _suggest(key, TOP_LEVEL_KEYS, f"remove `{key}`; only {', '.join(TOP_LEVEL_KEYS)} are allowed"),
            )

    def _model(self) -> None:
        if "model" not in self.raw:
            raise self.fail("model", "config must set `model`", f'add model = "{catalog.DEFAULT_MODEL}"')
        model = self.raw["model"]
        if not isinstance(model, str) or not model.strip():
            raise self.fail(
                "model",
                'config `model` must be a model id string (e.g. "Qwen/Qwen3.5-9B")',
                f"use one of: {', '.join(catalog.MODELS)}",
            )
        self.parsed.model = model

    def _project(self) -> None:
        value = self.raw.get("project", "")
        fix = 'set project = "<your Freesolo project UUID>" (see `flash projects list`)'
        if value is None or (isinstance(value, str) and not value.strip()):
            if self.project_required or value is None:
                raise self.fail("project", "project is required and must be nonblank", fix)
            return
        if not isinstance(value, str):
            raise self.fail("project", "project must be a string", fix)
        try:
            self.parsed.project = str(uuid.UUID(value.strip()))
        except ValueError:
            raise self.fail("project", "project must be a valid UUID", fix) from None

    def _algorithm(self) -> None:
        value = self.raw.get("algorithm")
        fix = 'set algorithm = "sft", "grpo" or "opd"'
        if not value:
            self.parsed.algorithm = "sft"
            return
        if not isinstance(value, str):
            raise self.fail("algorithm", f"algorithm must be a string, got {type(value).__name__}", fix)
        if value.lower() not in catalog.ALGORITHMS:
            raise self.fail(
                "algorithm", f"unsupported algorithm: {value.lower()}; known: {', '.join(catalog.ALGORITHMS)}", fix
            )
        self.parsed.algorithm = value.lower()

    def _thinking(self) -> None:
        value = self.raw.get("thinking", False)
        if not isinstance(value, bool):
            raise self.fail("thinking", "thinking must be a boolean", "write thinking = true or thinking = false")
        self.parsed.thinking = value

    def _unknown_keys(self, section: str, table: dict[str, Any], allowed, fix_for) -> bool:
        """Record Flash's "[section] unknown key(s)" error for each unknown key; True if any."""
        unknown = sorted(set(table) - set(allowed))
        for key in unknown:
            self.fail(
                f"{section}.{key}",
                f"[{section}] unknown key(s): {', '.join(unknown)} (allowed: {', '.join(allowed)})",
                fix_for(key),
            )
        return bool(unknown)

    def _table(self, name: str) -> dict[str, Any]:
        value = self.raw.get(name)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(name, f"[{name}] must be a table", f"write a [{name}] table of key = value lines")
        return value

    # -- [environment] -------------------------------------------------------------------------

    def _environment(self, env: dict[str, Any], algorithm: str | None) -> None:
        args_fix = "use params = { ... } for load_environment arguments"
        if self._unknown_keys("environment", env, ENVIRONMENT_KEYS, lambda k: args_fix if k == "args" else "remove it"):
            return
        if env.get("params") is not None and not isinstance(env["params"], dict):
            self.fail(
                "environment.params", "[environment] params must be a table", 'write params = { split = "train" }'
            )
            return
        self.parsed.environment["params"] = dict(env.get("params") or {})
        self.parsed.environment["pip"] = self.attempt(self._pip, env.get("pip"))
        self.parsed.environment["secrets"] = self.attempt(self._secrets, env.get("secrets"), algorithm)

    def _pip(self, raw: Any) -> list[str]:
        key = "environment.pip"
        if raw is None:
            return []
        if isinstance(raw, str):
            shown = '"<redacted url>"' if "://" in raw else json.dumps(raw)
            raise self.fail(
                key,
                f"[environment] pip must be a list of requirement strings, not a string: use [{shown}]",
                f"write pip = [{shown}]",
            )
        if not isinstance(raw, (list, tuple)):
            raise self.fail(key, "[environment] pip must be a list of requirement strings", 'write pip = ["pkg>=1.0"]')
        requirements = []
        for item in raw:
            if not isinstance(item, str) or not item.strip():
                raise self.fail(
                    key,
                    f"[environment] pip entries must be non-empty requirement strings (got: {_echo(item)})",
                    "remove empty or non-string entries",
                )
            requirement = item.strip()
            if requirement.startswith("-"):
                raise self.fail(
                    key,
                    f"[environment] pip entries must be requirements, not pip options (got: {_echo(requirement)})",
                    "list package requirements only",
                )
            if _PIP_USERINFO.search(requirement) or _PIP_QUERY.search(requirement):
                raise self.fail(
                    key,
                    "[environment] pip entries must not embed credentials in a URL: the spec is stored "
                    "and uploaded in plaintext. Use [environment] secrets for the credential and an "
                    "unauthenticated requirement URL without a query string.",
                    "remove the credential or query string from the URL",
                )
            requirements.append(requirement)
        return requirements

    def _secrets(self, raw: Any, algorithm: str | None) -> list[str]:
        key = "environment.secrets"
        if raw is None:
            return []
        if not isinstance(raw, (list, tuple)):
            raise self.fail(
                key, "[environment] secrets must be a list of environment variable names", 'write secrets = ["API_KEY"]'
            )
        if not all(isinstance(name, str) for name in raw):
            raise self.fail(key, "[environment] secrets entries must be strings", "quote every name")
        names = list(dict.fromkeys(raw))
        bad = sorted(repr(n) for n in names if not n or any(c in n for c in "=,\0 \t\n\r"))
        if bad:
            raise self.fail(
                key,
                f"[environment] secrets has invalid environment variable name(s): {', '.join(bad)}; an env var "
                "name must be non-empty and contain no '=', ',', whitespace, or NUL byte",
                "list variable names only, never values",
            )
        reserved = _RESERVED_SECRETS | (_GRPO_RESERVED_SECRETS if algorithm == "grpo" else frozenset())
        taken = sorted(n for n in names if n.upper() in reserved)
        if taken:
            raise self.fail(
                key,
                f"[environment] secrets must not include platform-managed key(s): {', '.join(taken)}",
                f"remove {', '.join(taken)}; the platform provides it",
            )
        return names

    def _environment_id(self, env: dict[str, Any]) -> None:
        value = str(env.get("id") or "")
        if not value:
            raise self.fail(
                "environment.id",
                "config must set [environment] id (upload an environment with `flash env push --project "
                '<project-uuid> --name <name>` and paste the returned id, e.g. "your-org/your-project/your-env"); '
                "there is no local path mode",
                "push the environment (push_environment fills the id), or paste the id `flash env push` printed",
            )
        if not is_environment_id(value):
            raise self.fail(
                "environment.id",
                '[environment] id must be a Freesolo environment id (for example "your-org/your-project/your-env")',
                "use the id returned by the push, in org/project/name form",
            )
        self.parsed.environment["id"] = value

    # -- [train] -------------------------------------------------------------------------------

    def _train_keys(self, train: dict[str, Any], algorithm: str | None) -> None:
        unknown = self._unknown_keys(
            "train", train, sorted(TRAIN_KNOBS), lambda k: _suggest(k, TRAIN_KNOBS, "remove it")
        )
        if unknown or algorithm is None:
            return
        for key, allowed in _ALGORITHM_ONLY.items():
            if train.get(key) is None or algorithm in allowed:
                continue
            other = next(k for k, a in _ALGORITHM_ONLY.items() if algorithm in a)
            self.fail(
                f"train.{key}",
                f"[train] {key} does not apply to {algorithm}: use {other} instead. {key} is {'/'.join(allowed)}-only, "
                f"and the two are different quantities -- {other} is the optimizer batch itself, so copying an sft "
                "batch_size here would change how many prompts each update trains on.",
                f"rename {key} to {other}",
            )

    def _grpo_shape(self, train: dict[str, Any]) -> None:
        prompts = train.get("prompts_per_step", 64) if train.get("prompts_per_step") is not None else 64
        group = train.get("group_size") if train.get("group_size") is not None else 8
        if isinstance(prompts, bool) or not isinstance(prompts, int):
            raise self.fail(
                "train.prompts_per_step",
                "train.prompts_per_step must be an integer or omitted for GRPO",
                "use a whole number such as 32",
            )
        if prompts <= 0:
            raise self.fail(
                "train.prompts_per_step", "train.prompts_per_step must be positive for GRPO", "use at least 1"
            )
        allowed = ", ".join(str(v) for v in catalog.GRPO_GROUP_SIZES)
        if isinstance(group, bool) or not isinstance(group, int):
            raise self.fail(
                "train.group_size", "train.group_size must be an integer or omitted for GRPO", f"use one of {allowed}"
            )
        if group not in catalog.GRPO_GROUP_SIZES:
            raise self.fail(
                "train.group_size", f"train.group_size must be one of {{{allowed}}} for GRPO", f"use one of {allowed}"
            )
        if prompts * group > catalog.GRPO_MAX_COMPLETIONS_PER_STEP:
            cap = catalog.GRPO_MAX_COMPLETIONS_PER_STEP
            raise self.fail(
                "train.prompts_per_step",
                f"train.prompts_per_step * train.group_size must be <= {cap} for GRPO "
                f"(got {prompts} * {group} = {prompts * group})",
                f"lower prompts_per_step to {cap // group} or less",
            )

    def _train_values(self, train: dict[str, Any]) -> None:
        if any(issue.key.startswith("train.") and "unknown key" in issue.message for issue in self.errors):
            return
        for name, knob in TRAIN_KNOBS.items():
            if name in ("lora_rank", "lora_alpha", "init_from_adapter"):
                continue  # parsed with the model (warm start and serving cap)
            value = self.attempt(self._knob, train, name, knob)
            if value is not None:
                self.parsed.train[name] = value
        self.attempt(self._save_steps)

    def _knob(self, train: dict[str, Any], name: str, knob: Any) -> Any:
        value = train.get(name)
        if value is None:
            return None
        parse = {
            "int": self._int,
            "float": self._float,
            "steps": self._max_steps,
            "step_list": self._step_list,
            "stops": self._stops,
            "structured": self._structured,
            "choice": self._choice,
        }[knob.kind]
        return parse(f"train.{name}", value, knob)

    def _int(self, key: str, value: Any, knob: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(key, f"{key} must be an integer", "write a whole number without quotes")
        if isinstance(value, float) and (not math.isfinite(value) or not value.is_integer()):
            raise self.fail(key, f"{key} must be a finite integer", "write a whole number")
        value = int(value)
        low, high = knob.minimum, knob.maximum
        if low is not None and high is not None and not low <= value <= high:
            raise self.fail(key, f"{key} must be between {int(low)} and {int(high)}", f"use {int(low)}..{int(high)}")
        if low is not None and value < low:
            raise self.fail(key, f"{key} must be >= {int(low)}", f"use {int(low)} or more")
        if high is not None and value > high:
            raise self.fail(key, f"{key} must be <= {int(high)}", f"use {int(high)} or less")
        return value

    def _float(self, key: str, value: Any, knob: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(key, f"{key} must be a number", "write a number without quotes")
        value = float(value)
        if not math.isfinite(value):
            raise self.fail(key, f"{key} must be a finite number", "write a finite number")
        low, high = knob.minimum, knob.maximum
        if knob.exclusive and value <= low:
            raise self.fail(key, f"{key} must be > {low}", f"use a value above {low}")
        if not knob.exclusive and value < low:
            raise self.fail(key, f"{key} must be >= {low}", f"use {low} or more")
        if high is not None and value > high:
            raise self.fail(key, f"{key} must be between {low} and {high}", f"use {low}..{high}")
        return value

    def _max_steps(self, key: str, value: Any, _: Any) -> int | None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, "train.max_steps must be an integer or null", "write a whole number, or remove it")
        return value if value > 0 else None

    def _step_list(self, key: str, value: Any, _: Any) -> list[int]:
        fix = "write a strictly increasing list of positive steps, e.g. [10, 50, 100]"
        if not isinstance(value, (list, tuple)):
            raise self.fail(key, f"{key} must be a list of integers", fix)
        if any(isinstance(item, bool) or not isinstance(item, int) for item in value):
            raise self.fail(key, f"{key} entries must be integers", fix)
        if any(item <= 0 for item in value):
            raise self.fail(key, f"{key} entries must be positive", fix)
        if list(value) != sorted(set(value)):
            raise self.fail(key, f"{key} must be strictly increasing with no duplicates", fix)
        return list(value)

    def _stops(self, key: str, value: Any, _: Any) -> list[str]:
        if isinstance(value, str):
            return [value] if value else []
        if not isinstance(value, (list, tuple)):
            raise self.fail(key, "train.stop_sequences must be a string or a list of strings", 'write ["</answer>"]')
        if any(not isinstance(item, str) for item in value):
            raise self.fail(key, "train.stop_sequences entries must be strings", "quote every entry")
        return [item for item in value if item]

    def _choice(self, key: str, value: Any, knob: Any) -> str | None:
        if key == "train.teacher_model":
            return self._teacher(key, value)
        if isinstance(value, str):
            normalized = value.strip().lower()
            if not normalized:
                return None
            if normalized in knob.choices:
                return normalized
        allowed = '" or "'.join(knob.choices)
        raise self.fail(key, f'{key} must be "{allowed}"; got {value!r}', f'use "{allowed}"')

    def _teacher(self, key: str, value: Any) -> str | None:
        if not isinstance(value, str):
            raise self.fail(key, "train.teacher_model must be a string", f'use "{catalog.DEFAULT_TEACHER}"')
        if not value.strip():
            return None
        alias = catalog.teacher_alias(value)
        if alias in catalog.TEACHERS:
            return alias
        choices = ", ".join(catalog.TEACHERS)
        raise self.fail(
            key,
            f"train.teacher_model {value!r} is not a supported teacher; choose one of: {choices} "
            f"(default {catalog.DEFAULT_TEACHER}). The teacher is platform-managed; bring-your-own teachers are "
            "not supported.",
            f"use one of: {choices}",
        )

    def _structured(self, key: str, value: Any, _: Any) -> str | None:
        problem = structured_problem(value)
        if problem:
            raise self.fail(key, f"train.structured_outputs {problem}", 'e.g. structured_outputs = "json_object"')
        canonical = canonical_structured_outputs(value)
        return json.dumps(canonical, sort_keys=True, separators=(",", ":")) if canonical else None

    def _save_steps(self) -> None:
        steps = self.parsed.train.get("save_at_steps")
        if not steps:
            return
        horizon = self.parsed.train.get("max_steps") or 0
        if horizon <= 0:
            raise self.fail(
                "train.save_at_steps",
                "train.save_at_steps requires positive train.max_steps",
                f"set max_steps to at least {steps[-1]}, or remove save_at_steps",
            )
        if steps[-1] > horizon:
            raise self.fail(
                "train.save_at_steps",
                "train.save_at_steps cannot contain a step beyond train.max_steps",
                f"drop steps above {horizon}, or raise max_steps to {steps[-1]}",
            )

    # -- model, warm start, LoRA ---------------------------------------------------------------

    def _model_and_algorithm(self, train: dict[str, Any]) -> None:
        model, algorithm, thinking = self.parsed.model, self.parsed.algorithm, self.parsed.thinking
        warm = self.attempt(self._warm_start, train)
        if model is None or algorithm is None:
            return
        info = catalog.MODELS.get(model)
        if info is None:
            raise self.fail(
                "model",
                f"unsupported model {model!r}; choose one of: {', '.join(catalog.MODELS)}",
                _suggest(model, catalog.MODELS, f"use one of: {', '.join(catalog.MODELS)}"),
            )
        if algorithm not in info.algorithms:
            raise self.fail(
                "algorithm",
                f"{model} supports {', '.join(info.algorithms)}, not {algorithm}",
                f"use algorithm {', '.join(info.algorithms)}, or a model that supports {algorithm}",
            )
        if thinking and info.thinking == "none":
            raise self.fail(
                "thinking",
                f"{model} does not support thinking mode (its chat template has no <think> support); pick a "
                "thinking-capable model — `flash models list` lists each model's thinking capability",
                "set thinking = false, or pick a hybrid-thinking model such as Qwen/Qwen3.5-4B",
            )
        if not thinking and info.thinking == "always":
            raise self.fail(
                "thinking",
                f"{model} always emits <think> reasoning and cannot run with thinking disabled; set thinking = true",
                "set thinking = true",
            )
        self._lora(train, info, warm)

    def _warm_start(self, train: dict[str, Any]) -> str:
        value = train.get("init_from_adapter")
        key = "train.init_from_adapter"
        if value is None:
            return ""
        if not isinstance(value, str):
            raise self.fail(key, "train.init_from_adapter must be a string", 'write "RUN_ID/final"')
        ref = value.strip()
        if ref and not _CHECKPOINT_REF.fullmatch(ref):
            raise self.fail(
                key,
                "train.init_from_adapter must be `<run_id>/final` or `<run_id>/step-N` from `flash runs checkpoint`",
                "use a checkpoint id such as RUN_ID/final (list_checkpoints shows them)",
            )
        if ref:
            self.parsed.train["init_from_adapter"] = ref
        return ref

    def _lora(self, train: dict[str, Any], info: catalog.Model, warm: str | None) -> None:
        for knob in ("lora_rank", "lora_alpha"):
            if warm and knob in train:
                raise self.fail(
                    f"train.{knob}",
                    f"train.{knob} cannot be set with train.init_from_adapter because source adapter "
                    f"{knob.split('_')[1]} metadata is authoritative",
                    f"remove {knob}; the warm start inherits it",
                )
        rank = self.attempt(self._knob, train, "lora_rank", TRAIN_KNOBS["lora_rank"])
        alpha = self.attempt(self._knob, train, "lora_alpha", TRAIN_KNOBS["lora_alpha"])
        if ("lora_rank" in train and rank is None) or ("lora_alpha" in train and alpha is None):
            return
        rank = rank or catalog.DEFAULT_LORA_RANK
        if not warm and rank > info.max_lora_rank:
            raise self.fail(
                "train.lora_rank",
                f"train.lora_rank={rank} exceeds {info.id}'s serving max_lora_rank={info.max_lora_rank}; lower "
                "train.lora_rank or raise the serving cap after real-GPU validation",
                f"use lora_rank <= {info.max_lora_rank}",
            )
        if "lora_rank" in train:
            self.parsed.train["lora_rank"] = rank
        if "lora_alpha" in train:
            self.parsed.train["lora_alpha"] = alpha

    # -- [gpu] ---------------------------------------------------------------------------------

    def _gpu(self) -> None:
        gpu = self._table("gpu")
        managed = "remove {}; the platform manages disk, retries and wall time"
        if self._unknown_keys("gpu", gpu, sorted(GPU_KEYS), managed.format):
            raise _Invalid()
        count = self._gpu_count(gpu)
        provider = self._gpu_provider(gpu)
        types = self._gpu_types(gpu.get("type", ""))
        providers = self._gpu_providers(gpu)
        if provider and providers:
            raise self.fail(
                "gpu.provider",
                "gpu.provider and gpu.providers cannot both be set",
                "keep provider (a hard pin) or providers (a preference), not both",
            )
        self.parsed.gpu = {"type": types, "count": count, "provider": provider, "providers": providers}

    def _gpu_count(self, gpu: dict[str, Any]) -> int | None:
        value = gpu.get("count")
        if value is None:
            return None
        knob = type("K", (), {"minimum": 1, "maximum": catalog.MAX_GPU_COUNT})
        return self._int("gpu.count", value, knob)

    def _gpu_provider(self, gpu: dict[str, Any]) -> str:
        raw = gpu.get("provider", "")
        if not isinstance(raw, str):
            raise self.fail("gpu.provider", "gpu.provider must be a string", 'write provider = "modal"')
        name = raw.strip().lower()
        if name and name not in catalog.PROVIDERS:
            raise self.fail(
                "gpu.provider",
                f"gpu.provider must be one of {', '.join(catalog.PROVIDERS)}; got {raw!r}",
                'use provider = "modal", or remove it',
            )
        return name

    def _gpu_types(self, raw: Any) -> list[str]:
        key = "gpu.type"
        if isinstance(raw, str):
            entries = [raw] if raw.strip() else []
        elif isinstance(raw, (list, tuple)):
            entries = list(raw)
            if not entries:
                raise self.fail(
                    key,
                    "[gpu] type must not be an empty list; omit the key for managed allocation, or name the classes "
                    'to allow, e.g. type = ["H100", "A100 SXM"]',
                    "remove type, or list at least one class",
                )
        else:
            raise self.fail(key, "gpu.type must be a string or a list of strings", 'write type = "H100"')
        if any(not isinstance(entry, str) for entry in entries):
            raise self.fail(key, "gpu.type entries must be strings", "quote every class name")
        if any(not entry.strip() for entry in entries):
            raise self.fail(key, "gpu.type entries must not be empty", "remove empty entries")
        canonical: list[str] = []
        for entry in entries:
            name = catalog.canonical_gpu(entry)
            if name is None:
                known = ", ".join(catalog.GPUS)
                raise self.fail(
                    key,
                    f"gpu.type: unsupported gpu {entry!r}; Flash manages {known}",
                    _suggest(entry, catalog.GPUS, f"use one of: {known}"),
                )
            if name not in canonical:
                canonical.append(name)
        return canonical

    def _gpu_providers(self, gpu: dict[str, Any]) -> list[str]:
        raw = gpu.get("providers")
        if raw is None:
            return []
        if isinstance(raw, str) or not isinstance(raw, (list, tuple)):
            raise self.fail("gpu.providers", "gpu.providers must be a list of provider names", 'write ["modal"]')
        if not raw:
            raise self.fail("gpu.providers", "gpu.providers must name at least one provider", 'write ["modal"]')
        names: list[str] = []
        for entry in raw:
            if not isinstance(entry, str):
                raise self.fail("gpu.providers", "gpu.providers entries must be strings", 'write ["modal"]')
            name = entry.strip().lower()
            if name not in catalog.PROVIDERS:
                raise self.fail(
                    "gpu.providers",
                    f"gpu.providers entry {entry!r} must be one of {', '.join(catalog.PROVIDERS)}",
                    'write ["modal"]',
                )
            if name not in names:
                names.append(name)
        return names

    # -- [wandb], seed, algorithm-level rules ----------------------------------------------------

    def _wandb(self) -> None:
        raw = self.raw.get("wandb")
        if raw is None:
            return
        if not isinstance(raw, dict):
            raise self.fail("wandb", '[wandb] must be a table (e.g. project = "my-project")', "write a [wandb] table")
        only = "remove it; only project and run_name exist"
        if self._unknown_keys("wandb", raw, WANDB_KEYS, lambda k: "rename name to run_name" if k == "name" else only):
            raise _Invalid()
        for key in WANDB_KEYS:
            value = raw.get(key)
            if value is None:
                continue
            if not isinstance(value, str) or not value.strip():
                raise self.fail(f"wandb.{key}", f"[wandb] {key} must be a non-empty string", f"quote the {key}")
            self.parsed.wandb[key] = value.strip()

    def _seed(self) -> None:
        value = self.raw.get("seed", 42)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail("seed", "seed must be an integer", "write a whole number such as 42")
        if not 0 <= value <= MAX_SEED:
            raise self.fail("seed", f"seed must be between 0 and {MAX_SEED}", "use a non-negative seed")
        self.parsed.seed = value

    def _algorithm_rules(self) -> None:
        algorithm, train = self.parsed.algorithm, self.parsed.train
        if algorithm is None:
            return
        for key, reason in _INAPPLICABLE.get(algorithm, {}).items():
            value = train.get(key)
            if value is None or value == _UNSET.get(key) or value == []:
                continue
            self.fail(f"train.{key}", f"train.{key} {reason}", f"remove {key} from this {algorithm} config")
        if algorithm == "opd" and train.get("kl_penalty_coef") == 0.0:
            self.fail(
                "train.kl_penalty_coef",
                "[train] kl_penalty_coef must be > 0 for opd because it scales the gkd distillation objective; "
                "omit it to use the default 1.0 or set a positive value",
                "remove kl_penalty_coef, or set it above 0",
            )
        if algorithm in ("grpo", "opd"):
            self.attempt(self._prompt_budget, algorithm)

    def _prompt_budget(self, algorithm: str) -> None:
        context = self.parsed.train.get("max_context_tokens")
        if not context:
            return
        completion = catalog.completion_tokens(
            algorithm, self.parsed.train.get("max_completion_tokens"), self.parsed.thinking
        )
        if context - completion < 1:
            raise self.fail(
                "train.max_context_tokens",
                f"[train] max_context_tokens ({context}) leaves no prompt budget after max_completion_tokens "
                f"({completion}) for {algorithm}; set max_context_tokens > max_completion_tokens. Rejected at parse "
                "time so an invalid budget fails before a GPU worker is provisioned.",
                f"raise max_context_tokens above {completion}, or lower max_completion_tokens",
            )


def _suggest(value: str, known, fallback: str) -> str:
    close = difflib.get_close_matches(str(value), list(known), n=1)
    return f"did you mean {close[0]!r}? Otherwise {fallback}" if close else fallback


def _echo(value: Any) -> str:
    return "<redacted url>" if "://" in str(value) else repr(value)

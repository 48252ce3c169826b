"""[train]: known keys per algorithm, the GRPO batch shape, and each knob's value."""

from __future__ import annotations

import json
import math
from typing import Any

from flash_mcp.domain.config import catalog
from flash_mcp.domain.config.rules.base import RuleBase, suggest
from flash_mcp.domain.config.schema import (
    TRAIN_KNOBS,
)
from flash_mcp.domain.config.structured_outputs import canonical_structured_outputs, structured_problem

# Keys an algorithm rejects by name, before values are parsed (Flash's algorithm-only keys).
_ALGORITHM_ONLY = {"batch_size": ("sft",), "prompts_per_step": ("grpo", "opd")}


class TrainRules(RuleBase):
    def _train_keys(self, train: dict[str, Any], algorithm: str | None) -> None:
        unknown = self._unknown_keys(
            "train", train, sorted(TRAIN_KNOBS), lambda k: suggest(k, TRAIN_KNOBS, "remove it")
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
        if any(found.where.startswith("train.") and "unknown key" in found.message for found in self.errors):
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

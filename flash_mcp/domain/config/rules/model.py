"""Model-level rules: the model for the algorithm, warm starts, LoRA, and rules one algorithm adds."""

from __future__ import annotations

import re
from typing import Any

from flash_mcp.domain.config import catalog
from flash_mcp.domain.config.rules.base import RuleBase, suggest
from flash_mcp.domain.config.schema import (
    TRAIN_KNOBS,
)

_CHECKPOINT_REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}/(?:final|step-(?:0|[1-9][0-9]{0,17}))$")
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


class ModelRules(RuleBase):
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
                suggest(model, catalog.MODELS, f"use one of: {', '.join(catalog.MODELS)}"),
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

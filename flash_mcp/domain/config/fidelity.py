"""What every config key means on the local plane: trained as Flash would, or no local meaning.

One table, `LOCAL_FIDELITY`, keyed by dotted key (`train.lora_rank`, `gpu.type`, `seed`). A run's notes
and `dry_run` list the set keys that have no local meaning. What a local run cannot rehearse at all (multi-turn
OPD, OPD without a local teacher) is refused by the local plane before the run starts.
`tests/local/test_local_fidelity.py` fails when a schema key is missing here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal


@dataclass(frozen=True)
class Fidelity:
    kind: Literal["local", "none"]
    meaning: str


def _local(meaning: str) -> Fidelity:
    return Fidelity("local", meaning)


def _none(meaning: str) -> Fidelity:
    return Fidelity("none", meaning)


_THIS_MACHINE = "local runs use this machine's accelerator"
LOCAL_FIDELITY: dict[str, Fidelity] = {
    "model": _local("the catalog model from the local Hugging Face cache, or the human's stand-in"),
    "project": _local("the namespace of locally pushed environments (local/<project>/<name>)"),
    "algorithm": _local(
        "sft, grpo and opd train with TRL; opd minimises the reverse KL to the teacher over its whole next-token "
        "distribution (TRL's DistillationTrainer), where Flash estimates it from the sampled tokens' log-probs"
    ),
    "thinking": _none("local prompts do not switch the model's reasoning mode (its token budgets still apply)"),
    "seed": _local("TRL's seed"),
    "environment.id": _local("the locally pushed environment"),
    "environment.params": _local("load_environment(**params), as Flash calls it"),
    "environment.pip": _none("nothing is pip-installed locally; the scorer uses this machine's packages"),
    "environment.secrets": _local("read from the shell or the project's .env and passed by name"),
    "gpu.type": _none(_THIS_MACHINE),
    "gpu.count": _none(_THIS_MACHINE),
    "gpu.provider": _none(_THIS_MACHINE),
    "gpu.providers": _none(_THIS_MACHINE),
    "wandb.project": _none("local runs log to their run directory, not W&B"),
    "wandb.run_name": _none("local runs log to their run directory, not W&B"),
    "train.epochs": _local("num_train_epochs"),
    "train.max_examples": _local("the first N rows"),
    "train.max_steps": _local("max_steps"),
    "train.save_every": _local("a LoRA checkpoint every N steps"),
    "train.save_at_steps": _local("LoRA checkpoints at exactly these steps"),
    "train.lora_rank": _local("LoRA r"),
    "train.lora_alpha": _local("LoRA alpha"),
    "train.learning_rate": _local("learning_rate"),
    "train.max_context_tokens": _local("SFT max_length; GRPO drops prompts over the prompt budget"),
    "train.init_from_adapter": _local("a warm start from a local checkpoint (RUN/final, RUN/step-N)"),
    "train.batch_size": _local("SFT per-device batch"),
    "train.prompts_per_step": _local("GRPO and OPD prompts per optimizer step"),
    "train.group_size": _local("GRPO num_generations; OPD completions per prompt"),
    "train.temperature": _local("rollout sampling temperature (OPD: also the distillation softmax's, as in TRL)"),
    "train.max_completion_tokens": _local("max_completion_length per model turn"),
    "train.kl_penalty_coef": _local("GRPO beta; OPD scales the distillation loss by it"),
    "train.stop_sequences": _none("stop sequences are not applied by local generation"),
    "train.structured_outputs": _none("guided decoding needs vLLM; local rollouts are unconstrained"),
    "train.thinking_length_penalty_coef": _none("the reasoning-length penalty is a Flash worker feature"),
    "train.credit_assignment": _local("per_turn credit in multi-turn GRPO, from the environment's per-turn rewards"),
    "train.teacher_model": _local(
        "the human's [local.teachers] model for that teacher, else its weights in the local Hugging Face cache"
    ),
}
# A value that means "not set" (a default Flash would use anyway): never noted, never refused.
_UNSET = (None, "", [], {}, False, "per_episode")


def _value(spec: dict[str, Any], key: str) -> Any:
    table, _, inner = key.partition(".")
    return (spec.get(table) or {}).get(inner) if inner else spec.get(table)


def _set(spec: dict[str, Any], authored: list[str], key: str) -> bool:
    return key in authored and _value(spec, key) not in _UNSET


def unmapped_notes(spec: dict[str, Any], authored: list[str]) -> list[str]:
    """One note per authored key that a local run cannot honour."""
    return [
        f"{key} has no local meaning: {fidelity.meaning}"
        for key, fidelity in LOCAL_FIDELITY.items()
        if fidelity.kind == "none" and _set(spec, authored, key)
    ]

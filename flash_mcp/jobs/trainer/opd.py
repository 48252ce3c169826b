"""Flash's OPD on this machine: TRL's DistillationTrainer. The student samples its own completions (on-policy) and
is trained toward the teacher's next-token distribution under the reverse KL (TRL's `beta = 1`), the divergence
Flash's OPD minimises; `kl_penalty_coef` scales the loss as it does on Flash."""

from __future__ import annotations

from typing import Any

from flash_mcp.domain.config.steps import rollout_prompts_per_step
from flash_mcp.jobs.trainer.rows import Rows, within_prompt_budget

REVERSE_KL = 1.0  # DistillationConfig.beta: 0 forward KL, 0.5 JSD, 1 reverse KL


def opd_trainer(examples: Rows, model, teacher, tokenizer, knobs: dict[str, Any], common: dict[str, Any], lora,
                callbacks):  # fmt: skip
    """A DistillationTrainer over the run's prompts, `group_size` completions per prompt, `prompts_per_step`
    prompts per optimizer step."""
    from datasets import Dataset
    from trl import DistillationConfig

    rows = within_prompt_budget(examples, tokenizer, knobs)
    group = int(knobs.get("group_size") or 1)
    args = DistillationConfig(
        **common,
        per_device_train_batch_size=rollout_prompts_per_step("opd", knobs, len(rows)) * group,
        max_completion_length=int(knobs.get("max_completion_tokens") or 512),
        temperature=float(knobs.get("temperature") or 1.0),
        beta=REVERSE_KL,
    )
    scale = float(knobs.get("kl_penalty_coef") or 1.0)
    return _scaled_trainer(scale)(
        model=model, teacher_model=teacher, args=args, processing_class=tokenizer, peft_config=lora,
        train_dataset=Dataset.from_list([row for row in rows for _ in range(group)]), callbacks=callbacks,
    )  # fmt: skip


def _scaled_trainer(scale: float):
    """DistillationTrainer with its loss multiplied by `scale` (Flash's kl_penalty_coef)."""
    from trl import DistillationTrainer

    class ScaledDistillation(DistillationTrainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            result = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            if return_outputs:
                return result[0] * scale, result[1]
            return result * scale

    return ScaledDistillation

"""The baseline for local_grpo_overhead.py: the same GRPO as launch_training, as a bare TRL script.

The reward is the starter environment's exact match, called in this process (no sandbox, no worker, no samples).

python bench/bare_grpo.py MODEL_DIR ROWS_JSONL OUTPUT_DIR STEPS PROMPTS GROUP TOKENS
"""

import json
import sys

from datasets import Dataset
from peft import LoraConfig
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import GRPOConfig, GRPOTrainer


def main() -> None:
    model_dir, rows_path, out = sys.argv[1:4]
    steps, prompts, group, tokens = (int(v) for v in sys.argv[4:8])
    with open(rows_path, encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle if line.strip()]
    golds = [r["output"] for r in rows]
    data = [{"prompt": [{"role": "user", "content": r["input"]}], "row": i} for i, r in enumerate(rows)]

    def exact_match(prompts, completions, row, **_):
        return [float(c[-1]["content"].strip() == golds[i].strip()) for c, i in zip(completions, row, strict=True)]

    args = GRPOConfig(
        output_dir=out, max_steps=steps, learning_rate=0.001, logging_steps=1, save_strategy="no", report_to=[],
        use_cpu=True, seed=42, disable_tqdm=True, per_device_train_batch_size=prompts * group, num_generations=group,
        max_completion_length=tokens, temperature=1.0, beta=0.0,
    )  # fmt: skip
    trainer = GRPOTrainer(
        model=AutoModelForCausalLM.from_pretrained(model_dir),
        reward_funcs=[exact_match],
        args=args,
        train_dataset=Dataset.from_list(data),
        processing_class=AutoTokenizer.from_pretrained(model_dir),
        peft_config=LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", task_type="CAUSAL_LM"),
    )
    trainer.train()
    trainer.model.save_pretrained(out + "/final")


if __name__ == "__main__":
    main()

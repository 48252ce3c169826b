"""The baseline for local_training_overhead.py: the same SFT as launch_training, as a bare TRL script.

python bench/bare_sft.py MODEL_DIR ROWS_JSONL OUTPUT_DIR
"""

import json
import sys

from datasets import Dataset
from peft import LoraConfig
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import SFTConfig, SFTTrainer


def main() -> None:
    model_dir, rows_path, out = sys.argv[1:4]
    with open(rows_path, encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle if line.strip()]
    data = [
        {
            "prompt": [{"role": "user", "content": r["input"]}],
            "completion": [{"role": "assistant", "content": r["output"]}],
        }
        for r in rows
    ]
    args = SFTConfig(
        output_dir=out, num_train_epochs=1, per_device_train_batch_size=8, learning_rate=0.01, logging_steps=1,
        save_strategy="no", report_to=[], use_cpu=True, seed=42, disable_tqdm=True, max_length=1024,
    )  # fmt: skip
    trainer = SFTTrainer(
        model=AutoModelForCausalLM.from_pretrained(model_dir),
        args=args,
        train_dataset=Dataset.from_list(data),
        processing_class=AutoTokenizer.from_pretrained(model_dir),
        peft_config=LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", task_type="CAUSAL_LM"),
    )
    trainer.train()
    trainer.model.save_pretrained(out + "/final")


if __name__ == "__main__":
    main()

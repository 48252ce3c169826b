"""A bare transformers generate-and-score loop: the baseline for bench/evaluate_throughput.py.

    python bench/bare_evaluate.py MODEL_DIR PACKAGE_DIR SPLIT ROWS MAX_TOKENS BATCH

Loads the environment with the freesolo SDK, renders each row's prompt as training does (the
contract as a system message when the environment sets none), generates greedily in left-padded
batches, scores with the environment's own score_response. Prints the rows scored and the mean.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from freesolo.datasets.records import load_task_examples
from freesolo.environments import load_environment
from transformers import AutoModelForCausalLM, AutoTokenizer


def main() -> None:
    model_dir, package, split, rows, max_tokens, batch = sys.argv[1:7]
    package_dir = Path(package)
    contract_path = package_dir / "TRAINING_CONTRACT.md"
    contract = contract_path.read_text() if contract_path.is_file() else ""
    dataset = str(package_dir / "dataset" / f"{split}.jsonl")
    env = load_environment(str(package_dir / "environment.py"), dataset_path=dataset, split=split,
                           contract_path=str(contract_path))  # fmt: skip
    examples = load_task_examples(dataset)[: int(rows)]
    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True, padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(model_dir, local_files_only=True).eval()
    total, size = 0.0, int(batch)
    for start in range(0, len(examples), size):
        chunk = examples[start : start + size]
        texts = [tokenizer.apply_chat_template(prompt(env, e, contract), add_generation_prompt=True, tokenize=False)
                 for e in chunk]  # fmt: skip
        encoded = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        with torch.no_grad():
            out = model.generate(**encoded, max_new_tokens=int(max_tokens), do_sample=False,
                                 pad_token_id=tokenizer.pad_token_id)  # fmt: skip
        answers = tokenizer.batch_decode(out[:, encoded["input_ids"].shape[1] :], skip_special_tokens=True)
        for example, text in zip(chunk, answers, strict=True):
            total += float(env.score_response(example, env.normalize_response_text(example, text)).score)
    print(len(examples), total / max(len(examples), 1))


def prompt(env, example, contract: str) -> list[dict]:
    messages = [dict(m) for m in env.start_episode(example, contract)]
    if contract.strip() and not any(m.get("role") == "system" for m in messages):
        messages.insert(0, {"role": "system", "content": contract.strip()})
    return messages


if __name__ == "__main__":
    main()

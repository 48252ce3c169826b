"""Batched chat generation with transformers: left padding, greedy at temperature 0, seeded sampling
otherwise, an optional PEFT adapter, CUDA when present. Shared by the evaluator, the trainer's samples
and the throughput bench."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flash_mcp.domain.runs.device import detect_accelerator


@dataclass(frozen=True)
class Generated:
    text: str
    tokens: int  # generated tokens before the end-of-sequence token
    truncated: bool  # hit max_tokens without ending


def pick_device() -> str:
    return detect_accelerator().device


def load_model(model_path: str | Path, adapter_path: str | Path | None, device: str | None = None):
    """(model, tokenizer) ready for generation; the adapter is merged into the weights."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = device or pick_device()
    dtype = detect_accelerator().dtype if device == "cuda" else "float32"
    tokenizer = AutoTokenizer.from_pretrained(str(model_path), local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(str(model_path), local_files_only=True, dtype=dtype)
    if adapter_path:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter_path)).merge_and_unload()
    model.to(device).eval()
    return model, tokenizer


def end_ids(model: Any, tokenizer: Any) -> set[int]:
    ids = model.generation_config.eos_token_id
    found = set(ids if isinstance(ids, list) else [ids] if ids is not None else [])
    if tokenizer.eos_token_id is not None:
        found.add(tokenizer.eos_token_id)
    return found


def generate(
    model: Any,
    tokenizer: Any,
    prompts: list[list[dict]],
    *,
    max_tokens: int,
    temperature: float,
    samples: int = 1,
    seed: int = 0,
) -> list[list[Generated]]:
    """For each prompt, `samples` completions (greedy completions are computed once and repeated)."""
    import torch

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    texts = [tokenizer.apply_chat_template(p, add_generation_prompt=True, tokenize=False) for p in prompts]
    side, tokenizer.padding_side = tokenizer.padding_side, "left"
    try:
        encoded = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
    finally:
        tokenizer.padding_side = side
    sampling = temperature > 0
    options: dict[str, Any] = {"max_new_tokens": max_tokens, "pad_token_id": pad, "do_sample": sampling}
    if sampling:
        options.update(temperature=temperature, top_p=1.0, top_k=0, num_return_sequences=samples)
        torch.manual_seed(seed)
    else:
        options.update(temperature=None, top_p=None, top_k=None)
    with torch.no_grad():
        output = model.generate(**encoded, **options)
    new = output[:, encoded["input_ids"].shape[1] :].tolist()
    stops = end_ids(model, tokenizer) | {pad}
    decoded = [_decode(tokenizer, ids, stops, max_tokens) for ids in new]
    if sampling:
        return [decoded[i * samples : (i + 1) * samples] for i in range(len(prompts))]
    return [[answer] * samples for answer in decoded]


def _decode(tokenizer: Any, ids: list[int], stops: set[int], max_tokens: int) -> Generated:
    end = next((i for i, token in enumerate(ids) if token in stops), None)
    kept = ids if end is None else ids[:end]
    return Generated(
        text=tokenizer.decode(kept, skip_special_tokens=True),
        tokens=len(kept),
        truncated=end is None and len(ids) >= max_tokens,
    )

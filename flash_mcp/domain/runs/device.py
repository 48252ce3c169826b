"""Which accelerator a local job uses, from the machine's capabilities: pure functions, no torch import."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Accelerator:
    device: str  # "cuda" | "cpu"
    dtype: str  # "bfloat16" | "float16" | "float32"


def choose_accelerator(cuda: bool, bf16: bool) -> Accelerator:
    """CUDA in bf16 where supported, else fp16; the CPU in fp32."""
    if not cuda:
        return Accelerator("cpu", "float32")
    return Accelerator("cuda", "bfloat16" if bf16 else "float16")


def detect_accelerator() -> Accelerator:
    """The accelerator torch sees in this process (imports torch)."""
    import torch

    cuda = torch.cuda.is_available()
    return choose_accelerator(cuda, cuda and torch.cuda.is_bf16_supported())


def precision_args(accelerator: Accelerator) -> dict[str, Any]:
    """TRL/transformers TrainingArguments for the accelerator: use_cpu only on the CPU, bf16/fp16 on CUDA."""
    return {
        "use_cpu": accelerator.device == "cpu",
        "bf16": accelerator.dtype == "bfloat16",
        "fp16": accelerator.dtype == "float16",
    }


def vllm_args(algorithm: str, vllm_installed: bool, accelerator: Accelerator) -> dict[str, Any]:
    """GRPO generates with vLLM in TRL's colocate mode when vllm is installed and CUDA is there; else none."""
    if algorithm == "grpo" and vllm_installed and accelerator.device == "cuda":
        return {"use_vllm": True, "vllm_mode": "colocate"}
    return {}


def vllm_installed() -> bool:
    return importlib.util.find_spec("vllm") is not None


def device_note(gpu_nodes: list[str], torch_installed: bool) -> str:
    """What whoami and dry_run say about the device a local run will use (from the device nodes, no torch)."""
    if not torch_installed:
        return "local runs train on: cpu (torch is not installed)"
    if not any(node.rsplit("/", 1)[-1].removeprefix("nvidia").isdigit() for node in gpu_nodes):
        return "local runs train on: cpu (no CUDA device)"
    return "local runs train on: cuda (bf16 where the GPU supports it, else fp16)"

"""Flash 1.3.28's catalog as data: models, GPU classes and prices, OPD teachers, recipe defaults.

Values are read off freesolo-flash 1.3.28 (`flash/core/catalog.py`, `flash/providers/core/base.py`,
`flash/providers/modal/pricing.py`, `flash/engine/plan/recipe.py`, `flash/core/grpo.py`).
"""

from __future__ import annotations

from dataclasses import dataclass

ALGORITHMS = ("sft", "grpo", "opd")
DEFAULT_MODEL = "Qwen/Qwen3.5-9B"
PROVIDERS = ("modal",)


@dataclass(frozen=True)
class Model:
    id: str
    display_name: str
    params_b: float
    algorithms: tuple[str, ...]
    thinking: str  # "none" | "hybrid" | "always"
    min_vram_gb_sft: int
    min_vram_gb_grpo: int
    serving_gpu: str
    max_lora_rank: int
    max_model_len: int
    notes: str


MODELS: dict[str, Model] = {
    m.id: m
    for m in (
        Model("Qwen/Qwen3.5-0.8B", "Qwen3.5 0.8B", 0.87, ("sft", "grpo"), "none", 24, 48, "L40S", 64, 32768,
              "text-only; no thinking mode"),
        Model("Qwen/Qwen3.5-4B", "Qwen3.5 4B", 4.66, ("sft", "grpo"), "hybrid", 48, 80, "H100", 64, 32768,
              "hybrid thinking"),
        Model("Qwen/Qwen3.5-9B", "Qwen3.5 9B", 9.7, ("sft", "grpo", "opd"), "hybrid", 48, 80, "B200", 128, 32768,
              "the default model; FP8 serving allows LoRA rank 128"),
        Model("Qwen/Qwen3.8-27B", "Qwen3.8 27B", 27.78, ("sft", "grpo", "opd"), "hybrid", 80, 142, "B200", 64,
              32768, "hybrid thinking"),
        Model("Qwen/Qwen3.6-35B-A3B", "Qwen3.6 35B-A3B (MoE)", 35.0, ("sft", "grpo", "opd"), "hybrid", 141, 180,
              "B200", 64, 32768, "mixture of experts, ~3B active"),
    )
}  # fmt: skip


@dataclass(frozen=True)
class GpuClass:
    name: str
    provider_name: str
    vram_gb: int
    gpu_hourly_usd: float
    max_count: int

    @property
    def hourly_usd(self) -> float:
        """Modal list price per card-hour: the GPU plus the 2 CPUs and 8 GiB reserved with it."""
        return self.gpu_hourly_usd + CPU_PER_GPU * CPU_HOURLY_USD + MEMORY_GIB_PER_GPU * MEMORY_GIB_HOURLY_USD


CPU_PER_GPU = 2.0
CPU_HOURLY_USD = 0.00003942 * 3600
MEMORY_GIB_PER_GPU = 8.0
MEMORY_GIB_HOURLY_USD = 0.00000667 * 3600
MAX_GPU_COUNT = 8

GPUS: dict[str, GpuClass] = {
    g.name: g
    for g in (
        GpuClass("L4", "L4", 24, 0.7992, 8),
        GpuClass("A10", "A10", 24, 1.1016, 4),
        GpuClass("L40S", "L40S", 48, 1.9512, 8),
        GpuClass("A100 SXM 40GB", "A100-40GB", 40, 2.0988, 8),
        GpuClass("A100 SXM", "A100-80GB", 80, 2.4984, 8),
        GpuClass("H100", "H100!", 80, 3.9492, 8),
        GpuClass("H200", "H200", 141, 4.5396, 8),
        GpuClass("RTX Pro 6000", "RTX-PRO-6000", 96, 3.0312, 1),
        GpuClass("B200", "B200", 180, 6.2496, 8),
    )
}


def _alias_keys(name: str) -> set[str]:
    base = name.lower()
    keys = {base, base.replace(" ", ""), base.replace(" ", "_"), base.replace(" ", "-")}
    if base.startswith("rtx "):
        tail = base[4:]
        keys |= {tail, tail.replace(" ", ""), tail.replace(" ", "_")}
    keys.add(f"nvidia {base}")
    return keys


def _gpu_aliases() -> dict[str, str]:
    targets: dict[str, set[str]] = {}
    for gpu in GPUS.values():
        for spelling in (gpu.name, gpu.provider_name):
            for key in _alias_keys(spelling):
                targets.setdefault(key, set()).add(gpu.name)
    aliases = {key: next(iter(names)) for key, names in targets.items() if len(names) == 1}
    aliases.update(
        {
            "a100": "A100 SXM",
            "a100-80gb": "A100 SXM",
            "a100-40gb": "A100 SXM 40GB",
            "nvidia h100 80gb hbm3": "H100",
            "nvidia h100 pcie": "H100",
            "nvidia a100-sxm4-80gb": "A100 SXM",
            "nvidia a100-sxm4-40gb": "A100 SXM 40GB",
            "nvidia rtx pro 6000 blackwell server edition": "RTX Pro 6000",
            "nvidia h200": "H200",
            "rtx pro 6000 blackwell": "RTX Pro 6000",
            "b200 sxm6": "B200",
        }
    )
    return aliases


GPU_ALIASES = _gpu_aliases()


def canonical_gpu(name: str) -> str | None:
    """The managed class a friendly spelling names, or None."""
    return GPU_ALIASES.get((name or "").strip().lower())


@dataclass(frozen=True)
class Teacher:
    alias: str
    display_name: str
    usd_per_1m_input: float
    usd_per_1m_output: float
    hf_repo: str  # the Hugging Face repository of its weights (Flash's recipe names it for the tokenizer)
    supports_images: bool = False


DEFAULT_TEACHER = "glm-5.3"
TEACHERS: dict[str, Teacher] = {
    t.alias: t
    for t in (
        Teacher("kimi-k3", "Kimi K3", 3.00, 15.00, "moonshotai/Kimi-K3"),
        Teacher("glm-5.3", "GLM 5.3", 1.40, 4.40, "zai-org/GLM-5.3"),
        Teacher(
            "deepseek-v4.1-flash-1017", "DeepSeek V4.1 Flash 1017", 0.30, 1.20, "deepseek-ai/DeepSeek-V4.1-Flash-1017"
        ),
        Teacher("qwen3.8-27b", "Qwen3.8 27B", 0.24, 2.20, "Qwen/Qwen3.8-27B", True),
        Teacher("qwen3.5-397b-a17b", "Qwen3.5 397B A17B", 0.50, 3.60, "Qwen/Qwen3.5-397B-A17B-FP8", True),
        Teacher("qwen3-vl-235b", "Qwen3-VL 235B A22B", 0.21, 1.90, "Qwen/Qwen3-VL-235B-A22B-Instruct", True),
    )
}


def teacher_alias(value: str) -> str:
    """Flash's teacher spelling normaliser: case, `_` and `-` are interchangeable."""
    return "-".join(str(value).strip().lower().replace("_", " ").replace("-", " ").split())


GRPO_GROUP_SIZES = (2, 4, 8, 16)
GRPO_MAX_COMPLETIONS_PER_STEP = 512

# Recipe defaults the worker fills in for unset [train] keys, per algorithm.
RECIPE_DEFAULTS: dict[str, dict[str, object]] = {
    "sft": {"epochs": 2, "learning_rate": 1e-4, "save_every": 50},
    "grpo": {
        "epochs": 1,
        "learning_rate": 1e-5,
        "save_every": 20,
        "prompts_per_step": 64,
        "group_size": 8,
        "temperature": 1.0,
        "credit_assignment": "per_episode",
    },
    "opd": {
        "epochs": 1,
        "learning_rate": 1e-5,
        "save_every": 20,
        "prompts_per_step": 8,
        "group_size": 1,
        "temperature": 1.0,
        "kl_penalty_coef": 1.0,
        "teacher_model": DEFAULT_TEACHER,
    },
}
COMPLETION_TOKENS = {"grpo": (320, 1536), "opd": (512, 1536)}  # (default, with thinking)
PROMPT_TOKENS = {"grpo": 2048, "opd": 1024}
SFT_SEQ_LEN = (1024, 2048)  # (default, with thinking)
DEFAULT_LORA_RANK = 32


def completion_tokens(algorithm: str, authored: int | None, thinking: bool) -> int:
    """The per-turn completion budget a rollout algorithm uses."""
    default, with_thinking = COMPLETION_TOKENS[algorithm]
    return int(authored or (with_thinking if thinking else default))

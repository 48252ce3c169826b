"""A corpus of training configs for parity with Flash 1.3.28's own parser.

Each case starts from a valid base config for one algorithm and applies a patch of dotted keys
(`DROP` removes a key). `key` is the dotted key a rejection must name; None means Flash accepts.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

PROJECT = "0b5e4f0e-6a2a-4b8e-9a11-0c1d2e3f4a5b"
DROP = object()

BASES: dict[str, dict[str, Any]] = {
    "sft": {
        "model": "Qwen/Qwen3.5-9B",
        "project": PROJECT,
        "algorithm": "sft",
        "environment": {"id": "acme/demo/starter"},
        "train": {"epochs": 1, "lora_rank": 32},
    },
    "grpo": {
        "model": "Qwen/Qwen3.5-9B",
        "project": PROJECT,
        "algorithm": "grpo",
        "environment": {"id": "acme/demo/starter"},
        "train": {"epochs": 1, "max_examples": 100, "lora_rank": 32},
    },
    "opd": {
        "model": "Qwen/Qwen3.5-9B",
        "project": PROJECT,
        "algorithm": "opd",
        "environment": {"id": "acme/demo/starter"},
        "train": {"epochs": 1, "max_examples": 100},
    },
}


@dataclass(frozen=True)
class Case:
    name: str
    algorithm: str
    patch: dict[str, Any] = field(default_factory=dict)
    key: str | None = None

    def config(self) -> dict[str, Any]:
        raw = copy.deepcopy(BASES[self.algorithm])
        for dotted, value in self.patch.items():
            node = raw
            parts = dotted.split(".")
            for part in parts[:-1]:
                node = node.setdefault(part, {})
            if value is DROP:
                node.pop(parts[-1], None)
            else:
                node[parts[-1]] = value
        return raw


def ok(name: str, base: str, /, **patch: Any) -> Case:
    return Case(name, base, _dotted(patch))


def bad(name: str, base: str, key: str, /, **patch: Any) -> Case:
    return Case(name, base, _dotted(patch), key)


def _dotted(patch: dict[str, Any]) -> dict[str, Any]:
    return {key.replace("__", "."): value for key, value in patch.items()}


CASES: list[Case] = [
    # -- the bases and every key accepted where it belongs -------------------------------------
    ok("sft base", "sft"),
    ok("grpo base", "grpo"),
    ok("opd base", "opd"),
    ok("every sft knob", "sft", train={
        "epochs": 3, "max_examples": 0, "max_steps": 40, "save_every": 10, "save_at_steps": [10, 20, 40],
        "lora_rank": 16, "lora_alpha": 48, "learning_rate": 2e-4, "max_context_tokens": 4096, "batch_size": 8,
    }),
    ok("every grpo knob", "grpo", train={
        "epochs": 2, "max_examples": 200, "max_steps": 30, "save_every": 5, "save_at_steps": [5, 30],
        "lora_rank": 64, "lora_alpha": 64, "learning_rate": 5e-6, "max_context_tokens": 4096,
        "prompts_per_step": 32, "group_size": 16, "temperature": 0.7, "max_completion_tokens": 512,
        "kl_penalty_coef": 0.01, "stop_sequences": ["</answer>"], "structured_outputs": "json_object",
        "thinking_length_penalty_coef": 0.2, "credit_assignment": "per_turn",
    }),
    ok("every opd knob", "opd", train={
        "epochs": 1, "max_examples": 50, "max_steps": 10, "save_every": 5, "save_at_steps": [5, 10],
        "lora_rank": 32, "lora_alpha": 16, "learning_rate": 1e-5, "max_context_tokens": 3000,
        "prompts_per_step": 8, "group_size": 1, "temperature": 1.0, "max_completion_tokens": 600,
        "kl_penalty_coef": 0.5, "stop_sequences": "</s>", "teacher_model": "kimi-k3",
    }),
    ok("seed and thinking", "grpo", seed=7, thinking=True),
    ok("algorithm in capitals", "grpo", algorithm="GRPO"),
    ok("algorithm empty means sft", "sft", algorithm=""),
    ok("algorithm omitted means sft", "sft", algorithm=DROP),
    ok("project with surrounding space", "sft", project=f"  {PROJECT}  "),
    ok("every model for sft: 0.8B", "sft", model="Qwen/Qwen3.5-0.8B"),
    ok("every model for sft: 4B", "sft", model="Qwen/Qwen3.5-4B"),
    ok("27B grpo", "grpo", model="Qwen/Qwen3.8-27B"),
    ok("MoE opd", "opd", model="Qwen/Qwen3.6-35B-A3B"),
    ok("params, pip and secrets", "grpo", environment={
        "id": "acme/demo/starter", "params": {"split": "train", "difficulty": 3}, "pip": ["sympy>=1.12"],
        "secrets": ["SERPAPI_API_KEY"],
    }),
    ok("github environment ref", "sft", environment__id="github:acme/envs@main:math/environment.py"),
    ok("github https URL", "sft", environment__id="https://github.com/acme/envs"),
    ok("local-plane style id", "sft", environment__id="local/default/starter"),
    ok("wandb labels", "sft", wandb={"project": "demo", "run_name": "sft-1"}),
    ok("gpu type pin that fits", "sft", gpu={"type": "H100"}),
    ok("gpu alias spelling", "sft", gpu={"type": "h100"}),
    ok("gpu ordered list", "sft", gpu={"type": ["H100", "A100 SXM"]}),
    ok("gpu count ceiling", "sft", gpu={"count": 4}),
    ok("gpu provider pin", "sft", gpu={"provider": "modal"}),
    ok("gpu providers preference", "sft", gpu={"providers": ["modal"]}),
    ok("warm start from final", "grpo", train__init_from_adapter="flash-1700000000-abcdef12/final",
       train__lora_rank=DROP),
    ok("warm start from a step", "sft", train__init_from_adapter="run-1/step-20", train__lora_rank=DROP),
    ok("max_steps zero means unset", "sft", train__max_steps=0),
    ok("max_steps negative means unset", "sft", train__max_steps=-5),
    ok("integral float epochs", "sft", train__epochs=2.0),
    ok("rank 128 on the 9B", "sft", train__lora_rank=128),
    ok("structured outputs table", "grpo", train__structured_outputs={"regex": "[0-9]+"}),
    ok("structured outputs bare schema", "grpo", train__structured_outputs={"type": "object", "properties": {}}),
    ok("structured outputs false", "grpo", train__structured_outputs=False),
    ok("teacher spelled with underscores", "opd", train__teacher_model="GLM_5.3"),
    ok("sft with default credit assignment", "sft", train__credit_assignment="per_episode"),
    ok("sft with empty stop list", "sft", train__stop_sequences=[]),
    ok("grpo without max_examples parses (the quote fails later)", "grpo", train__max_examples=DROP),
    ok("grpo prompts x group at the cap", "grpo", train__prompts_per_step=32, train__group_size=16),
    ok("opd thinking with completion budget", "opd", thinking=True, train__max_context_tokens=2000),
    ok("null wandb run_name", "sft", wandb={"project": "p", "run_name": None}),
    # -- top level ------------------------------------------------------------------------------
    bad("a [grpo] table", "grpo", "grpo", grpo={"group_size": 8}),
    bad("an unknown top-level key", "sft", "name", name="x"),
    bad("managed run_id", "sft", "run_id", run_id="r1"),
    bad("managed model_revision", "sft", "model_revision", model_revision="abc"),
    bad("model missing", "sft", "model", model=DROP),
    bad("model not a string", "sft", "model", model=["Qwen/Qwen3.5-9B"]),
    bad("model not in the catalog", "sft", "model", model="meta-llama/Llama-3-8B"),
    bad("project missing", "sft", "project", project=DROP),
    bad("project blank", "sft", "project", project="  "),
    bad("project not a UUID", "sft", "project", project="my-project"),
    bad("project not a string", "sft", "project", project=12),
    bad("unknown algorithm", "sft", "algorithm", algorithm="dpo"),
    bad("algorithm not a string", "sft", "algorithm", algorithm=5),
    bad("thinking not a boolean", "sft", "thinking", thinking="yes"),
    bad("thinking on a model without it", "sft", "thinking", model="Qwen/Qwen3.5-0.8B", thinking=True),
    bad("opd on a model without it", "opd", "algorithm", model="Qwen/Qwen3.5-4B"),
    bad("seed a float", "sft", "seed", seed=1.5),
    bad("seed negative", "sft", "seed", seed=-1),
    bad("seed a boolean", "sft", "seed", seed=True),
    # -- [environment] --------------------------------------------------------------------------
    bad("environment id missing", "sft", "environment.id", environment={}),
    bad("environment id empty", "sft", "environment.id", environment__id=""),
    bad("environment id a bare name", "sft", "environment.id", environment__id="starter"),
    bad("environment id a local path", "sft", "environment.id", environment__id="./environment.py"),
    bad("environment path key", "sft", "environment.path", environment__path="."),
    bad("environment args instead of params", "sft", "environment.args", environment__args={"split": "train"}),
    bad("environment not a table", "sft", "environment", environment="acme/demo/starter"),
    bad("params not a table", "sft", "environment.params", environment__params="split=train"),
    bad("pip a string", "grpo", "environment.pip", environment__pip="sympy"),
    bad("pip an option", "grpo", "environment.pip", environment__pip=["--no-deps"]),
    bad("pip with a token in the URL", "grpo", "environment.pip",
        environment__pip=["git+https://ghp_token@github.com/acme/x.git"]),
    bad("pip entry empty", "grpo", "environment.pip", environment__pip=[""]),
    bad("secrets a string", "sft", "environment.secrets", environment__secrets="API_KEY"),
    bad("secret name with =", "sft", "environment.secrets", environment__secrets=["API_KEY=abc"]),
    bad("reserved secret HF_TOKEN", "sft", "environment.secrets", environment__secrets=["HF_TOKEN"]),
    bad("reserved secret in lower case", "sft", "environment.secrets", environment__secrets=["freesolo_api_key"]),
    bad("grpo-reserved thread secret", "grpo", "environment.secrets", environment__secrets=["OMP_NUM_THREADS"]),
    bad("managed resolved_sha", "sft", "environment.resolved_sha", environment__resolved_sha="abc"),
    # -- [train] keys and per-algorithm knobs ---------------------------------------------------
    bad("unknown train key", "sft", "train.max_tokens", train__max_tokens=512),
    bad("removed entropy_quantile", "grpo", "train.entropy_quantile", train__entropy_quantile=0.2),
    bad("managed hf_repo", "sft", "train.hf_repo", train__hf_repo="org/repo"),
    bad("thinking under train", "sft", "train.thinking", train__thinking=True),
    bad("train not a table", "sft", "train", train="epochs=1"),
    bad("batch_size on grpo", "grpo", "train.batch_size", train__batch_size=1),
    bad("batch_size on opd", "opd", "train.batch_size", train__batch_size=4),
    bad("prompts_per_step on sft", "sft", "train.prompts_per_step", train__prompts_per_step=8),
    bad("group_size on sft", "sft", "train.group_size", train__group_size=8),
    bad("temperature on sft", "sft", "train.temperature", train__temperature=0.5),
    bad("max_completion_tokens on sft", "sft", "train.max_completion_tokens", train__max_completion_tokens=256),
    bad("kl on sft", "sft", "train.kl_penalty_coef", train__kl_penalty_coef=0.1),
    bad("stop sequences on sft", "sft", "train.stop_sequences", train__stop_sequences=["x"]),
    bad("structured outputs on sft", "sft", "train.structured_outputs", train__structured_outputs="json_object"),
    bad("teacher on sft", "sft", "train.teacher_model", train__teacher_model="glm-5.3"),
    bad("teacher on grpo", "grpo", "train.teacher_model", train__teacher_model="glm-5.3"),
    bad("credit assignment on opd", "opd", "train.credit_assignment", train__credit_assignment="per_turn"),
    bad("thinking length penalty on opd", "opd", "train.thinking_length_penalty_coef",
        train__thinking_length_penalty_coef=0.1),
    bad("thinking length penalty on sft", "sft", "train.thinking_length_penalty_coef",
        train__thinking_length_penalty_coef=0.1),
    # -- [train] values and cross-rules ---------------------------------------------------------
    bad("grpo group size 3", "grpo", "train.group_size", train__group_size=3),
    bad("grpo group size 32", "grpo", "train.group_size", train__group_size=32),
    bad("grpo prompts x group over 512", "grpo", "train.prompts_per_step", train__prompts_per_step=64,
        train__group_size=16),
    bad("grpo prompts_per_step zero", "grpo", "train.prompts_per_step", train__prompts_per_step=0),
    bad("grpo prompts_per_step a float", "grpo", "train.prompts_per_step", train__prompts_per_step=8.5),
    bad("epochs zero", "sft", "train.epochs", train__epochs=0),
    bad("epochs a string", "sft", "train.epochs", train__epochs="2"),
    bad("epochs fractional", "sft", "train.epochs", train__epochs=1.5),
    bad("max_examples negative", "sft", "train.max_examples", train__max_examples=-1),
    bad("learning rate zero", "sft", "train.learning_rate", train__learning_rate=0.0),
    bad("learning rate a string", "sft", "train.learning_rate", train__learning_rate="1e-4"),
    bad("learning rate infinite", "sft", "train.learning_rate", train__learning_rate=float("inf")),
    bad("temperature negative", "grpo", "train.temperature", train__temperature=-0.1),
    bad("thinking length penalty above 1", "grpo", "train.thinking_length_penalty_coef",
        train__thinking_length_penalty_coef=1.5),
    bad("max_steps a float", "sft", "train.max_steps", train__max_steps=10.0),
    bad("max_steps a boolean", "sft", "train.max_steps", train__max_steps=True),
    bad("save_every zero", "sft", "train.save_every", train__save_every=0),
    bad("save_at_steps without max_steps", "sft", "train.save_at_steps", train__save_at_steps=[10, 20]),
    bad("save_at_steps beyond max_steps", "sft", "train.save_at_steps", train__save_at_steps=[10, 50],
        train__max_steps=40),
    bad("save_at_steps not increasing", "sft", "train.save_at_steps", train__save_at_steps=[20, 10],
        train__max_steps=40),
    bad("save_at_steps with zero", "sft", "train.save_at_steps", train__save_at_steps=[0, 10], train__max_steps=40),
    bad("save_at_steps a scalar", "sft", "train.save_at_steps", train__save_at_steps=10, train__max_steps=40),
    bad("lora rank above the 9B serving cap", "sft", "train.lora_rank", train__lora_rank=256),
    bad("lora rank above the 4B serving cap", "sft", "train.lora_rank", model="Qwen/Qwen3.5-4B", train__lora_rank=128),
    bad("lora rank zero", "sft", "train.lora_rank", train__lora_rank=0),
    bad("lora alpha zero", "sft", "train.lora_alpha", train__lora_alpha=0),
    bad("warm start with lora_rank", "sft", "train.lora_rank", train__init_from_adapter="run-1/final"),
    bad("warm start with lora_alpha", "sft", "train.lora_alpha", train__init_from_adapter="run-1/final",
        train__lora_rank=DROP, train__lora_alpha=16),
    bad("warm start a bare run id", "sft", "train.init_from_adapter", train__init_from_adapter="run-1",
        train__lora_rank=DROP),
    bad("warm start step without number", "sft", "train.init_from_adapter", train__init_from_adapter="run-1/step-",
        train__lora_rank=DROP),
    bad("opd kl zero", "opd", "train.kl_penalty_coef", train__kl_penalty_coef=0.0),
    bad("grpo context without prompt room", "grpo", "train.max_context_tokens", train__max_context_tokens=100),
    bad("opd context equal to completion", "opd", "train.max_context_tokens", train__max_context_tokens=512),
    bad("grpo thinking context too small", "grpo", "train.max_context_tokens", thinking=True,
        train__max_context_tokens=1536),
    bad("unsupported teacher", "opd", "train.teacher_model", train__teacher_model="gpt-5"),
    bad("teacher not a string", "opd", "train.teacher_model", train__teacher_model=5),
    bad("credit assignment unknown", "grpo", "train.credit_assignment", train__credit_assignment="per_token"),
    bad("stop sequences a number", "grpo", "train.stop_sequences", train__stop_sequences=5),
    bad("stop sequences with a number", "grpo", "train.stop_sequences", train__stop_sequences=["a", 1]),
    bad("structured outputs two constraints", "grpo", "train.structured_outputs",
        train__structured_outputs={"regex": "a", "choice": ["b"]}),
    bad("structured outputs grammar", "grpo", "train.structured_outputs", train__structured_outputs={"grammar": "x"}),
    bad("structured outputs bad JSON string", "grpo", "train.structured_outputs", train__structured_outputs="{oops"),
    bad("structured outputs empty choice", "grpo", "train.structured_outputs",
        train__structured_outputs={"choice": []}),
    bad("structured outputs whitespace_pattern", "grpo", "train.structured_outputs",
        train__structured_outputs={"json": {"type": "object"}, "whitespace_pattern": " "}),
    bad("structured outputs option without constraint", "grpo", "train.structured_outputs",
        train__structured_outputs={"disable_any_whitespace": True}),
    # -- [gpu] ----------------------------------------------------------------------------------
    bad("gpu unknown class", "sft", "gpu.type", gpu={"type": "T4"}),
    bad("gpu empty list", "sft", "gpu.type", gpu={"type": []}),
    bad("gpu type a number", "sft", "gpu.type", gpu={"type": 4}),
    bad("gpu count zero", "sft", "gpu.count", gpu={"count": 0}),
    bad("gpu count nine", "sft", "gpu.count", gpu={"count": 9}),
    bad("gpu count a string", "sft", "gpu.count", gpu={"count": "2"}),
    bad("gpu provider unknown", "sft", "gpu.provider", gpu={"provider": "runpod"}),
    bad("gpu provider and providers", "sft", "gpu.provider", gpu={"provider": "modal", "providers": ["modal"]}),
    bad("gpu providers a string", "sft", "gpu.providers", gpu={"providers": "modal"}),
    bad("gpu providers empty", "sft", "gpu.providers", gpu={"providers": []}),
    bad("gpu managed disk_gb", "sft", "gpu.disk_gb", gpu={"disk_gb": 200}),
    bad("gpu too small for grpo on the 9B", "grpo", "gpu.type", gpu={"type": "L4"}),
    bad("gpu too small for the 27B", "sft", "gpu.type", model="Qwen/Qwen3.8-27B", gpu={"type": "L40S"}),
    bad("gpu not a table", "sft", "gpu", gpu="H100"),
    # -- [wandb] --------------------------------------------------------------------------------
    bad("wandb name", "sft", "wandb.name", wandb={"name": "x"}),
    bad("wandb entity", "sft", "wandb.entity", wandb={"project": "p", "entity": "me"}),
    bad("wandb empty project", "sft", "wandb.project", wandb={"project": " "}),
    bad("wandb not a table", "sft", "wandb", wandb="demo"),
]  # fmt: skip

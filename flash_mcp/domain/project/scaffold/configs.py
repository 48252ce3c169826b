"""The three starter training configs (SFT, GRPO, OPD) that `setup_project` writes."""

from __future__ import annotations

import json
from dataclasses import dataclass

DEFAULT_MODEL = "Qwen/Qwen3.5-9B"
_ALGORITHMS = {"sft": "sft", "rl": "grpo", "opd": "opd"}


@dataclass(frozen=True)
class ConfigContext:
    project: str | None
    folder: str
    multi_turn: bool
    reasoning: bool


def render_config(name: str, ctx: ConfigContext) -> str:
    """The text of configs/<name>.toml for `name` in sft, rl, opd."""
    algorithm = _ALGORITHMS[name]
    parts = [
        _opd_multi_turn_note(ctx) if name == "opd" else "",
        _top_level(algorithm, ctx),
        _wandb(algorithm, ctx),
        _environment(name, ctx),
        _train(name, ctx),
    ]
    return "".join(parts)


def _top_level(algorithm: str, ctx: ConfigContext) -> str:
    if ctx.project:
        project = f"project = {json.dumps(ctx.project)}\n"
    else:
        project = (
            '# project = "<your Freesolo project UUID>"  # required to push and train on Flash;\n'
            "#   rerun setup_project with project=<uuid> or set it with edit_config\n"
        )
    algo_line = f"algorithm = {json.dumps(algorithm)}"
    if algorithm == "opd":
        algo_line += "   # on-policy distillation from a managed teacher (default glm-5.3)"
    thinking = "thinking = true\n" if ctx.reasoning else ""
    return f"model = {json.dumps(DEFAULT_MODEL)}\n{project}{algo_line}\n{thinking}\n"


def _wandb(algorithm: str, ctx: ConfigContext) -> str:
    wandb_project = ctx.project or ctx.folder
    run_name = f"{ctx.folder}-{algorithm}"
    return (
        "# W&B logging needs WANDB_API_KEY in your shell or .env at submit time; without it the run\n"
        "# trains with W&B disabled. Only `project` and `run_name` are allowed here.\n"
        "[wandb]\n"
        f"project = {json.dumps(wandb_project, ensure_ascii=False)}\n"
        f"run_name = {json.dumps(run_name, ensure_ascii=False)}\n\n"
    )


def _environment(name: str, ctx: ConfigContext) -> str:
    project = ctx.project or "<project-uuid>"
    text = (
        "# Environment: push this folder (flash-mcp's push_environment fills the id below, or run\n"
        f"# `flash env push --project {project} --name my-env .` and paste the returned id).\n"
    )
    if name == "opd":
        text += "# The OPD teacher and its key are platform-managed; nothing to set up or export.\n"
    else:
        text += (
            "# If the environment reads secrets with os.environ, list only the env var NAMES here;\n"
            "# values come from your shell or .env at submit time and are never stored in the spec.\n"
        )
    text += '[environment]\nid = ""\n\n'
    if name != "opd":
        text += '# secrets = ["SERPAPI_API_KEY"]\n\n'
    return text


def _train(name: str, ctx: ConfigContext) -> str:
    lines = ["[train]", "epochs = 1"]
    if name == "sft":
        lines.append("# max_examples = 100  # optional cap on training rows; unset (or 0) trains on every row")
    else:
        lines += [
            "max_examples = 2  # prompts per epoch; GRPO/OPD quotes need this (or max_steps).",
            "#   The starter dataset has 2 rows: set it to your row count whenever the dataset changes",
            "#   (check_project flags a mismatch), or replace it with max_steps.",
        ]
    if name == "rl" and ctx.reasoning:
        lines.append("max_completion_tokens = 2048  # per model turn; reasoning shares it with the answer")
    lines.append("lora_rank = 32")
    lines += _train_notes(name, ctx)
    lines += [
        "# GPUs are managed: Flash picks the cheapest class that fits unless [gpu] pins one.",
        "",
    ]
    return "\n".join(lines)


def _train_notes(name: str, ctx: ConfigContext) -> list[str]:
    if name == "sft" and ctx.reasoning:
        return [
            "# reasoning is on (thinking = true): every gold `output` needs a <think>...</think> block;",
            "# test_environment warns about rows without one.",
        ]
    if name == "rl":
        return [
            "# Constrain every rollout with guided decoding (JSON schema shown; regex and choice also parse):",
            '# structured_outputs = \'{"type": "object", "properties": {"answer": {"type": "string"}}, '
            '"required": ["answer"]}\'',
        ]
    if name == "opd":
        return [
            '# teacher_model = "glm-5.3"   # glm-5.3 (default) | kimi-k3 | qwen3.5-397b-a17b |',
            "#                             # deepseek-v4.1-flash-1017 | qwen3.8-27b | qwen3-vl-235b",
        ]
    return []


def _opd_multi_turn_note(ctx: ConfigContext) -> str:
    if not ctx.multi_turn:
        return ""
    return (
        "# note: OPD rolls out each episode and distils every assistant turn (conditioned on the\n"
        "# transcript so far) against the managed teacher: the multi-turn distillation path.\n\n"
    )

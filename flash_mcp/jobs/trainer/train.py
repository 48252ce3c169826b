"""SFT, GRPO and OPD on this machine with TRL + PEFT LoRA, reporting in Flash's vocabulary. The agent's environment
runs in its own sandboxed worker (jobs/env_worker.py); this process only talks to it (jobs/trainer/rows.py)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from flash_mcp.domain.config.steps import planned_steps, rollout_prompts_per_step, save_steps, sft_batch
from flash_mcp.domain.runs.device import detect_accelerator, precision_args, vllm_args, vllm_installed
from flash_mcp.domain.runs.rundir import CANCEL, CHECKPOINTS, METRICS, SAMPLES, append_jsonl, set_status
from flash_mcp.jobs.trainer.rows import TRAIN_SPLIT, Rows, row_ids, within_prompt_budget
from flash_mcp.jobs.trainer.samples import PROBE_TOKENS, Probe, probe_steps, record_probe
from flash_mcp.runtime.worker import WorkerClient

# TRL log key -> Flash metric name
METRIC_NAMES = {
    "loss": "loss",
    "reward": "reward",
    "reward_std": "reward_std",
    "grad_norm": "grad_norm",
    "kl": "kl",
    "entropy": "entropy",
    "frac_reward_zero_std": "frac_reward_zero_std",
    "completions/mean_length": "mean_completion_tokens",
    "completions/clipped_ratio": "truncation_rate",
    "learning_rate": "learning_rate",
}
SAMPLES_PER_STEP = 8


def train(run_dir: Path, job: dict[str, Any], env: WorkerClient) -> dict[str, Any]:
    """Run the job with the environment served by `env`; return the final status fields."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    spec, algorithm = job["spec"], job["spec"]["algorithm"]
    env.request("load", entrypoint=job["entrypoint"], params=spec["environment"]["params"], split=TRAIN_SPLIT)
    tokenizer = AutoTokenizer.from_pretrained(job["model_path"], local_files_only=True)
    accelerator = detect_accelerator()
    model = AutoModelForCausalLM.from_pretrained(job["model_path"], local_files_only=True, dtype=accelerator.dtype)
    print(f"training on {accelerator.device} in {accelerator.dtype}", flush=True)
    if job.get("init_adapter_path"):  # a warm start: the earlier run's adapter, trainable, instead of a fresh LoRA
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, job["init_adapter_path"], is_trainable=True)
        print(f"warm start from {job['init_adapter_path']}", flush=True)
    info, train_knobs = env.reply(), spec["train"]  # the worker loaded the environment while the model loaded
    ids = row_ids(info)
    if train_knobs.get("max_examples"):
        ids = ids[: int(train_knobs["max_examples"])]
    examples = Rows(env, ids)
    total = planned_steps(algorithm, train_knobs, len(ids))
    set_status(run_dir, state="running", stage=f"{algorithm}_step", step=0, total_steps=total)
    multi = info.get("multi_turn") is True
    if multi and algorithm == "opd":  # the plane refuses it before launch; the loaded environment has the last word
        raise RuntimeError("multi-turn OPD cannot be rehearsed locally; launch it with plane='flash'")
    probe_tokens = PROBE_TOKENS if algorithm == "sft" else int(train_knobs.get("max_completion_tokens") or 320)
    probes = {0} if algorithm == "grpo" else probe_steps(total)  # GRPO records its rollouts every step
    if multi and algorithm == "grpo":
        probes = set()  # multi-turn GRPO records whole episodes every step
    callbacks = [
        _Reporter(run_dir, total, save_steps(train_knobs, total)),
        Probe(examples, tokenizer, run_dir, probes, probe_tokens),
    ]
    if algorithm == "sft":
        trainer = _sft_trainer(examples, model, tokenizer, spec, job, callbacks)
    elif algorithm == "opd":
        trainer = _opd_trainer(examples, model, tokenizer, spec, job, callbacks, accelerator.dtype)
    else:
        trainer = _grpo_trainer(examples, model, tokenizer, spec, job, callbacks, run_dir, multi)
    trainer.train()
    cancelled = (run_dir / CANCEL).exists()
    final = run_dir / CHECKPOINTS / "final"
    trainer.model.save_pretrained(final)
    tokenizer.save_pretrained(final)
    if algorithm != "grpo" and not cancelled:
        record_probe(examples, trainer.model, tokenizer, run_dir, trainer.state.global_step, probe_tokens)
    state = "cancelled" if cancelled else "done"
    return {"state": state, "stage": state, "step": trainer.state.global_step, "finished_at": time.time()}


def _lora(spec: dict[str, Any], model: Any = None):
    from peft import LoraConfig, PeftModel

    if isinstance(model, PeftModel):
        return None  # warm start: the loaded adapter trains on

    knobs = spec["train"]
    rank = int(knobs.get("lora_rank") or 32)
    return LoraConfig(
        r=rank, lora_alpha=int(knobs.get("lora_alpha") or 2 * rank), target_modules="all-linear", task_type="CAUSAL_LM"
    )


def _common(spec: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    knobs = spec["train"]
    common = {
        "output_dir": str(run_dir / "trainer"),
        "num_train_epochs": float(knobs.get("epochs") or 1),
        "learning_rate": float(knobs.get("learning_rate") or 1e-4),
        "logging_steps": 1,
        "save_strategy": "no",
        "report_to": [],
        **precision_args(detect_accelerator()),
        "seed": int(spec.get("seed", 42)),
        "disable_tqdm": True,
    }
    if knobs.get("max_steps"):
        common["max_steps"] = int(knobs["max_steps"])
    return common


def _sft_trainer(examples: Rows, model, tokenizer, spec, job, callbacks):
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    completions = examples.completions()
    rows = [{"prompt": p, "completion": c} for p, c in zip(examples.prompts, completions, strict=True)]
    knobs = spec["train"]
    args = SFTConfig(
        **_common(spec, Path(job["run_dir"])),
        per_device_train_batch_size=sft_batch(knobs, len(rows)),
        max_length=int(knobs.get("max_context_tokens") or 1024),
    )
    return SFTTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        peft_config=_lora(spec, model),
        callbacks=callbacks,
    )


def _opd_trainer(examples: Rows, model, tokenizer, spec, job, callbacks, dtype: str):
    from transformers import AutoModelForCausalLM

    from flash_mcp.jobs.trainer.opd import opd_trainer

    teacher = AutoModelForCausalLM.from_pretrained(job["teacher_path"], local_files_only=True, dtype=dtype)
    print(f"distilling from {job['teacher_path']}", flush=True)
    common = _common(spec, Path(job["run_dir"]))
    return opd_trainer(examples, model, teacher, tokenizer, spec["train"], common, _lora(spec, model), callbacks)


def _grpo_trainer(examples: Rows, model, tokenizer, spec, job, callbacks, run_dir: Path, multi_turn: bool = False):
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    knobs = spec["train"]
    completion_tokens = int(knobs.get("max_completion_tokens") or 320)
    rows = within_prompt_budget(examples, tokenizer, knobs)
    group = int(knobs.get("group_size") or 8)
    prompts = rollout_prompts_per_step("grpo", knobs, len(rows))
    args = GRPOConfig(
        **_common(spec, Path(job["run_dir"])),
        per_device_train_batch_size=prompts * group,
        num_generations=group,
        max_completion_length=completion_tokens,
        temperature=float(knobs.get("temperature") or 1.0),
        beta=float(knobs.get("kl_penalty_coef") or 0.0),
        **vllm_args("grpo", vllm_installed(), detect_accelerator()),
    )
    common = {
        "model": model, "args": args, "train_dataset": Dataset.from_list(rows), "processing_class": tokenizer,
        "peft_config": _lora(spec, model), "callbacks": callbacks,
    }  # fmt: skip
    if multi_turn:
        from flash_mcp.jobs.trainer.multiturn import EpisodeRollout, episode_trainer

        rollout = EpisodeRollout(examples, tokenizer, knobs, run_dir)
        return episode_trainer(rollout, knobs.get("credit_assignment") == "per_turn", **common)
    sampler = _RewardSampler(examples, run_dir)
    trainer = GRPOTrainer(reward_funcs=[sampler], **common)
    sampler.trainer = trainer
    return trainer


class _RewardSampler:
    """GRPO's reward function: the environment's scorer in the worker, one request per generation batch, with a
    few rollouts kept as samples."""

    __name__ = "environment_reward"

    def __init__(self, examples: Rows, run_dir: Path):
        self.examples, self.run_dir = examples, run_dir
        self.trainer = None

    def __call__(self, prompts, completions, row, **_: Any) -> list[float]:
        step = self.trainer.state.global_step + 1 if self.trainer else 0
        texts = [c[-1]["content"] if isinstance(c, list) else str(c) for c in completions]
        reference = self.examples.reference(row[0]) if row else None
        pairs = list(zip(row, texts, strict=True)) + ([(row[0], reference)] if reference is not None else [])
        scored = self.examples.score(pairs)
        if reference is not None:  # the row's own answer, scored in the same request: the hack watch's yardstick
            reward, reason = scored.pop()
            append_jsonl(self.run_dir / SAMPLES, {
                "step": step, "row_id": self.examples.ids[row[0]], "prompt": _last_text(prompts[0]),
                "completion": reference, "reward": reward, "reason": reason, "kind": "reference",
            })  # fmt: skip
        for prompt, text, index, (reward, reason) in list(zip(prompts, texts, row, scored, strict=True))[
            :SAMPLES_PER_STEP
        ]:
            append_jsonl(self.run_dir / SAMPLES, {
                "step": step, "row_id": self.examples.ids[index],
                "prompt": _last_text(prompt),
                "completion": text, "reward": reward, "reason": reason, "kind": "rollout",
            })  # fmt: skip
        return [reward for reward, _ in scored]


def _last_text(prompt: Any) -> str:
    return prompt[-1]["content"] if isinstance(prompt, list) else str(prompt)


def _reporter_base():
    from transformers import TrainerCallback

    return TrainerCallback


class _Reporter(_reporter_base()):
    """Flash-named metrics, heartbeats, LoRA checkpoints at the planned steps, and cancellation."""

    def __init__(self, run_dir: Path, total: int | None, keep: list[int]):
        self.run_dir, self.total, self.keep = run_dir, total, set(keep)

    def on_log(self, args, state, control, logs=None, **kwargs):
        metrics = {flash: float(logs[key]) for key, flash in METRIC_NAMES.items() if logs and key in logs}
        if metrics and "train_runtime" not in (logs or {}):
            append_jsonl(self.run_dir / METRICS, {"step": state.global_step, "time": time.time(), **metrics})
            set_status(self.run_dir, step=state.global_step, total_steps=state.max_steps or self.total)

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if state.global_step in self.keep and model is not None:
            model.save_pretrained(self.run_dir / CHECKPOINTS / f"step-{state.global_step}")
        if (self.run_dir / CANCEL).exists():
            control.should_training_stop = True
        return control

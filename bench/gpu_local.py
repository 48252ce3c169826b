"""Local SFT and GRPO on the GPU: launch_training against bare TRL on the same GPU, model, rows and knobs.

Where a CUDA GPU is present, trains a small real model from the local Hugging Face cache (a 0.5B Qwen by
default, or --model DIR) through launch_training and through a bare TRL script, interleaved over
--repeats, and prints the median tokens/s of each side and their ratio. SFT counts the training rows'
prompt + completion tokens per epoch; GRPO counts the generated completion tokens (TRL's
completions/mean_length x completions). Both sides pay for a fresh process that imports torch and
loads the model. Without a GPU it says so and exits 0.

    python bench/gpu_local.py [--model DIR] [--rows 512] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SFT = {"train.epochs": 1, "train.batch_size": 8, "train.learning_rate": 1e-4, "train.lora_rank": 16}
GRPO = {
    "train.max_steps": 4, "train.prompts_per_step": 8, "train.group_size": 4, "train.max_completion_tokens": 64,
    "train.learning_rate": 1e-5, "train.lora_rank": 16, "train.temperature": 1.0, "train.kl_penalty_coef": 0.0,
}  # fmt: skip
CACHED = ("Qwen--Qwen2.5-0.5B-Instruct", "Qwen--Qwen3-0.6B", "Qwen--Qwen2.5-0.5B")


def gpu_present() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def cached_model() -> Path | None:
    hub = Path.home() / ".cache" / "huggingface" / "hub"
    for name in CACHED:
        snapshots = sorted((hub / f"models--{name}" / "snapshots").glob("*/config.json"))
        if snapshots:
            return snapshots[-1].parent
    return None


def rows(count: int) -> list[dict]:
    return [{"input": f"What is {i % 50} + {i % 7}? Answer with the number.", "output": str(i % 50 + i % 7)}
            for i in range(count)]  # fmt: skip


# -- the bare TRL side (run as `gpu_local.py --bare sft|grpo MODEL ROWS OUT` in a fresh process) ----------


def bare(algorithm: str, model_dir: str, rows_path: str, out: str) -> None:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer

    data = [json.loads(line) for line in Path(rows_path).read_text(encoding="utf-8").splitlines() if line.strip()]
    bf16 = torch.cuda.is_bf16_supported()
    precision = {"bf16": bf16, "fp16": not bf16}
    common = dict(output_dir=out, logging_steps=1, save_strategy="no", report_to=[], seed=42, disable_tqdm=True)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16 if bf16 else torch.float16)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    lora = LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM")
    if algorithm == "sft":
        from trl import SFTConfig, SFTTrainer

        args = SFTConfig(**common, **precision, num_train_epochs=1, per_device_train_batch_size=8,
                         learning_rate=1e-4, max_length=1024)  # fmt: skip
        dataset = [{"prompt": [{"role": "user", "content": r["input"]}],
                    "completion": [{"role": "assistant", "content": r["output"]}]} for r in data]  # fmt: skip
        trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(dataset),
                             processing_class=tokenizer, peft_config=lora)  # fmt: skip
    else:
        from trl import GRPOConfig, GRPOTrainer

        answers = {r["input"]: r["output"] for r in data}

        def exact(prompts, completions, **_):
            pairs = zip(prompts, completions, strict=True)
            return [float(c[-1]["content"].strip() == answers[p[-1]["content"]]) for p, c in pairs]

        args = GRPOConfig(**common, **precision, max_steps=4, per_device_train_batch_size=32, num_generations=4,
                          max_completion_length=64, learning_rate=1e-5, temperature=1.0, beta=0.0)  # fmt: skip
        dataset = [{"prompt": [{"role": "user", "content": r["input"]}]} for r in data]
        trainer = GRPOTrainer(model=model, args=args, train_dataset=Dataset.from_list(dataset),
                              processing_class=tokenizer, peft_config=lora, reward_funcs=[exact])  # fmt: skip
    trainer.train()
    lengths = [log["completions/mean_length"] for log in trainer.state.log_history if "completions/mean_length" in log]
    print(json.dumps({"mean_completion_tokens": lengths}))


def run_bare(algorithm: str, model: Path, rows_path: Path, out: Path) -> tuple[float, list[float]]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, __file__, "--bare", algorithm, str(model), str(rows_path), str(out)],
        check=True, capture_output=True, text=True, env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    elapsed = time.perf_counter() - started
    return elapsed, json.loads(done.stdout.strip().splitlines()[-1])["mean_completion_tokens"]


# -- the flash-mcp side: launch_training through an in-process MCP client --------------------------------


async def run_tool(workspace: Path, home: Path, config: str, knobs: dict) -> tuple[float, list[float]]:
    from mcp import Client

    from bench.local_setup import train_and_wait
    from flash_mcp.core.settings import ServerSettings
    from flash_mcp.server import build_server

    async with Client(build_server(ServerSettings.create(workspace, home=home))) as client:
        run_id, elapsed = await train_and_wait(client, config, knobs)
    metrics = (home / "runs" / run_id / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return elapsed, [json.loads(m)["mean_completion_tokens"] for m in metrics if "mean_completion_tokens" in m]


async def scaffold(workspace: Path, home: Path, data: list[dict]) -> None:
    from mcp import Client

    from flash_mcp.core.settings import ServerSettings
    from flash_mcp.server import build_server

    async with Client(build_server(ServerSettings.create(workspace, home=home))) as client:
        await client.call_tool("setup_project", {"directory": "p"})
        train = workspace / "p" / "dataset" / "train.jsonl"
        train.write_text("".join(json.dumps(r) + "\n" for r in data), encoding="utf-8")
        await client.call_tool("push_environment", {"name": "gpu-bench", "directory": "p"})


def sft_tokens(model: Path, data: list[dict]) -> int:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model))
    chat = [[{"role": "user", "content": r["input"]}, {"role": "assistant", "content": r["output"]}] for r in data]
    return sum(len(tokenizer.apply_chat_template(c, tokenize=True)) for c in chat)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--rows", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if not gpu_present():
        print("no GPU is present (torch sees no CUDA device): nothing to measure")
        return
    model = args.model or cached_model()
    if model is None:
        sys.exit(f"no small model in the local Hugging Face cache (tried {', '.join(CACHED)}); pass --model DIR")
    import anyio

    data = rows(args.rows)
    tokens = sft_tokens(model, data)
    completions = GRPO["train.max_steps"] * GRPO["train.prompts_per_step"] * GRPO["train.group_size"]
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        home, workspace = root / "home", root / "ws"
        home.mkdir()
        workspace.mkdir()
        (home / "settings.toml").write_text(f'[local]\nstand_in_model = "{model}"\n', encoding="utf-8")
        anyio.run(scaffold, workspace, home, data)
        rows_path = workspace / "p" / "dataset" / "train.jsonl"
        speeds: dict[str, list[float]] = {"sft bare": [], "sft tool": [], "grpo bare": [], "grpo tool": []}
        for repeat in range(args.repeats):
            for algorithm, config, knobs in (("sft", "p/configs/sft.toml", SFT), ("grpo", "p/configs/rl.toml", GRPO)):
                sides = ("bare", "tool") if repeat % 2 == 0 else ("tool", "bare")  # alternate who goes first
                for side in sides:
                    if side == "bare":
                        elapsed, lengths = run_bare(algorithm, model, rows_path, root / f"bare-{repeat}-{algorithm}")
                    else:
                        elapsed, lengths = anyio.run(run_tool, workspace, home, config, knobs)
                    count = tokens if algorithm == "sft" else statistics.mean(lengths or [0]) * completions
                    speeds[f"{algorithm} {side}"].append(count / elapsed)
    print(f"model: {model}  rows: {args.rows}  repeats: {args.repeats}")
    for algorithm in ("sft", "grpo"):
        bare_speed = statistics.median(speeds[f"{algorithm} bare"])
        tool_speed = statistics.median(speeds[f"{algorithm} tool"])
        print(f"{algorithm:4}  bare TRL {bare_speed:9.1f} tok/s   launch_training {tool_speed:9.1f} tok/s   "
              f"ratio (tool / bare) {tool_speed / bare_speed:.2f}")  # fmt: skip


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--bare":
        bare(*sys.argv[2:6])
    else:
        main()

"""Multi-turn GRPO: TRL's GRPOTrainer with a custom rollout (`rollout_func`) that plays whole episodes
through the environment as Flash's worker does: start the episode, each model turn (at most
`max_completion_tokens`), the environment's reply, until done or the turn limit. The environment's hooks run
in the environment worker (episode_start / episode_turn, every live episode's turn in one request); the
model's turns are generated here. The episode's score is
the reward; with `credit_assignment = "per_turn"` and `per_turn_rewards` reported, each turn's tokens get
their own group-relative advantage. The environment's tokens are masked out of the loss."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flash_mcp.domain.runs.rundir import SAMPLES, append_jsonl
from flash_mcp.jobs.evaluator.generate import end_ids
from flash_mcp.jobs.model_episode import ModelPolicy, Trace, turn_rewards
from flash_mcp.jobs.trainer.credit import per_turn_advantages
from flash_mcp.jobs.trainer.rows import Rows, scored_episode
from flash_mcp.runtime.episode import MAX_TURNS
from flash_mcp.runtime.worker import Step

SAMPLES_PER_STEP = 8


class EpisodeRollout:
    """TRL's `rollout_func`: one episode per prompt the trainer hands over (groups are already repeated)."""

    def __init__(self, examples: Rows, tokenizer, knobs: dict[str, Any], run_dir: Path):
        self.examples, self.tokenizer, self.run_dir = examples, tokenizer, run_dir
        self.max_tokens = int(knobs.get("max_completion_tokens") or 320)
        self.temperature = float(knobs.get("temperature") if knobs.get("temperature") is not None else 1.0)
        self.inputs: list[dict] = []
        self.last: dict[str, list] = {}

    def __call__(self, prompts: list, trainer: Any) -> dict[str, list]:
        model = trainer.accelerator.unwrap_model(trainer.model)
        stops = end_ids(model, self.tokenizer)
        rows = [item["row"] for item in self.inputs] if len(self.inputs) == len(prompts) else None
        if rows is None:
            raise RuntimeError("multi-turn rollout lost track of its rows")
        was_training = model.training
        model.eval()
        try:
            traces = self._play(rows, model, stops)
        finally:
            model.train(was_training)
        self._record(trainer, prompts, rows, traces)
        self.last = {
            "spans": [t.spans for t in traces],
            "turn_rewards": [turn_rewards(t.scored, len(t.spans)) for t in traces],
        }
        return {
            "prompt_ids": [t.prompt_ids for t in traces],
            "completion_ids": [t.completion_ids for t in traces],
            "logprobs": None,
            "env_mask": [t.mask for t in traces],
            "episode_reward": [float(t.scored["score"]) for t in traces],
        }

    def _play(self, rows: list[int], model: Any, stops: set[int]) -> list[Trace]:
        """One episode per row, played turn by turn: the model here, the environment in the worker."""
        env = self.examples.env
        policies = [ModelPolicy(model, self.tokenizer, self.max_tokens, self.temperature, stops) for _ in rows]
        steps = env.episode_start([self.examples.ids[row] for row in rows])
        for _ in range(MAX_TURNS + 1):
            live = [i for i, step in enumerate(steps) if step.messages is not None and step.episode is not None]
            if not live:
                break
            turns = [(steps[i].episode, policies[i](steps[i].messages)) for i in live]
            for i, step in zip(live, env.episode_turn(turns), strict=True):
                steps[i] = step
        else:
            steps = [s if s.scored or s.error else Step(error=f"more than {MAX_TURNS} turns") for s in steps]
        self.examples.fail_if_gone()
        for policy, step in zip(policies, steps, strict=True):
            policy.trace.scored = scored_episode(step)
        return [policy.trace for policy in policies]

    def _record(self, trainer, prompts, rows, traces) -> None:
        step = trainer.state.global_step + 1
        for prompt, row, trace in list(zip(prompts, rows, traces, strict=True))[:SAMPLES_PER_STEP]:
            turns = trace.transcript(len(prompt))
            append_jsonl(self.run_dir / SAMPLES, {
                "step": step, "row_id": self.examples.ids[row], "prompt": prompt[-1]["content"],
                "completion": "\n".join(f"[{t['role']}] {t['content']}" for t in turns), "turns": turns,
                "reward": float(trace.scored["score"]), "turn_rewards": trace.scored.get("per_turn_rewards"),
                "reason": trace.scored.get("reason") or trace.scored.get("error") or None, "kind": "episode",
                "truncated": trace.truncated,
            })  # fmt: skip


def episode_reward(prompts, completions, episode_reward, **_: Any) -> list[float]:
    """The reward function: the score the rollout already computed for each whole episode."""
    return [float(value) for value in episode_reward]


def episode_trainer(rollout: EpisodeRollout, per_turn: bool, **kwargs: Any):
    """A GRPOTrainer driving `rollout`; `per_turn` applies per-turn credit."""
    from trl import GRPOTrainer

    class EpisodeGRPOTrainer(GRPOTrainer):
        def _generate_and_score_completions(self, inputs):
            rollout.inputs = inputs
            output = super()._generate_and_score_completions(inputs)
            if per_turn and any(r is not None for r in rollout.last.get("turn_rewards", [])):
                width = output["completion_ids"].shape[1]
                output["advantages"] = per_turn_advantages(
                    output["advantages"], width, self.num_generations, rollout.last["spans"],
                    rollout.last["turn_rewards"],
                )  # fmt: skip
            return output

    return EpisodeGRPOTrainer(reward_funcs=[episode_reward], rollout_func=rollout, **kwargs)

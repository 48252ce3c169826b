"""A multi-turn episode played by a causal LM: the shared episode driver with the model as its policy.

The model generates each turn from the exact token sequence training will score (prompt, its own
earlier turns, the environment's replies rendered by the chat template), so the rollout and the
loss see the same context. Used by multi-turn GRPO and multi-turn evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flash_mcp.runtime.episode import play_episode, sdk_types


@dataclass
class Trace:
    """One episode as tokens: the model's tokens (mask 1), the environment's (mask 0), each turn's span."""

    prompt_ids: list[int] = field(default_factory=list)
    completion_ids: list[int] = field(default_factory=list)
    mask: list[int] = field(default_factory=list)
    spans: list[tuple[int, int]] = field(default_factory=list)
    messages: list[dict] = field(default_factory=list)
    truncated: bool = False
    scored: dict[str, Any] = field(default_factory=dict)

    def transcript(self, prompt_length: int) -> list[dict]:
        """The episode after the prompt, turn by turn."""
        return [{"role": m["role"], "content": m.get("content")} for m in self.messages[prompt_length:]]


class ModelPolicy:
    """The policy callable `play_episode` asks for each turn; accumulates the episode's tokens in `trace`."""

    def __init__(self, model: Any, tokenizer: Any, max_tokens: int, temperature: float, stops: set[int]):
        self.model, self.tokenizer, self.max_tokens, self.temperature = model, tokenizer, max_tokens, temperature
        self.stops = stops
        self.trace = Trace()
        self.rendered = ""

    def __call__(self, messages: list[dict]) -> str:
        text = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        if not self.trace.prompt_ids:
            self.trace.prompt_ids = self._ids(text)
        else:
            self._extend(self._ids(text[_shared_prefix(self.rendered, text) :]), 0)
        self.rendered = text
        new = self._generate()
        start = len(self.trace.completion_ids)
        self._extend(new, 1)
        self.trace.spans.append((start, len(self.trace.completion_ids)))
        self.rendered += self.tokenizer.decode(new, skip_special_tokens=False)
        reply = self.tokenizer.decode([t for t in new if t not in self.stops], skip_special_tokens=True)
        self.trace.messages = [*messages, {"role": "assistant", "content": reply}]
        return reply

    def _ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def _extend(self, ids: list[int], mask: int) -> None:
        self.trace.completion_ids += ids
        self.trace.mask += [mask] * len(ids)

    def _generate(self) -> list[int]:
        import torch

        context = torch.tensor([self.trace.prompt_ids + self.trace.completion_ids], device=self.model.device)
        sampling = self.temperature > 0
        options: dict[str, Any] = {"max_new_tokens": self.max_tokens, "do_sample": sampling}
        options.update(temperature=self.temperature, top_p=1.0, top_k=0) if sampling else options.update(
            temperature=None, top_p=None, top_k=None
        )
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        with torch.no_grad():
            output = self.model.generate(
                input_ids=context, attention_mask=torch.ones_like(context), pad_token_id=pad,
                eos_token_id=sorted(self.stops - {pad}) or None, **options,
            )  # fmt: skip
        new = output[0, context.shape[1] :].tolist()
        end = next((i for i, token in enumerate(new) if token in self.stops), None)
        if end is None:
            self.trace.truncated = True
            return new
        return new[: end + 1]


def _shared_prefix(a: str, b: str) -> int:
    if b.startswith(a):
        return len(a)
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def play_model_episode(env, example, model, tokenizer, *, max_tokens, temperature, ceiling, stops) -> Trace:
    """Play one episode with the model as the policy; the trace carries the scored result."""
    policy = ModelPolicy(model, tokenizer, max_tokens, temperature, stops)
    policy.trace.scored = play_episode(env, example, policy, ceiling, sdk_types())
    return policy.trace


def turn_rewards(scored: dict[str, Any], turns: int) -> list[float] | None:
    """The environment's per-turn rewards when they line up with the turns played, else None (episode credit)."""
    values = scored.get("per_turn_rewards")
    if not isinstance(values, list | tuple) or len(values) != turns:
        return None
    try:
        return [float(v) for v in values]
    except (TypeError, ValueError):
        return None

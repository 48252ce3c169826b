"""Play one multi-turn episode through the environment's episode hooks, mirroring Flash's worker loop.

Shared by the environment test (which replays scripted turns) and local training and evaluation
(whose policy is the model). Runs beside the agent's code, in a child process.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from flash_mcp.core.visible import one_line
from flash_mcp.runtime.environment import ContractError, checked_messages, prompt

JUNK = "test"
TEXT_LIMIT = 400

Policy = list[str] | Callable[[list[dict]], str]


MIN_TURNS, DEFAULT_TURNS, MAX_TURNS = 8, 24, 64


def turn_ceiling(env: Any, examples: Sequence[Any]) -> int:
    """The turn cap over a dataset: the largest `max_episode_turns`, clamped; the environment test's rule."""
    best = None
    for example in examples:
        try:
            turns = int(env.max_episode_turns(example))
        except Exception:
            continue
        best = turns if best is None else max(best, turns)
    return DEFAULT_TURNS if best is None else max(MIN_TURNS, min(MAX_TURNS, best))


def sdk_types() -> dict[str, Any]:
    """The SDK's episode types, imported only when an episode is played."""
    from freesolo.environments import EnvironmentEpisode, EnvironmentMultiTurn, EnvironmentTurn

    return {"Episode": EnvironmentEpisode, "Turn": EnvironmentTurn, "Multi": EnvironmentMultiTurn}


def play_episode(env: Any, example: Any, policy: Policy, ceiling: int, sdk: dict[str, Any]) -> dict[str, Any]:
    """Play an episode: `policy` is a list of turns to replay (then wrong answers), or a callable that gets
    the chat so far and returns the model's next turn. Returns the scored episode (score, error, success,
    reason, metrics, incomplete, capped, turns, per_turn_rewards)."""
    turns = policy if isinstance(policy, list) else []
    messages = [dict(m) for m in prompt(env, example)]
    transcript: list[Any] = []
    try:
        cap = env.max_episode_turns(example)
        cap = max(1, min(ceiling, int(cap)))
    except Exception:
        cap = ceiling
    state = {"done": False, "response": "", "raw": "", "turn": 0, "metadata": []}
    played, pending, incomplete = 0, False, False
    while True:
        if callable(policy):
            content = str(policy([dict(m) for m in messages]))
        elif played < len(turns):
            content = turns[played]
        else:
            incomplete = bool(turns)
            content = junk_answer(turns)
        messages.append({"role": "assistant", "content": content})
        transcript.append(sdk["Turn"](role="assistant", content=content))
        state["response"] = state["raw"] = content
        pending, played = True, played + 1
        if played >= cap or state["done"]:
            break
        replies = _step(env, example, messages, transcript, state, sdk["Turn"])
        pending = False
        if not replies or state["done"]:
            break
        checked_messages(replies, "step_episode reply")
    if pending and not state["done"]:
        _step(env, example, messages, transcript, state, sdk["Turn"])
    episode = sdk["Episode"](
        messages=tuple(messages),
        response_text=state["response"],
        turns=tuple(transcript),
        metadata={"steps": state["metadata"]} if state["metadata"] else {},
    )
    if type(env).score_episode is not _base_score_episode():
        result = env.score_episode(example, episode)
    else:
        result = env.score_response(example, env.normalize_response_text(example, episode.response_text))
    scored = reward_record(result)
    scored.update(incomplete=incomplete, capped=played >= cap and not state["done"], turns=played)
    scored["per_turn_rewards"] = _per_turn_rewards(result)
    return scored


def _per_turn_rewards(result: Any) -> list[float] | None:
    """`metadata["per_turn_rewards"]` as Flash reads it (flash/envs/loading/adapter.py), or None."""
    metadata = getattr(result, "metadata", None)
    values = metadata.get("per_turn_rewards") if isinstance(metadata, dict) else None
    if values is None or isinstance(values, str | bytes | dict | set | frozenset):
        return None
    try:
        return [float(value) for value in values]
    except (TypeError, ValueError):
        return None


def _step(env: Any, example: Any, messages: list, transcript: list, state: dict, turn: Any) -> list:
    step = env.step_episode(example, list(messages), state["raw"])
    state["done"] = bool(step.done)
    if step.final_response_text is not None:
        state["response"] = state["raw"] = str(step.final_response_text)
    state["turn"] += 1
    if step.metadata:
        state["metadata"].append(step.metadata)
    replies = [dict(m) for m in step.messages]
    messages.extend(replies)
    transcript.extend(turn(role=str(m.get("role", "")), content=m.get("content", "")) for m in replies)
    return replies


def _base_score_episode() -> Any:
    from freesolo.environments.base import Environment

    return Environment.score_episode


def reward_record(result: Any) -> dict[str, Any]:
    """A RewardResult as plain data (score, error, success, reason, metrics); a non-finite score is a ContractError."""
    score = float(getattr(result, "score", 0.0))
    if not math.isfinite(score):
        raise ContractError("score", f"reward is not finite: {score}")
    success = result.resolved_success() if hasattr(result, "resolved_success") else None
    metrics = {
        str(getattr(m, "name", "") or "metric"): getattr(m, "score", None) for m in getattr(result, "metrics", ()) or ()
    }
    return {
        "score": score,
        "error": str(getattr(result, "error", "") or ""),
        "success": success,
        "reason": clip(str(getattr(result, "reason", "") or "")),
        "metrics": metrics,
    }


def episode_text(messages: list[dict]) -> str:
    """An episode as an evaluation row's completion: each message from the model's first turn on, as `[role]
    content`; the comparison's replay rebuilds it to check that the environment replied as it did."""
    start = next((i for i, m in enumerate(messages) if m.get("role") == "assistant"), 0)
    return "\n".join(f"[{m.get('role')}] {m.get('content')}" for m in messages[start:])


def junk_answer(turns: list[str]) -> str:
    """A deliberately wrong answer that is none of `turns`."""
    gold = {t.strip() for t in turns}
    junk = JUNK
    while junk.strip() in gold:
        junk = f"not {junk}"
    return junk


def clip(text: str) -> str:
    """`text` on one line, at most TEXT_LIMIT characters."""
    return one_line(text, TEXT_LIMIT)

"""One multi-turn episode driven through an environment's hooks, as Flash's worker loop does.

`play_episode` plays a policy (a fixed list of assistant turns, or a callable that gets the chat
so far and returns the next turn) through `step_episode` and scores the episode. The environment
test and the local trainer share it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from flash_mcp.runtime.environment import ContractError, checked_messages, prompt

JUNK = "test"
TEXT_LIMIT = 400

Policy = list[str] | Callable[[list[dict]], str]


def sdk_types() -> dict[str, Any]:
    """The SDK's episode types, imported only when an episode is played."""
    from freesolo.environments import EnvironmentEpisode, EnvironmentMultiTurn, EnvironmentTurn

    return {"Episode": EnvironmentEpisode, "Turn": EnvironmentTurn, "Multi": EnvironmentMultiTurn}


def play_episode(env: Any, example: Any, policy: Policy, ceiling: int, sdk: dict[str, Any]) -> dict[str, Any]:
    """Play `policy` through the episode hooks, mirroring Flash's worker loop, and score it.

    A list is replayed turn by turn, then wrong answers once it runs out (`incomplete`); a callable
    is asked for every turn with the messages so far. Returns the reward fields (`score`, `error`,
    `success`, `reason`, `metrics`) plus `incomplete`, `capped` and `turns`.
    """
    messages = [dict(m) for m in prompt(env, example)]
    transcript: list[Any] = []
    try:
        cap = env.max_episode_turns(example)
        cap = max(1, min(ceiling, int(cap)))
    except Exception:
        cap = ceiling
    state = {"done": False, "response": "", "raw": "", "turn": 0, "metadata": []}
    turns = policy if isinstance(policy, list) else None
    played, pending, incomplete = 0, False, False
    while True:
        if turns is None:
            content = str(policy([dict(m) for m in messages]))  # type: ignore[operator]
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
    scored = reward_fields(result)
    scored.update(incomplete=incomplete, capped=played >= cap and not state["done"], turns=played)
    return scored


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


def reward_fields(result: Any) -> dict[str, Any]:
    """A `RewardResult` as plain fields; a non-finite score is a contract error."""
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


def junk_answer(turns: list[str]) -> str:
    """A deliberately wrong answer that is none of `turns`."""
    gold = {t.strip() for t in turns}
    junk = JUNK
    while junk.strip() in gold:
        junk = f"not {junk}"
    return junk


def clip(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= TEXT_LIMIT else text[: TEXT_LIMIT - 1] + "…"

"""Scripted multi-turn policies for the reward audit: none of them gives the right answer alone.

Each is a callable on the chat so far (as `runtime.episode.play_episode` takes it): the same wrong
answer every turn, different wrong answers across turns, a wrong answer that holds the gold's text
(59 for 5: a substring check pays it), the gold hidden among wrong ones in one turn (a check of every
number said pays it), a claim of success ("Correct!"), the environment's last message copied back, or
stalling to the turn limit. One that reaches the gold episode's reward is an open finding
(family `episode`). Standard library only: the environment-test child imports it.
"""

from __future__ import annotations

from collections.abc import Callable

from flash_mcp.domain.envtest.shapes import Shape, detect_shape

# family -> its policies; probes.py merges these into FAMILIES.
EPISODE_FAMILIES: dict[str, tuple[str, ...]] = {
    "episode": ("repeat-turns", "shotgun-turns", "superstring", "hedge-turn", "claims-success", "copy-back", "stall"),
}
STALL = "Let me think about this a little longer before I answer."
SUCCESS = "Correct! I solved it and the answer is right."
SHOTGUN = 8

Policy = Callable[[list[dict]], str]


def episode_policies(final_turn: str, near: Callable[[str], str]) -> dict[str, tuple[Policy, str]]:
    """Policy name -> (policy, a description of what it writes), from the gold's final assistant turn.
    `near` moves a value to another of the same kind (probes.near_value)."""
    shape = detect_shape(final_turn)
    wrongs = _wrong_sequence(shape, near)
    first = wrongs[0]

    def shotgun(messages: list[dict]) -> str:
        return wrongs[_assistant_turns(messages) % len(wrongs)]

    around = shape.put(_superstring(shape.value.strip()))
    hidden = " ".join([wrongs[0], final_turn.strip(), *(wrongs[1:3] or wrongs[:1])])  # never first, never last
    return {
        "repeat-turns": (lambda _messages: first, f"{first!r} every turn"),
        "shotgun-turns": (shotgun, " | ".join(repr(w) for w in wrongs[:3]) + " | ... across turns"),
        "superstring": (lambda _messages: around, f"{around!r} every turn (it holds the gold's text)"),
        "hedge-turn": (lambda _messages: hidden, f"{hidden!r} every turn (the gold among wrong answers)"),
        "claims-success": (lambda _messages: SUCCESS, f"{SUCCESS!r} every turn"),
        "copy-back": (_copy_back, "the environment's last message, copied back each turn"),
        "stall": (lambda _messages: STALL, f"{STALL!r} every turn, to the turn limit"),
    }


def _wrong_sequence(shape: Shape, near: Callable[[str], str]) -> list[str]:
    """Distinct wrong answers in the gold's shape: the value moved again and again, never back to it."""
    gold, value, out = shape.value.strip(), shape.value, []
    for _ in range(SHOTGUN):
        value = near(value)
        if value.strip() == gold or not value.strip():
            break
        text = shape.put(value)
        if text not in out:
            out.append(text)
    return out or [shape.put(gold + " not")]


def _superstring(value: str) -> str:
    """A wrong answer holding `value` as a substring: a 9 appended to a number (5 -> 59, 2.5 -> 2.59: never the
    same value, as a 0 after a decimal point would be), else a letter."""
    return value + ("9" if value[-1:].isdigit() else "s") if value else "9"


def _assistant_turns(messages: list[dict]) -> int:
    return sum(str(m.get("role", "")).lower() == "assistant" for m in messages)


def _copy_back(messages: list[dict]) -> str:
    replies = [m for m in messages if str(m.get("role", "")).lower() != "assistant"]
    content = replies[-1].get("content", "") if replies else ""
    return content if isinstance(content, str) else str(content)

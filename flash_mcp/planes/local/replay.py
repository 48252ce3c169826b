"""The comparison's replay of multi-turn episodes: each recorded episode played again through a fresh environment
worker, its model turns fed in order, episodes of both sides started and advanced together in the shuffled order
the comparison gave them, so the worker sees nothing that says whose episode it plays. A replay counts only when
the environment asked for exactly the recorded turns and replied as it did then (the row's completion rebuilt);
its score is then compared with the recorded one by the consistency check."""

from __future__ import annotations

from dataclasses import dataclass, field

from flash_mcp.planes.base import Rescore
from flash_mcp.runtime.episode import episode_text
from flash_mcp.runtime.worker import Step, WorkerClient, checked_score

BATCH_CHARS = 1_000_000  # transcript characters replayed together, at most: each reply carries every live chat
NOT_RECORDED = "its model turns were not recorded (over the caps, or evaluated before replays); evaluate again"


@dataclass
class Replay:
    """One episode being replayed: its recorded turns, how many were fed, the chat it last asked with."""

    turns: list[str]
    completion: str
    step: Step = field(default_factory=Step)
    fed: int = 0
    asked: list[dict] = field(default_factory=list)
    error: str | None = None

    @property
    def asking(self) -> bool:
        return self.error is None and self.step.messages is not None and self.step.episode is not None


def replay(client: WorkerClient, pairs: list[tuple[str, str]], turns: list[list[str] | None], batch: int) -> Rescore:
    """Replay every episode (at most `batch` and BATCH_CHARS at a time); one score per pair, None with its reason
    where it did not fit."""
    scores: list[float | None] = []
    errors: list[str | None] = []
    for start, end in _spans([len(text) for _, text in pairs], batch):
        for score, error in _batch(client, pairs[start:end], turns[start:end]):
            scores.append(score)
            errors.append(error)
    return Rescore(scores, errors=errors)


def _spans(sizes: list[int], batch: int) -> list[tuple[int, int]]:
    """Consecutive (start, end) slices of at most `batch` items and BATCH_CHARS (an item over it alone)."""
    spans, start, size = [], 0, 0
    for end, chars in enumerate(sizes):
        if end > start and (end - start >= batch or size + chars > BATCH_CHARS):
            spans.append((start, end))
            start, size = end, 0
        size += chars
    return [*spans, (start, len(sizes))] if sizes else spans


def _batch(client: WorkerClient, pairs: list[tuple[str, str]], turns: list[list[str] | None]):
    replays = [Replay(list(said or []), text, error=None if said else NOT_RECORDED)
               for (_, text), said in zip(pairs, turns, strict=True)]  # fmt: skip
    ready = [i for i, r in enumerate(replays) if r.error is None]
    for i, step in zip(ready, client.episode_start([pairs[i][0] for i in ready]), strict=True):
        replays[i].step = step
    while True:
        for r in replays:
            if r.asking and r.fed >= len(r.turns):
                r.error = f"the environment asked for turn {r.fed + 1}; the episode recorded {len(r.turns)}"
        live = [r for r in replays if r.asking]
        if not live:
            break
        steps = client.episode_turn([(r.step.episode, r.turns[r.fed]) for r in live])  # type: ignore[misc]
        for r, step in zip(live, steps, strict=True):
            r.asked, r.fed, r.step = r.step.messages or [], r.fed + 1, step
    return [_result(r) for r in replays]


def _result(r: Replay) -> tuple[float | None, str | None]:
    """The replayed score, or None and why the replay does not stand for the recorded episode."""
    if r.error is None and r.step.error is not None:
        r.error = f"the replay failed: {r.step.error}"
    if r.error is None and r.step.scored is None:
        r.error = "the replay did not end"
    if r.error is None and r.fed < len(r.turns):
        r.error = f"the episode ended after {r.fed} of its {len(r.turns)} recorded turns"
    if r.error is None and episode_text([*r.asked, {"role": "assistant", "content": r.turns[-1]}]) != r.completion:
        r.error = "the environment replied otherwise than when the episode was recorded"
    if r.error is not None:
        return None, r.error
    scored = r.step.scored or {}
    result = checked_score({k: scored.get(k) for k in ("score", "success")} | {"error": scored.get("error") or None})
    return result.score, result.error and f"the replay scored with an error: {result.error}"

"""The environment-test worker: runs in its own Python process, beside the user's environment.

It loads `environment.py` the way Flash does (dataset selection, contract text, then
`freesolo.environments.load_environment(path, **params)`), drives every requested row through
the contract checks `flash env test` makes, scores the gold answer, a deliberately wrong one and
the exploit probes built from the gold's shape (`domain/envtest/probes.py`), and streams compact
JSON lines to the parent on a dedicated file descriptor. User code may print, hang, exit or
crash: the parent owns timeouts and restarts; this process only reports.

Loading and prompt rendering come from `flash_mcp.runtime`, the same code the trainer uses.
"""

from __future__ import annotations

import json
import math
import mmap
import os
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from flash_mcp.domain.envtest.episodes import episode_policies
from flash_mcp.domain.envtest.probes import Sampler, declared_range, near_value, run_probes
from flash_mcp.domain.envtest.search import SEED, row_seed
from flash_mcp.domain.envtest.shapes import detect_shape
from flash_mcp.harness.wire import PROGRESS, Message, encode, packed
from flash_mcp.runtime import ContractError, checked_messages, fallback_completion, load, prompt
from flash_mcp.runtime.environment import ALLOWED_ROLES
from flash_mcp.runtime.episode import clip, junk_answer, play_episode, reward_record, sdk_types, turn_ceiling

FLUSH_ROWS, FLUSH_SECONDS = 512, 0.25
PROBE_TEXT = 1 << 16  # the prompt and other rows' golds a full row's probes are built from, at most


class Channel:
    """JSON lines to the parent, batched so a 100,000-row run stays cheap."""

    def __init__(self, fd: int, key: str):
        self.out = os.fdopen(fd, "w", buffering=1 << 16, encoding="utf-8")
        self.key = key
        self.rows: list[dict[str, Any]] = []
        self.last = time.monotonic()

    def send(self, kind: Message, **fields: Any) -> None:
        self.out.write(encode(kind, self.key, **fields))
        self.out.flush()

    def row(self, record: dict[str, Any]) -> None:
        self.rows.append(record)
        if len(self.rows) >= FLUSH_ROWS or time.monotonic() - self.last > FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        if self.rows:
            self.out.write(encode(Message.ROWS, self.key, rows=packed(self.rows)))
            self.out.flush()
            self.rows = []
        self.last = time.monotonic()


def main() -> None:
    job_path = Path(sys.argv[3])
    job = json.loads(job_path.read_text(encoding="utf-8"))
    job_path.unlink()  # the key in it signs this harness's messages; environment code never sees the file
    channel = Channel(int(sys.argv[1]), job.pop("key", ""))
    progress = _progress_map(sys.argv[2])
    try:
        env, examples, info = load(job, lane=(job["start"], job.get("stride", 1)))
    except BaseException as exc:  # user code at import time may raise anything, even SystemExit
        channel.send(Message.LOAD_ERROR, message=_describe(exc), trace=_trace(exc))
        return
    channel.send(Message.LOADED, **info, reward_range=declared_range(env))
    sdk = sdk_types()
    ceiling = turn_ceiling(env, examples) if info["multi_turn"] else 1
    stop, stride, skip = min(job["stop"], len(examples)), job.get("stride", 1), set(job.get("skip") or ())
    full, last = Sampler(len(examples)), []
    for index in range(job["start"], stop, stride):
        if index in skip:
            continue
        PROGRESS.pack_into(progress, 0, index, time.monotonic())
        others = _other_golds(env, examples, index) if full(index) else None
        record = check_row(env, examples[index], index, info["multi_turn"], ceiling, sdk, others=others, last=last)
        channel.row(record)
        if "gt" in record:  # a fully probed row carries its texts: sent alone, so no message grows past the cap
            channel.flush()
    channel.flush()
    responses = job.get("responses") or []
    by_id = {example.id: example for example in examples} if responses else {}  # every row: only for candidates
    for number, candidate in enumerate(responses):
        PROGRESS.pack_into(progress, 0, -2 - number, time.monotonic())
        channel.send(Message.RESPONSE, **score_candidate(env, by_id, candidate, info["multi_turn"], ceiling, sdk))
    PROGRESS.pack_into(progress, 0, stop, 0.0)
    channel.send(Message.DONE)


def _progress_map(path: str) -> mmap.mmap:
    with open(path, "r+b") as handle:
        return mmap.mmap(handle.fileno(), PROGRESS.size)


# -- one row ----------------------------------------------------------------------------------


def _other_golds(env: Any, examples: Sequence[Any], index: int) -> tuple[str, ...]:
    """The gold answers of the next rows (wrong answers for this one), as texts."""
    out = []
    for offset in (1, 2, 3):
        other = examples[(index + offset) % len(examples)]
        try:
            completion = env.sft_completion(other) or fallback_completion(other)
            out.append("\n".join(_reference_turns(checked_messages(completion, "sft_completion")))[:PROBE_TEXT])
        except Exception:
            continue
    return tuple(text for text in out if text.strip())


def check_row(
    env: Any,
    example: Any,
    index: int,
    multi: bool,
    ceiling: int,
    sdk: dict[str, Any],
    others: tuple[str, ...] | None = None,
    last: list | None = None,
) -> dict:
    """One row's verdict, kept compact: flags are present only when set. `others` (other rows' golds)
    runs every exploit probe (and, on odd rows, scores a wrong answer before the gold to expose
    order-dependent rewards); None runs the cheap ones. `last` holds the previous fully probed row,
    whose gold and wrong answer a full row scores again after its own (`gp`, `jp`, `pi`)."""
    full = others is not None
    record: dict[str, Any] = {"i": index, "id": example.id, "ok": True}
    try:
        completion = checked_messages(env.sft_completion(example) or fallback_completion(example), "sft_completion")
        turns = _reference_turns(completion)
        gold_text = "\n".join(filter(None, turns))
        replay = bool(gold_text.strip())
        junk = junk_answer(turns)
        if not replay:
            record["echo"] = True
        if "<think>" in gold_text or "</think>" in gold_text:  # in some turn: "\n" joins them, in neither tag
            record["think"] = True
        if multi:
            gold = play_episode(env, example, turns if replay else [], ceiling, sdk)
            record.update({k: True for k in ("incomplete", "capped") if gold.get(k)})
            gold_score, gold_error = gold["score"], gold["error"]
        else:
            asked = prompt(env, example)
            if full and replay and index % 2:
                record["j0"] = _quick(score_raw(env, example, junk))[0]
            gold_result = score_raw(env, example, gold_text if replay else junk)
            gold_score, gold_error = _quick(gold_result)
            threshold = getattr(gold_result, "threshold", None)
            if replay and isinstance(threshold, (int, float)) and math.isfinite(threshold):
                record["th"] = float(threshold)  # the reward's own success bar: a wrong answer must not reach it
        record["gold"] = gold_score
        if gold_error:
            raise ContractError("score", f"scorer reported an error on the gold answer: {gold_error}")
        if multi:
            wrong = play_episode(env, example, [], ceiling, sdk)
            junk_score, junk_error = wrong["score"], wrong["error"]
        else:
            junk_score, junk_error = _quick(score_raw(env, example, junk))
        record["junk"] = junk_score
        if junk_error:
            record["junk_error"] = True
        if replay and multi and full:
            record.update(_episode_probes(env, example, turns, ceiling, sdk), gt=turns[-1])
        if replay and not multi:
            scores = (gold_score, junk_score)
            asked_text = _asked(asked)[:PROBE_TEXT] if full else ""
            record.update(
                run_probes(
                    gold_text, scores, _scorer(env, example), full=full, prompt=asked_text, others=others or (),
                    seed=row_seed(index) if full else SEED,  # only the full rows' search draws from it
                )
            )  # fmt: skip
            if full:  # what the probes were built from: the server rebuilds them to check none was dropped
                record.update(gt=gold_text, pt=asked_text, ot=list(others or ()))
                record.update(_scored_again(env, last, (index, example, gold_text, junk)))
    except ContractError as exc:
        record.update(ok=False, stage=exc.stage, fail=clip(str(exc)))
    except BaseException as exc:  # a scorer raising (or calling sys.exit) is a finding, not a crash
        record.update(ok=False, stage="exception", fail=clip(_describe(exc)), trace=_trace(exc))
    return record


def _episode_probes(env: Any, example: Any, turns: list[str], ceiling: int, sdk: dict) -> dict:
    """Scripted policies that never give the right answer, each played as a whole episode (`pe`: those the
    environment could not play); then the gold again."""
    scores: dict[str, float] = {}
    unplayable: list[str] = []
    for name, (policy, _text) in episode_policies(turns[-1], near_value).items():
        try:
            scores[name] = play_episode(env, example, policy, ceiling, sdk)["score"]
        except Exception:  # a policy the environment cannot play proves nothing
            unplayable.append(name)
    again = play_episode(env, example, turns, ceiling, sdk)["score"]
    return {"pr": scores, "pe": unplayable, "g2": again, "shape": detect_shape(turns[-1]).kind}


def _scored_again(env: Any, last: list | None, row: tuple[int, Any, str, str]) -> dict[str, Any]:
    """The previous full row's gold and wrong answer, scored again after this row's answers: a reward that
    keeps state between calls (a counter, a cache, a warm-up) scores the same pair differently now."""
    if last is None:
        return {}
    out: dict[str, Any] = {}
    if last:
        index, example, gold, junk = last[0]
        scored = (_quick(score_raw(env, example, text))[0] for text in (gold, junk))
        out = {"pi": index, **dict(zip(("gp", "jp"), scored, strict=True))}
    last[:] = [row]
    return out


def _scorer(env: Any, example: Any) -> Any:
    """`score_raw(env, example, text).score` as one call (the probes' hot path)."""
    normalize, score = env.normalize_response_text, env.score_response
    return lambda text: score(example, normalize(example, text)).score


def _asked(messages: list[dict]) -> str:
    """The last user message: what an echo probe sends back."""
    users = [m for m in messages if _role(m) == "user"]
    return _text(users[-1].get("content")) if users else ""


def score_raw(env: Any, example: Any, text: str) -> Any:
    """Score one response as Flash's single-turn path does (normalize, then score_response)."""
    return env.score_response(example, env.normalize_response_text(example, text))


def _quick(result: Any) -> tuple[float, Any]:
    """(score, error) of a reward result; a non-finite score is a ContractError."""
    score = float(result.score)
    if not math.isfinite(score):
        raise ContractError("score", f"reward is not finite: {score}")
    return score, result.error


def _reference_turns(messages: list[dict]) -> list[str]:
    return [_text(m.get("content")) for m in messages if _role(m) == "assistant"]


def _role(message: dict) -> str:
    role = message.get("role", "")
    return role if type(role) is str and role in ALLOWED_ROLES else str(role).strip().lower()  # common: clean


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(b.get("text") or "") for b in content if isinstance(b, dict) and b.get("type") in ("text", "input_text")
        )
    return ""


# -- agent-supplied candidates ------------------------------------------------------------------


def score_candidate(env: Any, by_id: dict, candidate: dict, multi: bool, ceiling: int, sdk: dict) -> dict[str, Any]:
    row_id, response = candidate.get("row_id"), candidate.get("response")
    out: dict[str, Any] = {
        "row_id": row_id,
        "response": clip(response if isinstance(response, str) else str(response)),
    }
    example = by_id.get(row_id)
    if example is None:
        return {**out, "error": f"no row with id {row_id!r}; ids look like example_000000"}
    try:
        if multi:
            turns = response if isinstance(response, list) else [str(response)]
            scored = play_episode(env, example, [str(t) for t in turns], ceiling, sdk)
        else:
            scored = reward_record(score_raw(env, example, str(response)))
    except BaseException as exc:
        return {**out, "error": clip(_describe(exc))}
    return {**out, **{k: scored[k] for k in ("score", "success", "reason", "metrics")}, "error": scored["error"]}


# -- small helpers ------------------------------------------------------------------------------


def _describe(exc: BaseException) -> str:
    if isinstance(exc, SystemExit):
        return f"SystemExit({exc.code!r}): the environment called sys.exit"
    return f"{type(exc).__name__}: {exc}"


def _trace(exc: BaseException) -> str:
    lines = traceback.format_exception(type(exc), exc, exc.__traceback__)
    return "".join(lines)[-1500:]


if __name__ == "__main__":
    main()

"""The environment worker: `python -m flash_mcp.jobs.env_worker REQUEST_FD REPLY_FD`, started by
`flash_mcp.sandbox.launch_worker`. The one process that loads the agent's environment for an evaluation (and
for training); it is given no model, no evaluation or run directory and nothing that names a target, seed or
adapter, and writes nothing but its private scratch (its cwd and HOME).

It answers one request at a time (framing and client: `flash_mcp/runtime/worker.py`):
  load           {entrypoint, params, split?, suite?, max_rows?, thinking?} -> {rows, multi_turn, ceiling}
  render         {ids}                               -> {items: [{messages} | {error}]}
  completions    {ids}                               -> {items: [{messages} | {error}]} (SFT targets)
  score          {items: [{id, text}]}               -> {items: [{score, success, error}]}
  episode_start  {items: [{id}]}                     -> {items: [{episode, messages} | {episode, scored} | {error}]}
  episode_turn   {items: [{episode, content}]}       -> the same, after the model's turn
  close          {}                                  -> exits
Every request carries `seq` (1, 2, …); its reply echoes it, `ok: true` with the fields above, or
`ok: false` with an `error`.
An episode is played by the shared driver (`runtime/episode.py`) in a thread of its own whose policy waits for
the trusted side's next turn, so the environment's hooks run here and the model runs there. Agent code
raising, or returning garbage, is an error for its item; EOF on the request pipe ends the worker.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
from itertools import count
from typing import Any

from flash_mcp.jobs.evaluator import environment
from flash_mcp.runtime.worker import MAX_REPLY, MAX_REQUEST, WorkerError, receive, send

ERROR_CHARS = 500


class Episode:
    """One episode played in its own thread; `advance` hands it a turn and waits for what it asks next."""

    def __init__(self, env: Any, example: Any, ceiling: int):
        self.asks: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=1)
        self.turns: queue.Queue[str | None] = queue.Queue(maxsize=1)
        self.thread = threading.Thread(target=self._play, args=(env, example, ceiling), daemon=True)

    def _policy(self, messages: list[dict]) -> str:
        self.asks.put(("ask", messages))
        turn = self.turns.get()
        if turn is None:
            raise SystemExit  # the trusted side abandoned the episode
        return turn

    def _play(self, env: Any, example: Any, ceiling: int) -> None:
        from flash_mcp.runtime.episode import play_episode, sdk_types

        try:
            self.asks.put(("done", play_episode(env, example, self._policy, ceiling, sdk_types())))
        except SystemExit:
            return
        except BaseException as exc:  # the environment's episode hooks are user code
            self.asks.put(("error", f"episode failed: {type(exc).__name__}: {exc}"[:ERROR_CHARS]))

    def advance(self, turn: str | None) -> tuple[str, Any]:
        if turn is None:
            self.thread.start()
        else:
            self.turns.put(turn)
        return self.asks.get()


class Worker:
    def __init__(self) -> None:
        self.env: Any = None
        self.examples: dict[str, Any] = {}
        self.items: dict[str, Any] = {}  # a suite's cases (jobs/evaluator/suite.py Items)
        self.thinking = False
        self.ceiling = 0
        self.episodes: dict[int, Episode] = {}
        self.numbers = count(1)

    def load(self, request: dict[str, Any]) -> dict[str, Any]:
        entrypoint, params = str(request["entrypoint"]), dict(request.get("params") or {})
        self.thinking = bool(request.get("thinking"))
        if request.get("suite"):
            from flash_mcp.jobs.evaluator.suite import suite_items

            items = suite_items(entrypoint, params, str(request["suite"]), request.get("max_rows"))
            self.items = {item.row_id: item for item in items}
            return {"rows": list(self.items), "multi_turn": False, "ceiling": None}
        self.env, examples, multi = environment.load_environment(entrypoint, params)
        split = request.get("split")
        self.examples = {f"{split}:{e.id}" if split else str(e.id): e for e in examples}
        if multi:
            from flash_mcp.runtime.episode import turn_ceiling

            self.ceiling = turn_ceiling(self.env, examples)
        return {"rows": list(self.examples), "multi_turn": multi, "ceiling": self.ceiling or None}

    def render(self, request: dict[str, Any]) -> dict[str, Any]:
        return {"items": [self._render(str(row)) for row in request["ids"]]}

    def _render(self, row: str) -> dict[str, Any]:
        try:
            if row in self.items:
                prompt = self.items[row].prompt
                if isinstance(prompt, BaseException):
                    raise prompt
                return {"messages": prompt}
            return {"messages": environment.render(self.env, self._example(row))}
        except KeyError as exc:
            return {"error": str(exc.args[0])}
        except BaseException as exc:  # start_episode is user code
            return {"error": f"prompt construction failed: {type(exc).__name__}: {exc}"[:ERROR_CHARS]}

    def completions(self, request: dict[str, Any]) -> dict[str, Any]:
        """Each row's SFT target: `sft_completion`, else the row's output as one assistant turn."""
        return {"items": [self._completion(str(row)) for row in request["ids"]]}

    def _completion(self, row: str) -> dict[str, Any]:
        from flash_mcp import runtime

        try:
            example = self._example(row)
        except KeyError as exc:
            return {"error": str(exc.args[0])}
        try:
            completion = self.env.sft_completion(example) or runtime.fallback_completion(example)
            return {"messages": [dict(m) for m in completion]}
        except BaseException as exc:  # sft_completion is user code
            return {"error": f"sft_completion failed: {type(exc).__name__}: {exc}"[:ERROR_CHARS]}

    def score(self, request: dict[str, Any]) -> dict[str, Any]:
        return {"items": [self._score(str(item["id"]), str(item["text"])) for item in request["items"]]}

    def _score(self, row: str, text: str) -> dict[str, Any]:
        scored: Any = text
        if self.thinking:
            from flash_mcp.jobs.evaluator.remote import scored_text

            scored = scored_text(text, thinking=True)
        if row in self.items:
            return self.items[row].score(scored)
        try:
            example = self._example(row)
        except KeyError as exc:
            return {"score": None, "success": None, "error": str(exc.args[0])}
        return environment.score(self.env, example, scored)

    def episode_start(self, request: dict[str, Any]) -> dict[str, Any]:
        out = []
        for item in request["items"]:
            try:
                example = self._example(str(item["id"]))
            except KeyError as exc:
                out.append({"error": str(exc.args[0])})
                continue
            number = next(self.numbers)
            self.episodes[number] = Episode(self.env, example, self.ceiling)
            out.append(self._advance(number, None))
        return {"items": out}

    def episode_turn(self, request: dict[str, Any]) -> dict[str, Any]:
        out = []
        for item in request["items"]:
            number = item.get("episode")
            if number not in self.episodes:
                out.append({"error": f"no live episode {number!r}"})
                continue
            out.append(self._advance(number, str(item["content"])))
        return {"items": out}

    def _advance(self, number: int, turn: str | None) -> dict[str, Any]:
        kind, value = self.episodes[number].advance(turn)
        if kind == "ask":
            return {"episode": number, "messages": value}
        del self.episodes[number]
        return {"episode": number, "scored": value} if kind == "done" else {"episode": number, "error": value}

    def _example(self, row: str) -> Any:
        if self.env is None:
            raise KeyError("the environment is not loaded; send load first")
        if row not in self.examples:
            raise KeyError(f"unknown row {row[:200]!r}")
        return self.examples[row]


def serve(requests: int, replies: int) -> None:
    worker = Worker()
    names = ("load", "render", "completions", "score", "episode_start", "episode_turn")
    ops = {name: getattr(worker, name) for name in names}
    while True:
        try:
            request = receive(requests, MAX_REQUEST)
        except WorkerError:
            return  # EOF: the trusted side is gone
        op = request.get("op") if isinstance(request, dict) else None
        seq = request.get("seq") if isinstance(request, dict) else None
        if op == "close":
            return
        try:
            reply = {"ok": True, **ops[op](request)} if op in ops else {"ok": False, "error": f"unknown op {op!r}"}
        except BaseException as exc:  # loading is user code; anything may come out of it
            reply = {"ok": False, "error": f"{op} failed: {type(exc).__name__}: {exc}"[:ERROR_CHARS]}
        try:
            send(replies, {**reply, "seq": seq}, MAX_REPLY)
        except (WorkerError, ValueError, TypeError) as exc:  # too big, or not JSON (a NaN, an object)
            error = f"{op} reply could not be sent: {exc}"[:ERROR_CHARS]
            send(replies, {"ok": False, "error": error, "seq": seq}, MAX_REPLY)


def main() -> None:
    requests, replies = int(sys.argv[1]), int(sys.argv[2])
    try:
        serve(requests, replies)
    finally:
        sys.stdout.flush()
        os._exit(0)  # threads the environment started do not keep the worker alive


if __name__ == "__main__":
    main()

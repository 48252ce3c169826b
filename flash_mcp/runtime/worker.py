"""The trusted side of the environment worker (`flash_mcp.jobs.env_worker`): framing and a client.

The worker holds the agent's environment in its own sandbox; a trusted process (the evaluator, the trainer,
the server) talks to it over two pipes: length-prefixed JSON (4-byte big-endian length, then UTF-8 JSON),
one request, one reply. Everything the worker sends is untrusted: replies over `MAX_REPLY` bytes, malformed
JSON, a reply of the wrong shape or a worker that stops answering are a `WorkerError` for that call, and a
malformed item in a well-formed reply is an error for that item only. The batched helpers (`render`, `score`,
`episode_start`, `episode_turn`) never raise: a failed call becomes an error on each of its items.
Imports nothing of the package, so jobs, planes and the worker itself share it.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import select
import struct
import time
from dataclasses import dataclass, field
from typing import Any

MAX_REQUEST = 64 << 20  # what the worker accepts (the trusted side's batches)
MAX_REPLY = 16 << 20  # what the trusted side accepts from the worker
ERROR_CHARS = 500
HEADER = struct.Struct(">I")
DEFAULT_TIMEOUT_S = 600.0


class WorkerError(Exception):
    """The worker's answer could not be used: it exited, timed out, or sent something malformed or too big."""


def send(fd: int, message: dict[str, Any], cap: int = MAX_REQUEST) -> None:
    data = json.dumps(message, separators=(",", ":"), allow_nan=False).encode("utf-8")
    if len(data) > cap:
        raise WorkerError(f"message of {len(data):,} bytes exceeds the {cap:,}-byte cap")
    view = memoryview(HEADER.pack(len(data)) + data)
    while view:
        try:
            view = view[os.write(fd, view) :]
        except (BrokenPipeError, OSError) as exc:
            raise WorkerError(f"the environment worker is gone ({type(exc).__name__})") from None


def receive(fd: int, cap: int, deadline: float | None = None) -> Any:
    """One message; WorkerError on EOF, timeout, an oversized length or malformed JSON."""
    (size,) = HEADER.unpack(_exactly(fd, HEADER.size, deadline))
    if size > cap:
        raise WorkerError(f"the environment worker sent {size:,} bytes, over the {cap:,}-byte cap")
    try:
        return json.loads(_exactly(fd, size, deadline).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise WorkerError("the environment worker sent malformed JSON") from None


def _exactly(fd: int, count: int, deadline: float | None) -> bytes:
    chunks, left = [], count
    while left:
        wait = None if deadline is None else deadline - time.monotonic()
        if wait is not None and (wait <= 0 or not select.select([fd], [], [], wait)[0]):
            raise WorkerError("the environment worker did not answer in time")
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            raise WorkerError("the environment worker exited")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


@dataclass
class Scored:
    score: float | None
    success: bool | None
    error: str | None
    reason: str | None = None  # the RewardResult's free text, why it scored what it did


@dataclass
class Step:
    """An episode's state after a call: the worker asks for the next turn (`messages`), or it ended (`scored`),
    or it failed (`error`)."""

    episode: int | None = None
    messages: list[dict] | None = None
    scored: dict[str, Any] | None = None
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Pending:
    """A batch sent and not yet answered."""

    op: str
    count: int
    error: str | None = None


class WorkerClient:
    """One worker over its two pipe ends (write requests to `to_worker`, read replies from `from_worker`)."""

    def __init__(self, to_worker: int, from_worker: int, timeout_s: float = DEFAULT_TIMEOUT_S):
        self.to_worker, self.from_worker, self.timeout_s = to_worker, from_worker, timeout_s
        self.broken: str | None = None  # once the stream cannot be trusted to be in step, every call fails
        self.sent = self.answered = 0  # requests carry `seq`; a reply must echo the oldest unanswered one

    def request(self, op: str, **args: Any) -> None:
        """Send one request (answer it with `reply`): lets the caller overlap the worker's work with its own."""
        if self.broken:
            raise WorkerError(self.broken)
        try:
            send(self.to_worker, {"op": op, "seq": self.sent + 1, **args})
            self.sent += 1
        except WorkerError as exc:
            self.broken = str(exc)
            raise

    def reply(self, timeout_s: float | None = None) -> dict[str, Any]:
        if self.broken:
            raise WorkerError(self.broken)
        try:
            answer = receive(self.from_worker, MAX_REPLY, time.monotonic() + (timeout_s or self.timeout_s))
        except WorkerError as exc:
            if "malformed JSON" not in str(exc):
                self.broken = str(exc)  # out of step (or gone): no later reply can be matched to its request
            raise
        if not isinstance(answer, dict) or answer.get("seq") != self.answered + 1:
            self.broken = "the environment worker sent a reply out of step with its requests"
            raise WorkerError(self.broken)
        self.answered += 1
        if answer.get("ok") is not True:
            raise WorkerError(_text(answer.get("error")) or "the environment worker refused the request")
        return answer

    def call(self, op: str, timeout_s: float | None = None, **args: Any) -> dict[str, Any]:
        self.request(op, **args)
        return self.reply(timeout_s)

    def load(self, **job: Any) -> dict[str, Any]:
        """Load the environment (see jobs/env_worker.py `load`); raises WorkerError with the worker's reason."""
        return self.call("load", **job)

    def render(self, ids: list[str]) -> list[list[dict] | str]:
        """Each row's prompt messages, or the reason it could not be rendered (a str)."""
        items = self._items("render", len(ids), ids=ids)
        return [item if isinstance(item, str) else _rendered(item) for item in items]

    def completions(self, ids: list[str]) -> list[list[dict] | str]:
        """Each row's SFT target messages, or the reason there is none (a str)."""
        items = self._items("completions", len(ids), ids=ids)
        return [item if isinstance(item, str) else _rendered(item) for item in items]

    def score(self, pairs: list[tuple[str, str]]) -> list[Scored]:
        """Score (row id, completion) pairs; one result each, in order."""
        return self.score_reply(self.score_request(pairs))

    def score_request(self, pairs: list[tuple[str, str]]) -> Pending:
        """Send a score batch and return at once; `score_reply` collects it (overlap it with generation)."""
        return self._send_items("score", len(pairs), items=[{"id": row, "text": text} for row, text in pairs])

    def score_reply(self, pending: Pending) -> list[Scored]:
        items = self._reply_items(pending)
        return [Scored(None, None, item) if isinstance(item, str) else checked_score(item) for item in items]

    def episode_start(self, ids: list[str]) -> list[Step]:
        items = self._items("episode_start", len(ids), items=[{"id": row} for row in ids])
        return [_step(item) for item in items]

    def episode_turn(self, turns: list[tuple[int, str]]) -> list[Step]:
        payload = [{"episode": episode, "content": content} for episode, content in turns]
        return [_step(item) for item in self._items("episode_turn", len(turns), items=payload)]

    def close(self) -> None:
        for fd in (self.to_worker, self.from_worker):
            with contextlib.suppress(OSError):
                os.close(fd)

    def _items(self, op: str, count: int, **args: Any) -> list[dict[str, Any] | str]:
        return self._reply_items(self._send_items(op, count, **args))

    def _send_items(self, op: str, count: int, **args: Any) -> Pending:
        if not count:
            return Pending(op, 0)
        try:
            self.request(op, **args)
        except WorkerError as exc:
            return Pending(op, count, str(exc))
        return Pending(op, count)

    def _reply_items(self, pending: Pending) -> list[dict[str, Any] | str]:
        """The reply's `items`, one per request item; a failed call is its error text on every item."""
        if not pending.count:
            return []
        try:
            if pending.error:
                raise WorkerError(pending.error)
            items = self.reply().get("items")
            if not isinstance(items, list) or len(items) != pending.count:
                raise WorkerError(f"the environment worker answered {pending.op} with the wrong number of items")
        except WorkerError as exc:
            return [f"environment worker: {exc}"[:ERROR_CHARS]] * pending.count
        return [item if isinstance(item, dict) else "environment worker sent a malformed item" for item in items]


def checked_score(item: dict[str, Any]) -> Scored:
    """A score item as the trusted side records it: a finite number, a bool or None, an error text."""
    if item.get("error") is not None:
        return Scored(None, None, _text(item.get("error")) or "scoring failed")
    value, success = item.get("score"), item.get("success")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return Scored(None, None, "environment worker sent a malformed score")
    if success is not None and not isinstance(success, bool):
        return Scored(None, None, "environment worker sent a malformed success flag")
    return Scored(float(value), success, None, _text(item.get("reason")) or None)


def _rendered(item: dict[str, Any]) -> list[dict] | str:
    if item.get("error") is not None:
        return _text(item.get("error")) or "prompt construction failed"
    return _messages(item.get("messages"))


def _messages(value: Any) -> list[dict] | str:
    if not isinstance(value, list) or not value or not all(isinstance(m, dict) for m in value):
        return "environment worker sent malformed prompt messages"
    return value


def _step(item: dict[str, Any] | str) -> Step:
    if isinstance(item, str):
        return Step(error=item)
    episode = item.get("episode")
    episode = episode if isinstance(episode, int) and not isinstance(episode, bool) else None
    if item.get("error") is not None or episode is None:
        return Step(episode=episode, error=_text(item.get("error")) or "environment worker sent a malformed step")
    if isinstance(item.get("scored"), dict):
        return Step(episode=episode, scored=item["scored"])
    messages = _messages(item.get("messages"))
    return Step(episode=episode, error=messages) if isinstance(messages, str) else Step(episode, messages)


def _text(value: Any) -> str:
    return "" if value is None else str(value)[:ERROR_CHARS]

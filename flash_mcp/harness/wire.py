"""What the environment-test runner and its child share: the progress record and the message types.

The child writes one JSON object per line on its channel: `{"type": <Message>, ..., "k": <key>}`, where
the key (from the job file, never seen by environment code) signs the harness's own messages. Both sides
import this module, so it imports nothing of the package.
"""

from __future__ import annotations

import base64
import json
import struct
from enum import StrEnum
from typing import Any

PROGRESS = struct.Struct("<qd")  # row index being run (LOADING, or -2 - n for response n), monotonic start
LOADING = -1
TYPE, KEY = "type", "k"  # the fields every message carries


class Message(StrEnum):
    """The child's messages, in the order it sends them: `loaded` (or `load_error`), `rows`…, `response`…, `done`."""

    LOADED = "loaded"
    LOAD_ERROR = "load_error"
    ROWS = "rows"
    RESPONSE = "response"
    DONE = "done"


PLAIN_KEYS = frozenset(("i", "id", "ok", "gold", "junk", "pr"))
CHEAP_PROBES = ("near", "several")  # probes.CHEAP: the probes every row gets
# A run of plain rows: {"run": [first index, count], "b": base64 of 4 little-endian float64 a row (gold, junk, near,
# several)}. Binary, not JSON numbers: writing and reading 400,000 floats as text costs more than scoring them.
RUN, SCORES = "run", "b"


def packed(rows: list[dict[str, Any]]) -> list[Any]:
    """The rows as sent: consecutive plain rows (passing, no flag, only the cheap probes' scores) as one run of
    four numbers a row; every other row as it is. A 100,000-row test is almost all plain rows."""
    out: list[Any] = []
    run: list[Any] | None = None  # [first index, count, scores]
    for row in rows:
        probes = row.get("pr")
        if row.keys() == PLAIN_KEYS and row["ok"] is True and type(probes) is dict and tuple(probes) == CHEAP_PROBES:
            if run is None:
                run = [row["i"], 0, []]
                out.append(run)
            run[1] += 1
            run[2] += (row["gold"], row["junk"], probes["near"], probes["several"])
        else:
            run = None
            out.append(row)
    return [{RUN: item[:2], SCORES: _scores_text(item[2])} if type(item) is list else item for item in out]


def _scores_text(values: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(values)}d", *values)).decode("ascii")


def scores_of(text: str, count: int) -> list[float] | None:
    """The `count * 4` floats of a run's `b`, or None where it does not hold exactly that many."""
    try:
        data = base64.b64decode(text, validate=True)
    except (ValueError, TypeError):
        return None
    if len(data) != 32 * count:
        return None
    return list(struct.unpack(f"<{4 * count}d", data))


def encode(kind: Message, key: str, **fields: Any) -> str:
    """One message as the line the child writes (newline included)."""
    return json.dumps({**fields, TYPE: kind.value, KEY: key}, default=str) + "\n"

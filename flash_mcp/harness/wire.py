"""What the environment-test runner and its child share: the progress record and the message types.

The child writes one JSON object per line on its channel: `{"type": <Message>, ..., "k": <key>}`, where
the key (from the job file, never seen by environment code) signs the harness's own messages. Both sides
import this module, so it imports nothing of the package.
"""

from __future__ import annotations

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


def encode(kind: Message, key: str, **fields: Any) -> str:
    """One message as the line the child writes (newline included)."""
    return json.dumps({**fields, TYPE: kind.value, KEY: key}, default=str) + "\n"

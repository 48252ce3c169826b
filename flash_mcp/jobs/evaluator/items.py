"""What the evaluator generates for: a row id, its prompt (or why it could not be built), its scorer."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Item:
    row_id: str
    prompt: list[dict] | BaseException
    score: Callable[[str], dict[str, Any]]  # text -> {"score", "success", "error"}

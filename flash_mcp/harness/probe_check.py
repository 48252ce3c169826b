"""The server's check that every row carries the probes it was due: the child only scores, the server judges.

The child runs the agent's code, which can replace any function of the harness in that process (the probe
builders, the sampler, the reporting, `audit.py` itself). So the child reports raw scores and, for a fully
probed row, the texts its probes were built from; the server decides which rows are due every probe
(`probes.sampled`, the child's scorer-time budget checked against the server's own clock), rebuilds each
such row's probes from its texts, and refuses a row whose scores do not name exactly those probes. The
examples in the report come from the server's build, and every verdict from `domain/envtest/audit.py`,
run here. What remains the child's is the scores themselves: a scorer can always return what it likes.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from flash_mcp.domain.envtest.episodes import episode_policies
from flash_mcp.domain.envtest.probes import (
    CHEAP,
    EPS,
    MIN_FULL_ROWS,
    PROBE_BUDGET_S,
    clip_text,
    full_texts,
    near_value,
    sampled,
    sampled_among,
)
from flash_mcp.domain.envtest.report import Tally
from flash_mcp.domain.envtest.search import cases, row_seed
from flash_mcp.domain.envtest.shapes import detect_shape
from flash_mcp.harness.channel import ProtocolError

FULL_FIELDS = ("g2", "gt", "eq", "j0", "pe", "sr", "sx", "gp", "jp", "pi")  # only a fully probed row carries these
CHEAP_NAMES = frozenset(CHEAP)


class ProbeCheck:
    """One child's rows: which were due every probe, and whether each carries exactly what was due."""

    def __init__(self, started: float):
        self.started, self.full_rows = started, 0
        self.last_full: int | None = None  # the previous fully probed row, scored again by the next one

    def check(self, row: dict[str, Any], tally: Tally) -> dict[str, Any]:
        """The row as the audit may take it (the texts it was built from dropped), or ProtocolError."""
        index, multi = row["i"], tally.audit.multi
        due = self._due(index, tally)
        if not row["ok"]:
            return row
        full = "g2" in row
        if full and not due:
            raise ProtocolError(f"row {index} carries every probe but was not due them")
        if not row.get("echo") and due and not full:
            raise ProtocolError(f"row {index} was due every probe and reports only some")
        if not full:
            return _cheap(row, multi)
        if multi:
            return _episode(row)
        again = self.last_full is not None
        if (row.get("pi"), "gp" in row, "jp" in row) != (self.last_full, again, again):
            raise ProtocolError(f"row {index} does not score the previous full row's answers again")
        self.last_full = index
        return _single(row)

    def plain(self, indices: Sequence[int], tally: Tally) -> None:
        """Plain rows (`wire.packed`: only the cheap probes) are refused where every probe was due, and on a
        multi-turn environment (whose rows carry no cheap probes)."""
        if tally.audit.multi:
            refused = indices[0] if indices else None
        else:
            refused = next((i for i in sampled_among(indices, tally.rows_total or 0) if self._due(i, tally)), None)
        if refused is not None:
            raise ProtocolError(f"row {refused} was due every probe and reports only some")

    def _due(self, index: int, tally: Tally) -> bool:
        due = sampled(index, tally.rows_total or 0) and not (
            self.full_rows >= MIN_FULL_ROWS and time.monotonic() - self.started > PROBE_BUDGET_S
        )
        self.full_rows += due
        return due


def _cheap(row: dict[str, Any], multi: bool) -> dict[str, Any]:
    index, names = row["i"], row.get("pr") or {}
    if not row.keys().isdisjoint(FULL_FIELDS) or (names and (multi or row.get("echo"))):
        raise ProtocolError(f"row {index} carries probes it was not due")
    if names and names.keys() != CHEAP_NAMES:
        raise ProtocolError(f"row {index} reports the probes {sorted(names)} where {list(CHEAP)} were due")
    return row


def _single(row: dict[str, Any]) -> dict[str, Any]:
    index, scores = row["i"], row.get("pr") or {}
    gold, prompt, others = row.pop("gt", None), row.pop("pt", None), row.pop("ot", None)
    if gold is None or prompt is None or others is None or "eq" not in row or ("j0" in row) != bool(index % 2):
        raise ProtocolError(f"row {index} was due every probe and lacks what they were built from")
    shape, texts, forms = full_texts(gold, prompt, others)
    again = {f"again:{max(texts, key=lambda name: scores.get(name, 0.0))}"} if texts else set()
    _same(index, "probes", set(scores), set(texts) | again)
    _same(index, "equivalent forms", set(row["eq"]), set(forms))
    if row.get("shape") != shape.kind:
        raise ProtocolError(f"row {index} reports the shape {row.get('shape')!r} where its gold is {shape.kind!r}")
    searched = cases(shape, row_seed(index))
    shrunk = row["sx"]["k"] if "sx" in row else 0
    if len(row.get("sr") or ()) != 2 * len(searched) or (searched and shrunk not in range(len(searched))):
        raise ProtocolError(f"row {index}'s search scores are not the {len(searched)} cases it was due")
    row["ex"] = {name: clip_text(text) for name, text in texts.items()}
    row["ex"].update({f"search:{k}": clip_text(case.text(shape)) for k, case in enumerate(searched)})
    lost = {name for name, value in row["eq"].items() if value < row["gold"] - EPS}
    row["eqx"] = {name: clip_text(forms[name]) for name in lost}
    return row


def _episode(row: dict[str, Any]) -> dict[str, Any]:
    index, final, unplayable = row["i"], row.pop("gt", None), row.pop("pe", None)
    if final is None or unplayable is None:
        raise ProtocolError(f"row {index} was due every scripted episode and lacks what they were built from")
    policies = episode_policies(final, near_value)
    played = set(row.get("pr") or ())
    if played & set(unplayable):
        raise ProtocolError(f"row {index} reports a scripted episode both played and unplayable")
    _same(index, "scripted episodes", played | set(unplayable), set(policies))
    if row.get("shape") != detect_shape(final).kind:
        raise ProtocolError(f"row {index} reports a shape its final turn does not have")
    row["ex"] = {name: clip_text(text) for name, (_, text) in policies.items() if name in played}
    return row


def _same(index: int, what: str, reported: set[str], due: set[str]) -> None:
    if reported != due:
        missing, extra = sorted(due - reported)[:5], sorted(reported - due)[:5]
        raise ProtocolError(f"row {index}'s {what} are not those it was due (missing {missing}, unasked {extra})")

"""The server's side of the results channel: every message from the child is untrusted input.

The child runs the agent's code in its own process, so anything it writes on the results pipe or
into the progress map may be forged. The server therefore:
- bounds every line (MAX_LINE) and checks every message's shape and types (ProtocolError otherwise);
- accepts rows only in the exact order the lane asked for, `loaded` once and first, and `done` only
  when it has itself seen every row and candidate it asked for;
- owns the row clock (`RowClock`): it times each row from when *it* saw the row start, and it
  believes the map's "now on row r" only while the child keeps reporting results (a hung row whose
  thread rewrites the map gets no fresh clock).
"""

from __future__ import annotations

import math
from typing import Any

from flash_mcp.harness.wire import PLAIN_KEYS, RUN, SCORES, scores_of

MAX_LINE = 4 << 20
MESSAGE_GAP_S = 0.75  # while rows complete, the child flushes results at least every 0.25 s + one row
TEXT, TRACE = 1000, 4000
ROW_FLAGS = ("echo", "think", "incomplete", "capped", "junk_error")
ROW_SCORES = ("gold", "junk", "near", "padded", "g2", "j0", "gp", "jp", "th")
MAX_PROBES = 64
PLAIN_ROW = PLAIN_KEYS  # a passing row with no flag and only the cheap probes
GOLD_TEXT, PROBE_TEXT, MAX_LIST = 1 << 20, 1 << 16, 8  # a fully probed row's texts (envtest_child.PROBE_TEXT)
MAX_RUN = 1 << 16  # plain rows in one run (a batch holds envtest_child.FLUSH_ROWS)


class ProtocolError(Exception):
    """The child broke the results protocol: its failure, reported as the test's verdict."""


def text(value: Any, limit: int = TEXT, *, what: str) -> str:
    if not isinstance(value, str):
        raise ProtocolError(f"{what} is not a string")
    return value[:limit]


def number(value: Any, *, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ProtocolError(f"{what} is not a finite number")
    return float(value)


def _score(value: Any, index: int, name: str) -> float:
    """`number` for a row's score, its message built only when the check fails (the per-row hot path)."""
    if (type(value) is float or type(value) is int) and math.isfinite(value):
        return float(value)
    return number(value, what=f"row {index}'s {name} score")


def plain_run(item: dict[str, Any], first: int) -> list[float]:
    """A run of plain rows (`wire.packed`), checked: it starts at the row due next, and carries four finite
    numbers a row (gold, wrong answer, near miss, several answers)."""
    span, text = item.get(RUN), item.get(SCORES)
    if (
        type(span) is not list
        or len(span) != 2
        or span[0] != first
        or type(span[1]) is not int
        or not 0 < span[1] <= MAX_RUN
        or type(text) is not str
        or (values := scores_of(text, span[1])) is None
    ):
        raise ProtocolError(f"a malformed run of rows where row {first} was due")
    if not all(map(math.isfinite, values)):
        raise ProtocolError(f"a run of rows from row {first} with a score that is not a finite number")
    return values


def loaded_info(event: dict[str, Any], rows_known: int | None) -> dict[str, Any]:
    rows = event.get("rows")
    if isinstance(rows, bool) or not isinstance(rows, int) or rows < 1:
        raise ProtocolError("`loaded` without a positive row count")
    if rows_known is not None and rows != rows_known:
        raise ProtocolError(f"`loaded` says {rows} rows where an earlier load said {rows_known}")
    dropped = event.get("dropped_params") or []
    if not isinstance(dropped, list) or len(dropped) > 100:
        raise ProtocolError("`loaded` with a malformed dropped_params")
    return {
        "rows": rows,
        "multi_turn": bool(event.get("multi_turn")),
        "environment": text(event.get("environment", ""), 200, what="environment"),
        "dropped_params": [text(name, 200, what="a dropped param") for name in dropped],
        "dataset": text(event.get("dataset", ""), 500, what="dataset"),
    }


def row_record(row: Any, expected: int) -> dict[str, Any]:
    """One row's verdict, checked: the index the lane expects next, and well-typed fields only."""
    if not isinstance(row, dict):
        raise ProtocolError("a row that is not an object")
    index = row.get("i")
    if index != expected or isinstance(index, bool):
        raise ProtocolError(f"row {index!r} reported where row {expected} was due")
    if not isinstance(row.get("ok"), bool):
        raise ProtocolError(f"row {expected} without an ok flag")
    out: dict[str, Any] = {"i": expected, "id": text(row.get("id"), 200, what="a row id"), "ok": row["ok"]}
    if not row["ok"]:
        out["stage"] = text(row.get("stage", "exception"), 100, what="a stage")
        out["fail"] = text(row.get("fail", ""), what="a failure message")
        if "trace" in row:
            out["trace"] = text(row["trace"], TRACE, what="a trace")
        return out
    out["gold"] = _score(row.get("gold"), expected, "gold")
    if row.keys() <= PLAIN_ROW:  # the common row (see PLAIN_ROW): the same checks, without looking up absent fields
        if row.get("junk") is not None:
            out["junk"] = _score(row["junk"], expected, "junk")
        if row.get("pr") is not None:
            out["pr"] = _probe_table(row["pr"], expected, "pr", None)
        return out
    for name in ROW_SCORES[1:]:
        if row.get(name) is not None:
            out[name] = _score(row[name], expected, name)
    if "pi" in row:
        if isinstance(row["pi"], bool) or not isinstance(row["pi"], int) or not 0 <= row["pi"] < expected:
            raise ProtocolError(f"row {expected} names a malformed previous row")
        out["pi"] = row["pi"]
    out.update({flag: True for flag in ROW_FLAGS if row.get(flag) is True})
    out.update(_audit_fields(row, expected))
    return out


def _audit_fields(row: dict[str, Any], index: int) -> dict[str, Any]:
    """The reward audit's raw fields (probes.run_probes): `pr`, `shape`, `ex`, `eq`, and what a fully probed
    row's probes were built from (`gt`, `pt`, `ot`; `pe`), checked; `probe_check.py` checks they are complete."""
    out: dict[str, Any] = {}
    for name, limit in (("gt", GOLD_TEXT), ("pt", PROBE_TEXT)):
        if name in row:
            out[name] = text(row[name], limit + 1, what=f"row {index}'s {name}")
    for name, limit in (("ot", PROBE_TEXT), ("pe", 100)):
        items = row.get(name)
        if items is not None:
            if not isinstance(items, list) or len(items) > MAX_LIST:
                raise ProtocolError(f"row {index} with a malformed {name!r}")
            out[name] = [text(item, limit + 1, what=f"row {index}'s {name}") for item in items]
    if "shape" in row:
        out["shape"] = text(row["shape"], 50, what=f"row {index}'s shape")
    if "sr" in row:
        scores = row["sr"]
        if not isinstance(scores, list) or len(scores) > 2 * MAX_PROBES:
            raise ProtocolError(f"row {index} with a malformed 'sr'")
        out["sr"] = [number(value, what="a search score") for value in scores]
    shrunk = row.get("sx")
    if shrunk is not None:
        if not isinstance(shrunk, dict) or isinstance(shrunk.get("k"), bool) or not isinstance(shrunk.get("k"), int):
            raise ProtocolError(f"row {index} with a malformed 'sx'")
        out["sx"] = {"k": shrunk["k"], "t": text(shrunk.get("t"), TEXT, what="a shrunk example")}
    for name, limit in (("pr", None), ("ex", TEXT), ("eq", None)):
        table = row.get(name)
        if table is not None:
            out[name] = _probe_table(table, index, name, limit)
    return out


def _probe_table(table: Any, index: int, name: str, limit: int | None) -> dict[str, Any]:
    if not isinstance(table, dict) or len(table) > MAX_PROBES:
        raise ProtocolError(f"row {index} with a malformed {name!r}")
    return _table(table, limit)


def _table(table: dict[Any, Any], limit: int | None) -> dict[str, Any]:
    """A probe table (name -> score, or name -> text when `limit` is set), checked; exact types take the fast path."""
    if limit is None:
        out = {}
        for key, value in table.items():
            if type(key) is not str or len(key) > 100 or not (type(value) in (float, int) and math.isfinite(value)):
                break
            out[key] = float(value)
        else:
            return out
    return {
        text(key, 100, what="a probe name"): number(value, what="a probe score")
        if limit is None
        else text(value, limit, what="a probe text")
        for key, value in table.items()
    }


def response_record(event: dict[str, Any]) -> dict[str, Any]:
    metrics = event.get("metrics") or {}
    if not isinstance(metrics, dict) or len(metrics) > 50:
        raise ProtocolError("a candidate score with malformed metrics")
    score, success = event.get("score"), event.get("success")
    if success is not None and not isinstance(success, bool):
        raise ProtocolError("a candidate score with a non-boolean success")
    optional = {name: event.get(name) for name in ("reason", "error")}
    return {
        "row_id": text(event.get("row_id") if event.get("row_id") is not None else "", 200, what="a row id"),
        "response": text(event.get("response", ""), what="a response"),
        "score": None if score is None else number(score, what="a candidate score"),
        "success": success,
        "metrics": {
            text(k, 100, what="a metric"): None if v is None else number(v, what="a metric") for k, v in metrics.items()
        },
        **{k: None if v is None else text(v, what=k) for k, v in optional.items()},
    }


class RowClock:
    """Which row the child is on, and since when, as the server observed it (never the child's time).

    Positions only move forward (loading < rows < candidate responses). A move is believed when it is
    the first after `loaded`, or when the child reported results within MESSAGE_GAP_S: a child that
    stops reporting (its row hung) cannot restart the clock by rewriting the map.
    """

    def __init__(self, now: float, loading: int):
        self.loading = loading
        self.row, self.since = loading, now
        self.last_message: float | None = None

    def message(self, now: float) -> None:
        self.last_message = now

    def observe(self, row: int, now: float) -> None:
        if self._order(row) <= self._order(self.row) or self.last_message is None:
            return
        if self.row == self.loading or now - self.last_message <= MESSAGE_GAP_S:
            self.row, self.since = row, now

    def _order(self, row: int) -> tuple[int, int]:
        if row == self.loading:
            return (0, 0)
        return (1, row) if row >= 0 else (2, -2 - row)

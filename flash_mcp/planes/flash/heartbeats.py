"""Flash worker heartbeats as metric rows, in the same shape the local plane writes (one dict per step).

Three sources, finest last: the control-plane log's `worker: stage=… step=… reward=…` lines, the
worker console's `HEARTBEAT {json}` lines, and the status's `last_heartbeat.metrics_last` backlog.
Rows carry their `attempt`; rows from an attempt that is no longer the live one are marked
`superseded` so a retried run's dead worker never reads as the current curve.
"""

from __future__ import annotations

import json
import re
from typing import Any

# Heartbeat fields that are bookkeeping, not training metrics.
_NOT_METRICS = frozenset(
    {"step", "attempt", "seed", "ts", "progress_age_s", "setup_seconds", "parent_preparation_seconds", "train_wall",
     "checkpoint_failure_step", "liveness", "time"}
)  # fmt: skip
# Where `format_gpu_status` begins on a log line: telemetry, not metrics.
_GPU_KEYS = frozenset({"driver", "cuda", "util", "mem_util", "mem", "mem_free", "temp", "power"})
_TOKEN = re.compile(r"^([A-Za-z_][\w./-]*)=(\S+)$")
_ARTIFACT_ATTEMPT = re.compile(r"_attempt(\d+)\.txt$")
_HEARTBEAT_LINE = re.compile(r"^HEARTBEAT (?:\[superseded[^\]]*\] )?(\{.*\})\s*$")


def from_log(text: str) -> list[dict[str, Any]]:
    """Rows from `worker: stage=<s> attempt=N step=S key=value …` lines that carry a step."""
    rows = []
    for line in text.splitlines():
        if not line.startswith("worker: "):
            continue
        row: dict[str, Any] = {}
        for token in line[len("worker: ") :].split():
            match = _TOKEN.match(token)
            if match is None or match.group(1) in _GPU_KEYS:
                break
            key, raw = match.groups()
            if key in ("step", "attempt"):
                row[key] = as_int(raw)
            elif key not in _NOT_METRICS and key != "stage" and (value := as_float(raw)) is not None:
                row[key] = value
        if row.get("step") is not None and len(row) > 1 + ("attempt" in row):
            rows.append(row)
    return rows


def from_heartbeat(heartbeat: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Rows from one heartbeat payload: its `metrics_last` backlog, else its own step fields."""
    if not isinstance(heartbeat, dict):
        return []
    attempt = heartbeat.get("attempt") if isinstance(heartbeat.get("attempt"), int) else None
    backlog = heartbeat.get("metrics_last")
    entries = [e for e in backlog if isinstance(e, dict)] if isinstance(backlog, list) and backlog else [heartbeat]
    rows = []
    for entry in entries:
        step = entry.get("step")
        if not isinstance(step, int) or isinstance(step, bool):
            continue
        row: dict[str, Any] = {"step": step, **_numbers(entry)}
        if entry is heartbeat and isinstance(heartbeat.get("reward_metrics"), dict):
            row.update(_numbers(heartbeat["reward_metrics"]))
        if attempt is not None:
            row["attempt"] = attempt
        if len(row) > 1 + (attempt is not None):
            rows.append(row)
    return rows


def from_console(name: str, text: str) -> list[dict[str, Any]]:
    """Rows from a worker console artifact's `HEARTBEAT {json}` lines; the file name fixes the attempt."""
    named = _ARTIFACT_ATTEMPT.search(name)
    rows = []
    for line in text.splitlines():
        match = _HEARTBEAT_LINE.match(line.strip())
        if match is None:
            continue
        try:
            payload = json.loads(match.group(1))
        except ValueError:
            continue
        if named and isinstance(payload, dict):
            payload = {**payload, "attempt": int(named.group(1))}
        rows.extend(from_heartbeat(payload))
    return rows


def merge(sources: list[list[dict[str, Any]]], live_attempt: int | None) -> list[dict[str, Any]]:
    """One row per (attempt, step), later sources filling in, ordered by step; dead attempts marked."""
    merged: dict[tuple[int | None, int], dict[str, Any]] = {}
    for rows in sources:
        for row in rows:
            key = (row.get("attempt"), row["step"])
            merged[key] = {**merged.get(key, {}), **row}
    attempts = {attempt for attempt, _ in merged if attempt is not None}
    live = live_attempt if live_attempt is not None else max(attempts, default=None)
    out = []
    for (attempt, _), row in sorted(merged.items(), key=lambda item: (item[0][1], item[0][0] or 0)):
        if attempt is not None and live is not None and attempt != live:
            row = {**row, "superseded": True}
        out.append(row)
    return out


def _numbers(entry: dict[str, Any]) -> dict[str, float]:
    return {
        str(key): float(value)
        for key, value in entry.items()
        if key not in _NOT_METRICS and isinstance(value, (int, float)) and not isinstance(value, bool)
    }


def as_float(raw: object) -> float | None:
    """A number from a log token or a JSON value; None when it is not one."""
    try:
        return float(raw) if raw is not None and not isinstance(raw, bool) else None
    except (TypeError, ValueError):
        return None


def as_int(raw: object) -> int | None:
    try:
        return int(raw) if raw is not None and not isinstance(raw, bool) else None
    except (TypeError, ValueError):
        return None

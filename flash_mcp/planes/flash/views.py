"""Flash run statuses, heartbeats and worker logs as the plane-neutral views (RunView, notes, samples)."""

from __future__ import annotations

import re
import time
from typing import Any

from flash_mcp.planes.base import TERMINAL, RunView, WorkerArtifact
from flash_mcp.planes.flash import heartbeats

ARTIFACT_TAIL = 4_000
STATES = frozenset({"queued", "provisioning", "running", *TERMINAL})


def run_view(status: dict[str, Any], plane: str, configs: dict[str, str]) -> RunView:
    """A Flash run status as the plane-neutral RunView."""
    spec = status.get("spec") if isinstance(status.get("spec"), dict) else {}
    heartbeat = status.get("last_heartbeat") if isinstance(status.get("last_heartbeat"), dict) else {}
    state = state_of(status)
    rows = heartbeats.from_heartbeat(heartbeat)
    latest = {k: v for k, v in (rows[-1] if rows else {}).items() if k not in ("step", "attempt")}
    return RunView(
        run_id=status["run_id"],
        plane=plane,
        state=state if state in STATES else "failed",
        stage=heartbeat.get("stage"),
        algorithm=str(spec.get("algorithm") or "?"),
        model=str(spec.get("model") or "?"),
        config=configs.get(status["run_id"]),
        environment_id=(spec.get("environment") or {}).get("id"),
        created_at=float(status.get("created_at") or 0),
        updated_at=float(status.get("updated_at") or 0),
        finished_at=status.get("finished_at"),
        step=rows[-1]["step"] if rows else heartbeats.as_int(heartbeat.get("step")),
        total_steps=heartbeats.as_int((spec.get("train") or {}).get("max_steps")),
        heartbeat_age_s=age(heartbeat.get("ts")) if state not in TERMINAL else None,
        latest_metrics=latest,
        cost_usd=float(status.get("cost_usd") or 0.0) if state in TERMINAL else None,
        estimated_cost_usd=status.get("estimated_cost_usd"),
        error=status.get("error"),
        notes=status_notes(status, state, heartbeat),
    )


def live_attempt(status: dict[str, Any]) -> int | None:
    remote = status.get("remote")
    attempt = remote.get("attempt") if isinstance(remote, dict) else None
    return attempt if isinstance(attempt, int) and not isinstance(attempt, bool) else None


def artifact(name: str, text: str, live: int | None) -> WorkerArtifact:
    match = re.search(r"_attempt(\d+)\.txt$", name)
    attempt = int(match.group(1)) if match else None
    if attempt is None:
        label = "attempt unknown (written at teardown)"
    elif live is None or attempt == live:
        label = f"attempt {attempt}" + (", current attempt" if live is not None else "")
    else:
        label = f"attempt {attempt}, superseded (current attempt {live})"
        text = re.sub(r"(?m)^HEARTBEAT (?!\[superseded)", f"HEARTBEAT [superseded attempt={attempt}] ", text)
    tail = text[-ARTIFACT_TAIL:]
    return WorkerArtifact(name=name, attempt=attempt, label=label, tail=tail)


def dry_run_notes(status: dict[str, Any]) -> list[str]:
    notes = ["Flash validated the config, model, secrets and serving limits; it did not run environment.py"]
    schema = status.get("train_schema_compatibility")
    if isinstance(schema, dict) and schema.get("status") == "disagreement":
        notes.append(
            f"client/server [train] schemas disagree: client-only {schema.get('client_only')}, "
            f"server-only {schema.get('server_only')}"
        )
    if status.get("affordability_verified") is False:
        notes.append("affordability was not verified (internal key or billing unavailable)")
    budget = status.get("prompt_budget")
    if isinstance(budget, dict) and budget.get("prompt_budget"):
        notes.append(f"prompt budget {budget['prompt_budget']} tokens (engine length {budget.get('engine_len')})")
    return notes


def state_of(status: dict[str, Any]) -> str:
    """Flash records a dry-run quote as `queued`, then flips it to `dry_run` in the same request; a real run
    publishes its source snapshot before it is recorded, so a queued record without one is a quote."""
    state = str(status["state"])
    return "dry_run" if state == "queued" and not status.get("source_provenance") else state


def status_notes(status: dict[str, Any], state: str, heartbeat: dict[str, Any]) -> list[str]:
    notes = []
    if state == "dry_run":
        notes.append("a dry-run record: validated and quoted, nothing trained")
    if state == "failed" and not status.get("cost_usd") and status.get("estimated_cost_usd"):
        notes.append(f"failed before a charge was measured; the quote was ${status['estimated_cost_usd']:.2f}")
    if state not in TERMINAL and status.get("estimated_cost_usd") is not None:
        notes.append("cost_usd is settled when the run ends; estimated_cost_usd is the quote")
    live, beat = live_attempt(status), heartbeat.get("attempt")
    if live is not None and isinstance(beat, int) and beat != live:
        notes.append(f"the last heartbeat came from superseded attempt {beat}; attempt {live} is live")
    return notes


def samples_from_log(log: str) -> list[dict[str, Any]]:
    """`  sample k reward=… step=N` blocks with their prompt and completion lines."""
    samples: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    field = None
    for line in log.splitlines():
        head = re.match(r"^  sample \d+ (reward|loss)=(\S+)(?: step=(\d+))?$", line)
        if head:
            current = {head.group(1): heartbeats.as_float(head.group(2)), "step": heartbeats.as_int(head.group(3))}
            samples.append(current)
            field = None
        elif current is not None and (part := re.match(r"^    (prompt|completion): ?(.*)$", line)):
            field = part.group(1)
            current[field] = part.group(2)
        elif current is not None and field and line.startswith("      "):
            current[field] += "\n" + line[6:]
        else:
            current, field = None, None
    return samples


def hub_path(entry: dict[str, Any]) -> str | None:
    repo = entry.get("repo_id")
    if not repo:
        return None
    return f"hf://{entry.get('repo_type') or 'model'}/{repo}/{entry.get('subfolder') or ''}".rstrip("/")


def clip_utf8(data: bytes, limit: int) -> bytes:
    window = data[:limit]
    while window:
        try:
            window.decode("utf-8")
            return window
        except UnicodeDecodeError:
            window = window[:-1]
    return window


def age(ts: object) -> float | None:
    return round(time.time() - float(ts), 1) if isinstance(ts, (int, float)) and not isinstance(ts, bool) else None

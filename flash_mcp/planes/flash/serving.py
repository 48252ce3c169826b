"""Serving a checkpoint on Flash 1.3.28: deploy, read, undeploy (`/v1/runs/{run}/deploy`) and chat
(`/v1/runs/{run}/chat`), with the CLI's wire rules (flash/client/http.py: `deploy`, `deployment_for`,
`undeploy`, `chat`). Checkpoint ids are canonical: RUN/final or RUN/step-N."""

from __future__ import annotations

import re
import urllib.parse
from typing import Any

from flash_mcp.core.errors import UserError
from flash_mcp.planes.base import ChatAnswer, Deployment
from flash_mcp.planes.flash import guarded
from flash_mcp.planes.flash.client import FlashClient, FlashError

CHECKPOINT = re.compile(r"^(?P<run>[A-Za-z0-9][A-Za-z0-9_.-]*)/(final|step-\d+)$")
DEPLOY_TIMEOUT = 120.0
CHAT_TIMEOUT = 30 * 60.0


def run_of(checkpoint_id: str) -> str:
    match = CHECKPOINT.match(checkpoint_id.strip())
    if not match:
        raise UserError(f"checkpoint {checkpoint_id!r}: use RUN/final or RUN/step-N (list_checkpoints shows them)")
    return match.group("run")


def _path(checkpoint_id: str) -> str:
    return f"/v1/runs/{urllib.parse.quote(run_of(checkpoint_id), safe='')}/deploy"


def _query(checkpoint_id: str) -> str:
    return f"{_path(checkpoint_id)}?checkpoint_id={urllib.parse.quote(checkpoint_id.strip(), safe='')}"


def _deployment(checkpoint_id: str, record: dict[str, Any]) -> Deployment:
    return Deployment(
        checkpoint_id=str(record.get("checkpoint_id") or checkpoint_id),
        state=str(record.get("state") or "unknown"),
        error=str(record["error"]) if record.get("error") else None,
        detail=str(record["detail"]) if record.get("detail") else None,
    )


def deploy(client: FlashClient, checkpoint_id: str, *, dry_run: bool = False) -> Deployment:
    """POST …/deploy: returns while `deploying` (or `ready` when the plane deploys synchronously). A dry run
    checks the target (run state, checkpoint, servable model) and registers nothing."""
    body = {"dry_run": dry_run, "checkpoint_id": checkpoint_id.strip()}
    try:
        record = client.request("POST", _path(checkpoint_id), body=body, timeout=DEPLOY_TIMEOUT, require={"state": str})
    except FlashError as exc:
        if exc.code != guarded.APPROVAL_REQUIRED:
            raise
        guarded.propose(client, _path(checkpoint_id), body, f"deploy {checkpoint_id.strip()} (billed per token)")
        return deployment(client, checkpoint_id)
    return _deployment(checkpoint_id, record)


def deployment(client: FlashClient, checkpoint_id: str) -> Deployment:
    return _deployment(checkpoint_id, client.request("GET", _query(checkpoint_id), require={"state": str}))


def undeploy(client: FlashClient, checkpoint_id: str) -> Deployment:
    return _deployment(checkpoint_id, client.request("DELETE", _query(checkpoint_id), timeout=DEPLOY_TIMEOUT))


def chat(client: FlashClient, checkpoint_id: str, messages: list[dict], *, temperature: float,
         max_tokens: int) -> ChatAnswer:  # fmt: skip
    """One non-streamed answer (the CLI's `chat`): the first choice's text, its token count, whether it hit
    max_tokens."""
    body = {"checkpoint_id": checkpoint_id.strip(), "messages": messages, "temperature": temperature,
            "max_tokens": max_tokens}  # fmt: skip
    path = f"/v1/runs/{urllib.parse.quote(run_of(checkpoint_id), safe='')}/chat"
    answer = client.request("POST", path, body=body, timeout=CHAT_TIMEOUT, require={"choices": [dict]})
    if not answer["choices"]:
        raise FlashError(f"{path} answered with no choices")
    choice = answer["choices"][0]
    text = (choice.get("message") or {}).get("content") or ""
    usage = answer.get("usage") if isinstance(answer.get("usage"), dict) else {}
    tokens = usage.get("completion_tokens")
    return ChatAnswer(
        text=str(text),
        tokens=int(tokens) if isinstance(tokens, int) and not isinstance(tokens, bool) else len(str(text).split()),
        truncated=choice.get("finish_reason") == "length",
    )

"""Which Flash routes the guard forwards as they are, which need the human's approval, and which it refuses.

Pure: a request's method, path and body in, a `Route` out. Reads, free acts (push an environment, a dry run,
cancel, undeploy) and chat with an approved deployment pass with the key added; a real submit and a real
deployment spend money and pass only as a proposal the human approved; anything else is refused.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Literal

Verdict = Literal["forward", "approval", "refuse"]
_RUN = r"/v1/runs/[^/]+"
_READS = (
    *(r"/v1/health", r"/v1/me", r"/v1/models", r"/v1/envs", r"/v1/envs/[^/]+/package", r"/v1/runs", r"/v1/deployments"),
    *(_RUN, _RUN + r"/logs", _RUN + r"/worker", _RUN + r"/checkpoints", _RUN + r"/deploy"),
)
_FREE_POSTS = (r"/v1/envs", _RUN + r"/cancel", _RUN + r"/chat")
_SPENDING_POSTS = (r"/v1/runs", _RUN + r"/deploy")
_FREE_DELETES = (_RUN + r"/deploy",)


@dataclass(frozen=True)
class Route:
    verdict: Verdict
    reason: str = ""


def classify(method: str, path: str, body: bytes) -> Route:
    """What the guard does with one request from the MCP server."""
    path = path.split("?", 1)[0]
    method = method.upper()
    if ".." in path or "//" in path:
        return Route("refuse", "a path with '..' or '//' is never forwarded")
    if method == "GET" and _matches(_READS, path):
        return Route("forward")
    if method == "DELETE" and _matches(_FREE_DELETES, path):
        return Route("forward")
    if method == "POST" and _matches(_SPENDING_POSTS, path):
        return Route("forward") if _dry_run(body) else Route("approval", "this spends money: propose it to the guard")
    if method == "POST" and _matches(_FREE_POSTS, path):
        return Route("forward")
    return Route("refuse", f"the guard does not forward {method} {path}")


def _matches(patterns: tuple[str, ...], path: str) -> bool:
    return any(re.fullmatch(pattern, path) for pattern in patterns)


def _dry_run(body: bytes) -> bool:
    """A body whose top-level `dry_run` is exactly true (anything unparsable spends, so needs approval)."""
    try:
        value = json.loads(body or b"{}")
    except ValueError:
        return False
    return isinstance(value, dict) and value.get("dry_run") is True

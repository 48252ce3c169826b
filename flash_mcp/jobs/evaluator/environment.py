"""The environment as training sees it: loaded, prompts rendered and answers scored exactly as the
trainer and `test_environment` do. The one place the evaluator touches the shared env loader."""

from __future__ import annotations

import math
from typing import Any

from flash_mcp import runtime


def load_environment(entrypoint: str, params: dict[str, Any]) -> tuple[Any, list[Any], bool]:
    """(environment, examples, multi_turn)."""
    env, examples, info = runtime.load({"entrypoint": entrypoint, "params": params})
    return env, examples, bool(info["multi_turn"])


def render(env: Any, example: Any) -> list[dict]:
    return runtime.prompt(env, example)


def score(env: Any, example: Any, text: str) -> dict[str, Any]:
    """score, success, error, reason: a scorer that raises or reports an error is an errored row."""
    try:
        result = env.score_response(example, env.normalize_response_text(example, text))
        value = float(result.score)
    except BaseException as exc:  # user code: anything may come out of it
        return {"score": None, "success": None, "error": f"scoring failed: {type(exc).__name__}: {exc}"[:500]}
    if getattr(result, "error", None) or not math.isfinite(value):
        return {"score": None, "success": None, "error": str(result.error or f"reward is not finite: {value}")[:500]}
    success = result.resolved_success() if hasattr(result, "resolved_success") else None
    reason = getattr(result, "reason", None)
    return {"score": value, "success": success, "error": None, "reason": str(reason)[:500] if reason else None}

"""Cases from an `evaluations.py` suite, rendered and scored as `flash env eval` 1.3.28 does: the environment
loaded through Flash's own loader, each case's prompt from `prompt_messages`, each answer graded by the suite's
`score` and normalized with Flash's `normalize_eval_result`. Needs the `flash` package (the scaffolded suite
imports it too)."""

from __future__ import annotations

import functools
from typing import Any

from flash_mcp.jobs.evaluator.items import Item

SUITE_PREFIX = "suite:"


def suite_items(entrypoint: str, params: dict[str, Any], name: str, max_rows: int | None) -> list[Item]:
    from flash.envs.loading.loader import load_freesolo_environment
    from flash.envs.meta.evaluations import _evaluation_path, load_evaluation_suites, validate_evaluation_cases

    env = load_freesolo_environment(entrypoint, **params)
    suites = load_evaluation_suites(entrypoint, environment=env)
    chosen = next((suite for suite in suites if suite.name == name), None)
    if chosen is None:
        available = ", ".join(sorted(suite.name for suite in suites)) or "none"
        raise RuntimeError(f"unknown suite {name!r}; available suites: {available}")
    if getattr(chosen, "grades_episodes", False):
        raise RuntimeError(f"suite {name!r} grades whole episodes; multi-turn evaluation is not local yet")
    cases = validate_evaluation_cases(chosen, source=_evaluation_path(entrypoint))
    if not cases:
        raise RuntimeError(f"suite {name!r} has no cases to run")
    cases = cases[:max_rows] if max_rows else cases
    items = []
    for case, case_id in zip(cases, case_ids(cases), strict=True):
        try:
            prompt: Any = case_messages(env, case)
        except BaseException as exc:  # prompt_messages runs the environment's start_episode: user code
            prompt = exc
        items.append(
            Item(f"{SUITE_PREFIX}{name}:{case_id}", prompt, functools.partial(score_case, chosen, case, case_id))
        )
    return items


def case_ids(cases: list[Any]) -> list[str]:
    """Flash's stable per-case ids: the case id, or its 1-based position, `#N` for repeats."""
    ids: list[str] = []
    seen: dict[str, int] = {}
    for index, case in enumerate(cases, start=1):
        base = case.id or str(index)
        count = seen.get(base, 0)
        resolved = base if count == 0 else f"{base}#{count + 1}"
        while resolved in ids:
            count += 1
            resolved = f"{base}#{count + 1}"
        seen[base] = count + 1
        ids.append(resolved)
    return ids


def case_messages(env: Any, case: Any) -> list[dict]:
    example = dict(case.metadata or {})
    example.update(input=case.input, output=case.expected)
    if case.id is not None:
        example["id"] = case.id
    build = getattr(env, "prompt_messages", None)
    if not callable(build):
        return [{"role": "user", "content": case.input}]
    messages = build(example)
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
        raise TypeError("environment prompt_messages() must return a non-empty list of chat message dicts")
    return [dict(m) for m in messages]


def score_case(suite: Any, case: Any, case_id: str, text: str) -> dict[str, Any]:
    from flash.envs.meta.evaluations import normalize_eval_result

    try:
        raw = getattr(text, "raw", text)  # a thinking answer: the suite grades the stripped text, records the raw
        result = normalize_eval_result(case, raw, suite.score(case, text), case_id=case_id)
    except BaseException as exc:  # the suite's scorer is user code
        return {"score": None, "success": None, "error": f"scoring failed: {type(exc).__name__}: {exc}"[:500]}
    if result.error:
        return {"score": None, "success": None, "error": str(result.error)[:500]}
    return {"score": float(result.score), "success": bool(result.passed), "error": None}

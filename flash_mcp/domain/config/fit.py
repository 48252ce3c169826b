"""Will the run fit a GPU? Flash's own VRAM sizing, when freesolo-flash is installed.

The VRAM equations (model geometry, KV cache, sharding) are Flash's physics, not config
syntax, so they are not re-derived here: with freesolo-flash 1.3.28 importable (it is
stdlib-only) the exact parse-time fit check runs; without it the check is reported as skipped
and the plane's dry-run makes it.
"""

from __future__ import annotations

from typing import Any


def flash_available() -> bool:
    try:
        import flash.schema  # noqa: F401
    except ImportError:
        return False
    return True


def fit_problem(raw: dict[str, Any], *, model: str, algorithm: str, thinking: bool, warm_start: str) -> str | None:
    """Flash's rejection of this run's GPU shape, or None when it fits (or cannot be checked)."""
    try:
        from flash.schema import ConfigError, _validate_gpu_section
    except ImportError:
        return None
    train = raw.get("train") if isinstance(raw.get("train"), dict) else {}
    try:
        _validate_gpu_section(
            raw,
            model=model,
            model_revision="",
            algorithm=algorithm,
            train_raw=train,
            init_from_adapter=warm_start,
            thinking=thinking,
        )
    except ConfigError as exc:
        return str(exc)
    return None


SFT_NOT_PRICED = (
    "Flash has no offline estimate for SFT: it prices SFT from a profile of the dataset measured at submit; "
    "dry_run with plane='flash' returns that quote"
)


def hosted_estimate(raw: dict[str, Any]) -> dict[str, Any]:
    """Flash's own offline estimate of the hosted run (GRPO/OPD); otherwise `usd` is None and `reason` says why.

    The hosted plane's quote can differ (revision, allocation); label it as an estimate.
    """
    try:
        from flash.cost.spec import estimate_for_spec
        from flash.schema import spec_from_dict
    except ImportError:
        return {"usd": None, "reason": "freesolo-flash is not installed, so Flash's estimator is unavailable"}
    if str(raw.get("algorithm") or "sft").lower() not in ("grpo", "opd"):
        return {"usd": None, "reason": SFT_NOT_PRICED}
    try:
        estimate = estimate_for_spec(spec_from_dict(dict(raw)))
    except (ValueError, TypeError) as exc:
        return {"usd": None, "reason": f"Flash's estimator refused the config: {exc}"}
    return {
        "usd": round(estimate.total_usd, 2),
        "gpu": estimate.gpu,
        "gpu_count": estimate.gpu_count,
        "steps": estimate.steps,
        "teacher_api_usd": round(estimate.teacher_api_usd, 2),
    }

"""Top-level keys: unknown sections, model, project, algorithm, thinking, [wandb] and seed."""

from __future__ import annotations

import uuid

from flash_mcp.domain.config import catalog
from flash_mcp.domain.config.rules.base import Invalid, RuleBase, suggest
from flash_mcp.domain.config.schema import (
    TABLES,
    TOP_LEVEL_KEYS,
    WANDB_KEYS,
)

MAX_SEED = 2**63 - 1


class TopLevelRules(RuleBase):
    def _unknown_top_level(self) -> None:
        unknown = sorted(set(self.raw) - set(TOP_LEVEL_KEYS))
        if not unknown:
            return
        hint = ""
        if {"grpo", "sft", "opd"} & set(unknown):
            hint = (
                " - algorithm knobs (group_size, batch_size, max_completion_tokens, ...) "
                "belong under [train], not a per-algorithm table"
            )
        noun = "section(s)" if any(isinstance(self.raw[key], dict) for key in unknown) else "key(s)"
        for key in unknown:
            self.fail(
                key,
                f"unknown config {noun}: {', '.join(unknown)} (allowed tables: {', '.join(TABLES)}){hint}",
                suggest(key, TOP_LEVEL_KEYS, f"remove `{key}`; only {', '.join(TOP_LEVEL_KEYS)} are allowed"),
            )

    def _model(self) -> None:
        if "model" not in self.raw:
            raise self.fail("model", "config must set `model`", f'add model = "{catalog.DEFAULT_MODEL}"')
        model = self.raw["model"]
        if not isinstance(model, str) or not model.strip():
            raise self.fail(
                "model",
                'config `model` must be a model id string (e.g. "Qwen/Qwen3.5-9B")',
                f"use one of: {', '.join(catalog.MODELS)}",
            )
        self.parsed.model = model

    def _project(self) -> None:
        value = self.raw.get("project", "")
        fix = 'set project = "<your Freesolo project UUID>" (see `flash projects list`)'
        if value is None or (isinstance(value, str) and not value.strip()):
            if self.project_required or value is None:
                raise self.fail("project", "project is required and must be nonblank", fix)
            return
        if not isinstance(value, str):
            raise self.fail("project", "project must be a string", fix)
        try:
            self.parsed.project = str(uuid.UUID(value.strip()))
        except ValueError:
            raise self.fail("project", "project must be a valid UUID", fix) from None

    def _algorithm(self) -> None:
        value = self.raw.get("algorithm")
        fix = 'set algorithm = "sft", "grpo" or "opd"'
        if not value:
            self.parsed.algorithm = "sft"
            return
        if not isinstance(value, str):
            raise self.fail("algorithm", f"algorithm must be a string, got {type(value).__name__}", fix)
        if value.lower() not in catalog.ALGORITHMS:
            raise self.fail(
                "algorithm", f"unsupported algorithm: {value.lower()}; known: {', '.join(catalog.ALGORITHMS)}", fix
            )
        self.parsed.algorithm = value.lower()

    def _thinking(self) -> None:
        value = self.raw.get("thinking", False)
        if not isinstance(value, bool):
            raise self.fail("thinking", "thinking must be a boolean", "write thinking = true or thinking = false")
        self.parsed.thinking = value

    def _wandb(self) -> None:
        raw = self.raw.get("wandb")
        if raw is None:
            return
        if not isinstance(raw, dict):
            raise self.fail("wandb", '[wandb] must be a table (e.g. project = "my-project")', "write a [wandb] table")
        only = "remove it; only project and run_name exist"
        if self._unknown_keys("wandb", raw, WANDB_KEYS, lambda k: "rename name to run_name" if k == "name" else only):
            raise Invalid()
        for key in WANDB_KEYS:
            value = raw.get(key)
            if value is None:
                continue
            if not isinstance(value, str) or not value.strip():
                raise self.fail(f"wandb.{key}", f"[wandb] {key} must be a non-empty string", f"quote the {key}")
            self.parsed.wandb[key] = value.strip()

    def _seed(self) -> None:
        value = self.raw.get("seed", 42)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail("seed", "seed must be an integer", "write a whole number such as 42")
        if not 0 <= value <= MAX_SEED:
            raise self.fail("seed", f"seed must be between 0 and {MAX_SEED}", "use a non-negative seed")
        self.parsed.seed = value

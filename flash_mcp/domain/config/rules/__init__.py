"""Flash 1.3.28's config rules (flash/schema, flash/core/spec.py), collected rather than raised.

Flash stops at the first problem; this checker walks the same rules in the same order and keeps
going where later rules do not depend on an earlier failure, so an agent can fix everything in
one pass. Messages use Flash's own wording; every finding names its dotted key (`where`) and a fix.
"""

from __future__ import annotations

from flash_mcp.domain.config.rules.base import INVALID, Parsed
from flash_mcp.domain.config.rules.environment import EnvironmentRules
from flash_mcp.domain.config.rules.gpu import GpuRules
from flash_mcp.domain.config.rules.model import ModelRules
from flash_mcp.domain.config.rules.top import TopLevelRules
from flash_mcp.domain.config.rules.train import TrainRules

__all__ = ["INVALID", "Checker", "Parsed"]


class Checker(TopLevelRules, EnvironmentRules, TrainRules, ModelRules, GpuRules):
    """Flash's rules in Flash's order; `run` returns what parsed, `errors` holds every finding."""

    def run(self) -> Parsed:
        self.attempt(self._unknown_top_level)
        self.attempt(self._model)
        self.attempt(self._project)
        self.attempt(self._algorithm)
        self.attempt(self._thinking)
        env = self.attempt(self._table, "environment") or {}
        train = self.attempt(self._table, "train") or {}
        algorithm = self.parsed.algorithm
        if env:
            self._environment(env, algorithm)
        if train is not None:
            self._train_keys(train, algorithm)
            if algorithm == "grpo":
                self.attempt(self._grpo_shape, train)
        self.attempt(self._gpu)
        self.attempt(self._model_and_algorithm, train)
        self.attempt(self._wandb)
        self._train_values(train)
        self.attempt(self._seed)
        self._algorithm_rules()
        self.attempt(self._environment_id, env)
        return self.parsed

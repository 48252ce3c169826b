"""What every rule family shares: the parsed-value record and the helpers that record findings."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

from flash_mcp.core.findings import Finding

INVALID = "config-invalid"  # the code of every finding a rule records: Flash refuses the config


@dataclass
class Parsed:
    """The values that passed their checks, in Flash's canonical form."""

    model: str | None = None
    project: str = ""
    algorithm: str | None = None
    thinking: bool = False
    seed: int = 42
    environment: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    gpu: dict[str, Any] = field(default_factory=dict)
    wandb: dict[str, str] = field(default_factory=dict)


class Invalid(Exception):
    """A value failed its check; the finding is already recorded."""


class RuleBase:
    """Records findings and parsed values; each rule family adds its checks as methods."""

    def __init__(self, raw: dict[str, Any], *, project_required: bool):
        self.raw = raw
        self.project_required = project_required
        self.errors: list[Finding] = []
        self.parsed = Parsed()

    def fail(self, key: str, message: str, fix: str) -> Invalid:
        self.errors.append(Finding(code=INVALID, message=message, fix=fix, where=key))
        return Invalid()

    def attempt(self, check, *args) -> Any:
        try:
            return check(*args)
        except Invalid:
            return None

    def _unknown_keys(self, section: str, table: dict[str, Any], allowed, fix_for) -> bool:
        """Record Flash's "[section] unknown key(s)" error for each unknown key; True if any."""
        unknown = sorted(set(table) - set(allowed))
        for key in unknown:
            self.fail(
                f"{section}.{key}",
                f"[{section}] unknown key(s): {', '.join(unknown)} (allowed: {', '.join(allowed)})",
                fix_for(key),
            )
        return bool(unknown)

    def _table(self, name: str) -> dict[str, Any]:
        value = self.raw.get(name)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(name, f"[{name}] must be a table", f"write a [{name}] table of key = value lines")
        return value


def suggest(value: str, known, fallback: str) -> str:
    close = difflib.get_close_matches(str(value), list(known), n=1)
    return f"did you mean {close[0]!r}? Otherwise {fallback}" if close else fallback


def echo(value: Any) -> str:
    return "<redacted url>" if "://" in str(value) else repr(value)

"""A problem with its fix: what config validation, the project preflight and file diagnostics report.

`severity` says what the finding stops: an `error` stops a run (or a write), a `warning` does not, and `waste`
is a config that Flash accepts but that certainly wastes a paid run: a warning when the config is validated,
an error before anything is quoted or launched.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Severity = Literal["error", "waste", "warning"]


class Finding(BaseModel):
    model_config = ConfigDict(frozen=True)

    code: str = Field(description="What kind of problem, e.g. 'param-dropped'")
    severity: Severity = "error"
    message: str
    fix: str = Field(default="", description="A concrete change that resolves it")
    where: str = Field(default="", description="What it is about: a file, or a config's dotted key")

    def sentence(self, label: str | None = None) -> str:
        """`label: message (fix: fix)`, labelled by the code unless told otherwise (a config's key)."""
        said = f"{label or self.code}: {self.message}"
        return f"{said} (fix: {self.fix})" if self.fix else said


def listed(findings: Iterable[Finding], *, by_where: bool = False) -> str:
    """Findings as one sentence each, `; `-joined: labelled by code, or by what they are about."""
    return "; ".join(f.sentence(f.where if by_where else None) for f in findings)

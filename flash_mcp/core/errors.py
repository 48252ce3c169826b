"""Errors a user (or an agent) can act on.

The MCP surface turns every `UserError` into a `ToolError`, so its message reaches the model.
Anything else is a bug and surfaces as a bare tool failure. A refusal said in more than one place has its
class here, and the class writes the message (what is wrong, then what to do), so it reads the same
wherever it is raised:

    UserError
    ├── ConfigInvalid     a config with errors, each `key: message (fix: ...)`; says what did not happen
    │   └── EditRefused   an edit that would add errors; the file is unchanged
    ├── WastedRun         a config that certainly wastes a paid run: nothing quoted or launched
    ├── PreflightFailed   check_project's errors: nothing launched
    ├── NotPushed         the environment was never pushed to this plane
    ├── StalePush         the environment changed on disk since its push
    └── BudgetRefusal     a budget or the concurrency limit says no, naming the setting and its file
"""

from __future__ import annotations

from collections.abc import Sequence

from flash_mcp.core.findings import Finding, listed


class UserError(Exception):
    """A refusal or failure whose message says what to do next."""


class ConfigInvalid(UserError):
    """`outcome` says what did not happen: a launch (the default), an evaluation, a price."""

    def __init__(self, config: str, errors: Sequence[Finding], outcome: str = "nothing was launched"):
        self.errors = list(errors)
        super().__init__(f"{config} is invalid, {outcome}: {listed(errors, by_where=True)}")


class EditRefused(ConfigInvalid):
    def __init__(self, config: str, added: Sequence[Finding]):
        self.errors = list(added)
        UserError.__init__(self, f"edit refused, {config} is unchanged: {listed(added, by_where=True)}")


class WastedRun(UserError):
    def __init__(self, findings: Sequence[Finding]):
        self.findings = list(findings)
        super().__init__(f"this run would be wasted, so nothing was quoted or launched: {listed(findings)}")


class PreflightFailed(UserError):
    def __init__(self, findings: Sequence[Finding]):
        self.findings = list(findings)
        super().__init__(f"check_project found errors, nothing was launched: {listed(findings)}")


class NotPushed(UserError):
    """`why`: what needs the push, when that is not obvious."""

    def __init__(self, environment_id: str, plane: str, why: str = ""):
        self.environment_id = environment_id
        reason = f" ({why})" if why else ""
        super().__init__(f"{environment_id} has not been pushed to the {plane} plane; call push_environment{reason}")


class StalePush(UserError):
    def __init__(self, environment_id: str):
        self.environment_id = environment_id
        super().__init__(
            f"the environment pushed as {environment_id} changed on disk since the push; "
            "call push_environment again so the plane runs what you tested"
        )


class BudgetRefusal(UserError):
    """`over`: the limit this launch would cross; `remedy`: what the agent or the human can do about it."""

    def __init__(self, over: str, remedy: str):
        super().__init__(f"{over}; nothing was launched. {remedy}")

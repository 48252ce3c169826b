"""Errors a user (or an agent) can act on.

The MCP surface turns every `UserError` into a `ToolError`, so its message reaches the model.
Anything else is a bug and surfaces as a bare tool failure.
"""


class UserError(Exception):
    """A refusal or failure whose message says what to do next."""

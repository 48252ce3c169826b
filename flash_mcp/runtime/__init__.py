"""Loading an environment as Flash loads it and rendering its prompts and completions (public API)."""

from flash_mcp.runtime.environment import (
    ContractError,
    checked_messages,
    fallback_completion,
    load,
    prompt,
    with_system,
)

__all__ = ["ContractError", "checked_messages", "fallback_completion", "load", "prompt", "with_system"]

"""Advice to the human: the command line that works where they are, and agent-facing advice rewritten for them.

The server usually runs from a virtual environment that is not on the human's PATH, so a bare `flash-mcp`
would fail: `human_command` names this installation's own executable by its absolute path. Errors from the
use cases are written for the agent ("call push_environment", "ask the human to ..."); `for_the_human`
rewrites them for a person at the CLI, who has no MCP tools and is the human.
"""

from __future__ import annotations

import functools
import re
import shlex
import shutil
import sys
from pathlib import Path

_TOOL_CALL = re.compile(r"\b(?:call|calling|use|run) `?([a-z]+(?:_[a-z]+)+)`?(?= |;|,|\.|\)|$)")
_ASK_THE_HUMAN = re.compile(r"\bask (?:the human|them) to (\w)")


@functools.cache
def executable() -> str:
    """This installation's `flash-mcp`, by absolute path; `python -m flash_mcp` where there is no script."""
    beside = Path(sys.executable).parent / "flash-mcp"
    if beside.is_file():
        return shlex.quote(str(beside))
    found = shutil.which("flash-mcp")
    if found:
        return shlex.quote(str(Path(found).resolve()))
    return f"{shlex.quote(sys.executable)} -m flash_mcp"


def human_command(*arguments: str) -> str:
    """The exact command line to show the human, e.g. `/home/me/proj/.venv/bin/flash-mcp approve p-1`."""
    return " ".join([executable(), *(shlex.quote(argument) for argument in arguments)])


def for_the_human(message: str) -> str:
    """Agent-facing advice for a person at the CLI: tool calls become the agent's job, 'ask the human' goes."""
    message = _ASK_THE_HUMAN.sub(lambda found: found.group(1), message)
    return _TOOL_CALL.sub(lambda found: f"have the agent call its {found.group(1)} tool", message)

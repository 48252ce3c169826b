"""Advice to the human: the command line that works where they are, and agent-facing advice rewritten for them.

The server usually runs from a virtual environment that is not on the human's PATH, so a bare `flash-mcp`
(or `flash`) would fail: `human_command` names this installation's own executable by its absolute path, and
`flash_command` the Flash CLI installed beside it. Errors from the use cases are written for the agent ("call
push_environment", "ask the human to ...", "launch_training can still propose"); `for_the_human` rewrites them
for a person at the CLI, who has no MCP tools and is the human.
"""

from __future__ import annotations

import functools
import re
import shlex
import shutil
import sys
from collections.abc import Collection
from pathlib import Path

_TOOL_CALL = re.compile(r"\b(?:[Cc]all|[Cc]alling|[Uu]se|[Rr]un) `?([a-z]+(?:_[a-z]+)+)`?(?= |;|,|\.|\)|$)")
_ASK_THE_HUMAN = re.compile(r"\bask (?:the human|them) to (\w)")
INSTALLED_GUARD = Path("/opt/flash-mcp-guard/bin/flash-mcp")  # `guard install`'s root-owned copy of flash-mcp
_FOR_THE_HUMAN = re.compile(r"\bfor the human to\b")
_AGAIN = re.compile(r"(?<!the agent )(?<!agent can )(?<!agent to )\b((?:push and )?launch) again\b")
_CODE = re.compile(r"(`[^`]*`)")  # commands, paths and calls the message quotes: never rewritten
_NOT_A_WORD = r"[\w/.(=-]"  # a tool's name inside a path, a file name or a call is not advice


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


def guard_command(*arguments: str, program: Path = INSTALLED_GUARD) -> str:
    """A `guard` command the human runs with sudo, always through the guard's root-owned copy of flash-mcp
    (`sudo /opt/flash-mcp-guard/bin/flash-mcp guard approve gp-1`): root never runs the clone's code, which the
    agent's shell can edit. Before the install it does not exist yet, and the command says so itself."""
    return " ".join(["sudo", shlex.quote(str(program)), "guard", *(shlex.quote(argument) for argument in arguments)])


def guard_install_command() -> str:
    """The one command that installs the spend guard (README: The spend guard), from this installation."""
    return f'sudo {human_command("guard", "install", "--python", "/usr/bin/python3", "--human-user")} "$USER"'


def flash_program() -> str | None:
    """The Flash CLI's executable by absolute path: the `flash` installed beside this Python, else on PATH."""
    beside = Path(sys.executable).parent / "flash"
    found = str(beside) if beside.is_file() else shutil.which("flash")
    return str(Path(found).resolve()) if found else None


def flash_command(*arguments: str) -> str:
    """The Flash CLI's command line to show the human (a bare `flash` where none is installed)."""
    return " ".join(shlex.quote(part) for part in (flash_program() or "flash", *arguments))


def for_the_human(message: str, tools: Collection[str] = ()) -> str:
    """Agent-facing advice for a person at the CLI: tool calls (and the named `tools`) become the agent's job,
    'ask the human' goes, and what the agent must do again is the agent's."""
    names = sorted(name for name in tools if "_" in name)  # `evaluate`, `whoami`: words a person says too
    named = re.compile(
        rf"(?<!its )(?<!{_NOT_A_WORD})(" + "|".join(map(re.escape, names)) + rf")(?!{_NOT_A_WORD})(?! tool)"
    ) if names else None  # fmt: skip
    return "".join(
        part if _CODE.fullmatch(part) else _prose_for_the_human(part, named) for part in _CODE.split(message)
    )


def _prose_for_the_human(text: str, named: re.Pattern[str] | None) -> str:
    text = _ASK_THE_HUMAN.sub(lambda found: found.group(1), text)
    text = _FOR_THE_HUMAN.sub("for you to", text)
    text = _TOOL_CALL.sub(lambda found: f"have the agent call its {found.group(1)} tool", text)
    if named is not None:
        text = named.sub(lambda found: f"the agent's {found.group(1)} tool", text)
    text = re.sub(r"(^|[.!?] )(the agent's|have the agent)", lambda found: found.group(1) + found.group(2).capitalize(),
                  text)  # fmt: skip
    return _AGAIN.sub(lambda found: f"have the agent {found.group(1)} again", text)

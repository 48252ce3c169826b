"""The wire: the child sends every message type and the runner handles every one, by the same names."""

from __future__ import annotations

import json
import re
from pathlib import Path

from flash_mcp.harness import runner
from flash_mcp.harness.wire import KEY, TYPE, Message, encode
from flash_mcp.jobs import envtest_child

NAMED = re.compile(r"Message\.([A-Z_]+)")


def _names(module: object) -> set[str]:
    return set(NAMED.findall(Path(module.__file__).read_text(encoding="utf-8")))


def test_both_sides_name_every_message_and_no_other() -> None:
    members = {m.name for m in Message}
    assert _names(envtest_child) == members
    assert _names(runner) == members


def test_encode_writes_one_signed_line() -> None:
    line = encode(Message.RESPONSE, "key-1", response="4", type="forged", k="forged")
    assert line.endswith("\n") and line.count("\n") == 1
    assert json.loads(line) == {"response": "4", TYPE: "response", KEY: "key-1"}

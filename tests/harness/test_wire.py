"""The wire: the child sends every message type and the runner handles every one, by the same names."""

from __future__ import annotations

import base64
import json
import re
import struct
from pathlib import Path

import pytest

from flash_mcp.domain.envtest.probes import CHEAP
from flash_mcp.domain.envtest.report import Tally
from flash_mcp.harness import runner
from flash_mcp.harness.channel import ProtocolError, plain_run
from flash_mcp.harness.wire import CHEAP_PROBES, KEY, TYPE, Message, encode, packed
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


def _plain(index: int, gold: float = 1.0, junk: float = 0.0, near: float = 0.0, several: float = 0.0) -> dict:
    probes = {"near": near, "several": several}
    return {"i": index, "id": f"example_{index:06d}", "ok": True, "gold": gold, "junk": junk, "pr": probes}


def _run(first: int, values: list[float]) -> dict:
    return {"run": [first, len(values) // 4], "b": base64.b64encode(struct.pack(f"<{len(values)}d", *values)).decode()}


def test_plain_rows_travel_as_runs_and_every_other_row_as_it_is() -> None:
    flagged = {**_plain(2), "think": True}
    rows = [_plain(0), _plain(1, junk=0.5), flagged, _plain(3, near=1.0), {"i": 4, "id": "x", "ok": False}]
    sent = json.loads(json.dumps(packed(rows)))
    assert sent == [_run(0, [1.0, 0.0, 0.0, 0.0, 1.0, 0.5, 0.0, 0.0]), flagged, _run(3, [1.0, 0.0, 1.0, 0.0]), rows[4]]
    assert plain_run(sent[0], 0) == [1.0, 0.0, 0.0, 0.0, 1.0, 0.5, 0.0, 0.0] and plain_run(sent[2], 3)[2] == 1.0
    assert CHEAP_PROBES == CHEAP, "the wire packs exactly the probes every row gets"


@pytest.mark.parametrize(
    ("run", "message"),
    [(_run(1, [1.0, 0.0, 0.0, 0.0]), "malformed run of rows where row 0"),
     ({**_run(0, [1.0, 0.0, 0.0, 0.0]), "run": [0, 2]}, "malformed"),
     ({**_run(0, [1.0, 0.0, 0.0, 0.0]), "b": "not base64!"}, "malformed"),
     ({"run": [0, 1], "b": [1.0, 0.0, 0.0, 0.0]}, "malformed"),
     (_run(0, [1.0, 0.0, float("nan"), 0.0]), "not a finite number"),
     (_run(0, [1.0, float("inf"), 0.0, 0.0]), "not a finite number"),
     ({"run": [0, 0], "b": ""}, "malformed")],
)  # fmt: skip
def test_a_forged_run_of_rows_is_a_protocol_break(run: dict, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        plain_run(run, 0)


@pytest.mark.parametrize("thinking", [False, True])
def test_a_plain_row_counts_exactly_as_the_row_it_stands_for(thinking: bool) -> None:
    """The server's cheap path for plain rows gives the report the full path gives, warnings and audit included."""
    rows = [_plain(0), _plain(1, gold=0.0), _plain(2, near=1.0), _plain(3, junk=1.0), _plain(4, gold=0.5, junk=0.25)]
    rows += [_plain(i, gold=float(i % 3)) for i in range(5, 40)]
    full, cheap = Tally(rows_total=40, thinking=thinking), Tally(rows_total=40, thinking=thinking)
    for row in rows:
        full.add_row(dict(row, pr=dict(row["pr"])))
        cheap.add_plain([row["i"]], [row["gold"], row["junk"], row["pr"]["near"], row["pr"]["several"]])
    assert cheap.audit_result() == full.audit_result() and cheap.gate() == full.gate()
    assert (cheap.gold.model(), cheap.wrong.model()) == (full.gold.model(), full.wrong.model())
    assert cheap.warning_models(cheap.audit_result()) == full.warning_models(full.audit_result())
    assert (cheap.checked, cheap.passed, cheap.eligible, cheap.eligible_zero) == (
        full.checked, full.passed, full.eligible, full.eligible_zero)  # fmt: skip

"""Diagnostics for what a tool wrote: TOML, JSONL dataset rows and Python source, each a finding with its place."""

from __future__ import annotations

import json
import re
import tomllib

from pydantic import Field

from flash_mcp.core.findings import Finding

MAX_DIAGNOSTICS = 20
_TOML_POSITION = re.compile(r"\(at line (\d+), column (\d+)\)")
_TOML_END = re.compile(r"\(at end of document\)")


ROW_FIX = "one JSON object per line with `input` (and `output`, `metadata`)"


class Diagnostic(Finding):
    """A finding in the text just written, at its line and column."""

    line: int | None = Field(default=None, description="1-based line, when known")
    column: int | None = Field(default=None, description="1-based column, when known")


def diagnose(path: str, text: str) -> list[Diagnostic]:
    """Check `text` by the kind its file name says; unknown kinds get no diagnostics."""
    if path.endswith(".toml"):
        return toml_diagnostics(text)
    if path.endswith(".jsonl"):
        return jsonl_diagnostics(text)
    if path.endswith(".py"):
        return python_diagnostics(text, path)
    return []


def toml_diagnostics(text: str) -> list[Diagnostic]:
    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        found = _TOML_POSITION.search(message)
        line, column = (int(found.group(1)), int(found.group(2))) if found else _end_of(text)
        clean = _TOML_END.sub("", _TOML_POSITION.sub("", message)).strip()
        return [
            Diagnostic(
                code="toml-syntax", message=f"TOML: {clean}", fix="fix the TOML syntax there", line=line, column=column
            )
        ]
    return []


def _end_of(text: str) -> tuple[int, int]:
    """Line and column just past the last character: where "at end of document" points."""
    lines = text.split("\n")
    return len(lines), len(lines[-1]) + 1


def jsonl_diagnostics(text: str) -> list[Diagnostic]:
    """Every non-blank line must be a JSON object with an `input` key (Flash's row contract)."""
    found: list[Diagnostic] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        problem = _row_problem(line)
        if problem:
            found.append(Diagnostic(code="row-invalid", message=problem, fix=ROW_FIX, line=number))
            if len(found) >= MAX_DIAGNOSTICS:
                found.append(
                    Diagnostic(
                        code="more-rows-invalid", severity="warning", message="more rows have problems; fix these first"
                    )
                )
                break
    return found


def _row_problem(line: str) -> str | None:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        return f"not valid JSON: {exc.msg} (column {exc.colno})"
    if not isinstance(row, dict):
        return f'row is a JSON {type(row).__name__}, not an object like {{"input": ..., "output": ...}}'
    if "input" not in row:
        return "row has no `input` key; every row needs the prompt text in `input`"
    return None


def python_diagnostics(text: str, filename: str) -> list[Diagnostic]:
    try:
        compile(text, filename, "exec", dont_inherit=True)
    except SyntaxError as exc:
        return [
            Diagnostic(
                code="python-syntax",
                message=f"Python syntax: {exc.msg}",
                fix="fix the syntax there",
                line=exc.lineno,
                column=exc.offset,
            )
        ]
    except ValueError as exc:  # e.g. NUL bytes in source
        return [
            Diagnostic(code="python-source", message=f"Python source: {exc}", fix="remove the NUL bytes (binary data)")
        ]
    return []

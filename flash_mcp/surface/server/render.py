"""Result text written for the agent: the structured content, compact and complete, never more.

Every tool result's text block is rendered here, so a tool added anywhere gets it without doing anything.
The shape is YAML-like: `key: value` lines, nested mappings indented, lists of records as `|` tables,
`[x, y]` series as `x y` rows, and multi-line strings (file contents, logs) verbatim between ``` fences
instead of JSON-escaped. Empty values (null, "", [], {}) are left out. Warnings and notes are said once per cause
and server session: later results say how many were given earlier instead of repeating them.
"""

from __future__ import annotations

import json
import re
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from flash_mcp.core.visible import visible_whitespace

Renderer = Callable[[dict[str, Any], set[str]], str]
_RENDERERS: dict[str, Renderer] = {}
_SAID_ONCE_KEYS = ("warnings", "notes", "next")
_EPOCH_FLOOR = 1_000_000_000  # a float `*_at` above this is a Unix time
_INDENT = "  "
_FENCES = re.compile(r"`{3,}")
_INLINE_WIDTH = 160  # a flat record up to this many characters goes on one line as k=v pairs


def renders(tool: str) -> Callable[[Renderer], Renderer]:
    """Register a renderer for one tool's structured content (the generic one serves every other tool)."""

    def decorator(fn: Renderer) -> Renderer:
        _RENDERERS[tool] = fn
        return fn

    return decorator


class SaidOnce:
    """Which warnings each client connection has been told. A legacy connection is known by its handshake; a
    2026-07-28 request carries no session, so those (and stdio, one client per process) share the server's set."""

    _MAX_CONNECTIONS = 64

    def __init__(self) -> None:
        self._by_connection: OrderedDict[int, tuple[Any, set[str]]] = OrderedDict()
        self._server_wide: set[str] = set()

    def scope(self, context: Any) -> set[str]:
        try:
            session = context.request_context.session
            handshake = None if session.protocol_version >= "2026" else session.client_params
        except (AttributeError, ValueError):
            handshake = None
        if handshake is None:
            return self._server_wide
        key = id(handshake)
        if key not in self._by_connection:
            self._by_connection[key] = (handshake, set())  # the reference keeps the id from being reused
            while len(self._by_connection) > self._MAX_CONNECTIONS:
                self._by_connection.popitem(last=False)
        return self._by_connection[key][1]


def result_text(tool: str, content: Any, said: set[str] | None = None) -> str:
    """The text block for `tool`'s structured `content`."""
    said = set() if said is None else said
    if not isinstance(content, dict):
        return render(content)
    content, earlier = _drop_said(content, said)
    renderer = _RENDERERS.get(tool)
    text = renderer(content, said) if renderer is not None else render(content)
    return "\n".join([text, *earlier])


def render(value: Any) -> str:
    if isinstance(value, dict):
        return "\n".join(_mapping(_without_repeats(value), 0)) or "(empty)"
    return "\n".join(_item_lines(None, value, 0)) or "(empty)"


def scalar(value: Any, key: str | None = None) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float) and key and key.endswith("_at") and value > _EPOCH_FLOOR:
        return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, float):
        return f"{value:.6g}" if abs(value) < 1e5 else f"{value:.1f}"
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def table(rows: list[dict[str, Any]], columns: list[str] | None = None) -> list[str]:
    """Records as a header line and one `|`-separated line each; nested values as compact JSON."""
    columns = columns or _columns(rows)
    lines = [" | ".join(columns)]
    lines += [" | ".join(_cell(row.get(column), column) for column in columns) for row in rows]
    return lines


def _drop_said(content: dict[str, Any], said: set[str]) -> tuple[dict[str, Any], list[str]]:
    """`content` without the warnings, notes and hints already said; and a line per key saying how many."""
    content = dict(content)
    earlier_lines = []
    for key in _SAID_ONCE_KEYS:
        items = content.get(key)
        if not isinstance(items, list) or not items:
            continue
        fresh = []
        for item in items:
            cause = json.dumps(item, sort_keys=True, default=str)
            if cause not in said:
                said.add(cause)
                fresh.append(item)
        content[key] = fresh
        if len(items) > len(fresh):
            earlier_lines.append(f"({key}: +{len(items) - len(fresh)} said earlier)")
    return content, earlier_lines


def _empty(value: Any) -> bool:
    if isinstance(value, dict):
        return all(_empty(item) for item in value.values())
    return value is None or value == "" or value == []


def _mapping(mapping: dict[str, Any], depth: int) -> list[str]:
    lines: list[str] = []
    for key, value in mapping.items():
        if not _empty(value) or _is_completion(key, value):
            lines += _item_lines(str(key), value, depth)
    return lines


def _is_completion(key: Any, value: Any) -> bool:
    return isinstance(value, str) and "completion" in str(key)


def _item_lines(key: str | None, value: Any, depth: int) -> list[str]:
    pad = _INDENT * depth
    label = f"{pad}{key}:" if key is not None else pad
    if _is_completion(key, value):
        value = visible_whitespace(value)
    if isinstance(value, str) and "\n" in value:
        fence = "```" + "`" * max((len(run) - 2 for run in _FENCES.findall(value)), default=0)
        return [label.rstrip(), fence, value.rstrip("\n"), fence]  # verbatim: no indent, no escapes
    if isinstance(value, dict):
        if all(_inlinable(v) for v in value.values()):
            inline = ", ".join(
                f"{k}={_inline(v, k)}" for k, v in value.items() if not _empty(v) or _is_completion(k, v)
            )
            if len(inline) <= _INLINE_WIDTH:
                return [_line(label, inline)]
        return ([label] if key is not None else []) + _mapping(value, depth + (key is not None))

    if isinstance(value, list):
        return _list_lines(label, value, pad)
    return [_line(label, scalar(value, key))]


def _without_repeats(mapping: dict[str, Any]) -> dict[str, Any]:
    """Nested records drop the fields their parent already states with the same value."""
    result = {}
    for key, value in mapping.items():
        if isinstance(value, dict):
            value = {k: v for k, v in value.items() if not (k in mapping and mapping[k] == v)}
        result[key] = value
    return result


def _line(label: str, rest: str) -> str:
    return f"{label} {rest}".rstrip() if label.strip() else f"{label}{rest}".rstrip()


def _list_lines(label: str, items: list[Any], pad: str) -> list[str]:
    if all(not isinstance(item, dict | list) and not _multiline(item) for item in items):
        if any(isinstance(item, str) and (len(item) > 60 or ", " in item) for item in items):
            return [_line(label, f"({len(items)})"), *(f"{pad}- {item}" for item in items)]  # sentences, one a line
        return [_line(label, f"{', '.join(scalar(item) for item in items)}")]
    if all(isinstance(item, list) and all(not isinstance(x, dict | list) for x in item) for item in items):
        return [_line(label, f"({len(items)})"), *(f"{pad}{_INDENT}{' '.join(map(scalar, item))}" for item in items)]
    if all(isinstance(item, dict) for item in items) and _flat_enough(items):
        return [_line(label, f"({len(items)})"), *(f"{pad}{_INDENT}{line}" for line in table(items))]
    lines = [_line(label, f"({len(items)})")]
    for item in items:
        sub = _item_lines(None, item, 0)
        lines += [f"{pad}- {sub[0]}", *(f"{pad}  {line}" for line in sub[1:])]
    return lines


def _flat_enough(rows: list[dict[str, Any]]) -> bool:
    """A table only when no cell would hold multi-line text."""
    return all(not (isinstance(v, str) and "\n" in v) for row in rows for v in row.values())


def _columns(rows: list[dict[str, Any]]) -> list[str]:
    """Every field some row fills; a column that is false or empty in every row is left out."""
    columns: list[str] = []
    for row in rows:
        columns += [
            key for key, value in row.items()
            if key not in columns and (_is_completion(key, value) or (not _empty(value) and value is not False))
        ]  # fmt: skip
    return columns


def _inlinable(value: Any) -> bool:
    """A scalar, or a short list of scalars: fits a `k=v` pair."""
    if isinstance(value, list):
        return len(value) <= 8 and all(not isinstance(item, dict | list) and not _multiline(item) for item in value)
    return not isinstance(value, dict) and not _multiline(value)


def _inline(value: Any, key: str) -> str:
    if _is_completion(key, value):
        return visible_whitespace(value)
    if isinstance(value, list):
        return "[" + ", ".join(scalar(item) for item in value) + "]"
    return scalar(value, key)


def _multiline(value: Any) -> bool:
    return isinstance(value, str) and "\n" in value


def _cell(value: Any, column: str) -> str:
    if _is_completion(column, value):
        value = visible_whitespace(value)
    if isinstance(value, list) and all(not isinstance(item, dict | list) for item in value):
        return ", ".join(scalar(item) for item in value)
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False) if value else ""
    return "" if value is None else scalar(value, column).replace("|", "\\|").replace("\n", " / ")

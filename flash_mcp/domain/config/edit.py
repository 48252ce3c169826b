"""Comment-preserving edits of a config file with tomlkit: only the named keys change."""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING, Any

from flash_mcp.core.errors import UserError

if TYPE_CHECKING:
    from tomlkit.toml_document import TOMLDocument

# tomlkit is imported where an edit happens: the server's start path (tools/list) never needs it.


def apply_edits(text: str, set_values: dict[str, Any], unset: list[str]) -> str:
    """Return `text` with dotted keys set and removed; every other line is kept as it was."""
    import tomlkit

    document = tomlkit.parse(text)
    for key, value in set_values.items():
        parent, leaf = _parent(document, key, create=True)
        if parent is document and leaf not in document and not isinstance(value, dict):
            _insert_top_level(document, leaf, value)
        else:
            parent[leaf] = value
    for key in unset:
        parent, leaf = _parent(document, key, create=False)
        if parent is None or leaf not in parent:
            raise UserError(f"cannot unset {key!r}: it is not in the file")
        del parent[leaf]
    return tomlkit.dumps(document)


def _insert_top_level(document: TOMLDocument, key: str, value: Any) -> None:
    """A new top-level scalar goes after the last one, not after the comments heading a table."""
    from tomlkit.items import AoT, Table

    scalars = [k for k, item in document.body if k is not None and not isinstance(item, (Table, AoT))]
    if scalars:
        document._insert_after(scalars[-1], key, value)
    else:
        document._insert_at(0, key, value)


def _parent(document: TOMLDocument, key: str, *, create: bool) -> tuple[Any, str]:
    import tomlkit
    from tomlkit.items import AoT

    parts = [part.strip() for part in key.split(".")]
    if not all(parts):
        raise UserError(f"{key!r} is not a dotted key like 'train.epochs'")
    node: Any = document
    for depth, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            if not create:
                return None, parts[-1]
            child = tomlkit.table() if depth == 0 else tomlkit.inline_table()
            node[part] = child
            child = node[part]
        if isinstance(child, AoT) or not hasattr(child, "get"):
            where = ".".join(parts[: depth + 1])
            raise UserError(f"cannot edit {key!r}: {where} is a value, not a table")
        node = child
    return node, parts[-1]


def unified_diff(before: str, after: str, name: str) -> str:
    lines = difflib.unified_diff(
        before.splitlines(keepends=True), after.splitlines(keepends=True), f"a/{name}", f"b/{name}"
    )
    return "".join(lines)

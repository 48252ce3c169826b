"""What `tools/list` sends: each tool's schemas and annotations in fewer characters, with the same constraints
for the arguments an agent sends and field names for the results it reads."""

from __future__ import annotations

import json
from typing import Any

from mcp.types import Tool as MCPTool
from mcp.types import ToolAnnotations

# Hints whose absence reads as the cautious side by the spec and by a client that ignores defaults alike.
_CAUTIOUS_WHEN_ABSENT = {"read_only_hint": False, "idempotent_hint": False}


def tool_for_agents(tool: MCPTool) -> MCPTool:
    """The tool as listed: compact input schema, field-naming output schema, hints that say something, and the
    description on one line."""
    return tool.model_copy(
        update={
            "input_schema": input_schema_for_agents(tool.input_schema),
            "output_schema": shallow_output_schema(tool.output_schema) if tool.output_schema else None,
            "annotations": _annotations_for_agents(tool.annotations),
            "description": " ".join((tool.description or "").split()) or None,
        }
    )


def compact_schema(schema: Any) -> Any:
    """The same constraints in fewer tokens: generated `title`s dropped, `anyOf: [{type: T}, {type: null}]` as
    `type: [T, "null"]`, `additionalProperties: true` (the default) and a `type` its values imply dropped.
    Property names and descriptions are kept."""
    if isinstance(schema, list):
        return [compact_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    compact: dict[str, Any] = {}
    for key, value in schema.items():
        if key in ("properties", "$defs", "patternProperties") and isinstance(value, dict):
            compact[key] = {name: compact_schema(sub) for name, sub in value.items()}
        elif (key == "title" and isinstance(value, str)) or (key == "additionalProperties" and value is True):
            continue
        else:
            compact[key] = compact_schema(value)
    return _type_implied_by_values(_nullable_as_type_list(compact))


def _type_implied_by_values(schema: dict[str, Any]) -> dict[str, Any]:
    """`type: string` beside an `enum` or `const` of strings says nothing more."""
    values = schema.get("enum", [schema["const"]] if "const" in schema else None)
    if schema.get("type") != "string" or not values or not all(isinstance(value, str) for value in values):
        return schema
    return {key: value for key, value in schema.items() if key != "type"}


def input_schema_for_agents(schema: dict[str, Any]) -> dict[str, Any]:
    """`compact_schema`, and an optional argument whose default is null, `{}` or `[]` shown
    without that default (and without its null branch): leaving it out means the same, and the server's own
    model still accepts what it accepted. A `$defs` entry used once is written in place."""
    return _optional_without_null(_defs_used_once_inlined(compact_schema(schema)))


def _defs_used_once_inlined(schema: dict[str, Any]) -> dict[str, Any]:
    defs = schema.get("$defs", {})
    text = json.dumps(schema)
    once = {
        name: sub
        for name, sub in defs.items()
        if text.count(f'"#/$defs/{name}"') == 1 and "$ref" not in json.dumps(sub)
    }
    if not once:
        return schema

    def inline(node: Any) -> Any:
        if isinstance(node, list):
            return [inline(item) for item in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref", "")
        if ref.startswith("#/$defs/") and ref[len("#/$defs/") :] in once:
            return {**once[ref[len("#/$defs/") :]], **{k: v for k, v in node.items() if k != "$ref"}}
        return {key: inline(value) for key, value in node.items()}

    rest = {name: sub for name, sub in defs.items() if name not in once}
    inlined = inline({key: value for key, value in schema.items() if key != "$defs"})
    return {**inlined, "$defs": rest} if rest else inlined


def _optional_without_null(schema: Any) -> Any:
    if isinstance(schema, list):
        return [_optional_without_null(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    lean = {key: _optional_without_null(value) for key, value in schema.items() if key != "properties"}
    if isinstance(schema.get("properties"), dict):
        required = set(schema.get("required", []))
        lean["properties"] = {
            name: _optional_without_null(sub if name in required else _without_empty_default(sub))
            for name, sub in schema["properties"].items()
        }
    return lean


def _without_empty_default(schema: Any) -> Any:
    if not isinstance(schema, dict) or "default" not in schema or schema["default"] not in (None, {}, []):
        return schema
    lean = {key: value for key, value in schema.items() if key != "default"}
    kinds = lean.get("type")
    if isinstance(kinds, list) and "null" in kinds:
        rest = [kind for kind in kinds if kind != "null"]
        lean["type"] = rest[0] if len(rest) == 1 else rest
    options = lean.get("anyOf")
    if isinstance(options, list) and {"type": "null"} in options:
        rest = [option for option in options if option != {"type": "null"}]
        del lean["anyOf"]
        lean = {**rest[0], **lean} if len(rest) == 1 else {**lean, "anyOf": rest}
    return lean


def shallow_output_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """An output schema that names the result's top-level fields, each open (`{}`) but for a closed set of
    values (`enum`): the result itself shows each field's type and shape, and the agent reads the names to plan.
    Less strict than the model's schema, never contradicting it, so structured results still validate."""
    fields = schema.get("properties", {})
    return {"type": "object", "properties": {name: _enum_only(sub) for name, sub in fields.items()}}


def _enum_only(schema: Any) -> dict[str, Any]:
    if isinstance(schema, dict) and isinstance(schema.get("enum"), list):
        return {"enum": schema["enum"]}
    return {}


def _annotations_for_agents(annotations: ToolAnnotations | None) -> ToolAnnotations | None:
    """Every hint a client could read wrongly if absent: `readOnlyHint`/`idempotentHint` only when true,
    `destructiveHint` and `openWorldHint` always, but not on a read-only tool, where the spec makes
    destructive and idempotent moot. The title is the tool's own `title`."""
    if annotations is None:
        return None
    moot = {"title", "destructive_hint", "idempotent_hint"} if annotations.read_only_hint else {"title"}
    kept = {
        hint: value
        for hint, value in annotations.model_dump(exclude=moot).items()
        if value is not None and value != _CAUTIOUS_WHEN_ABSENT.get(hint)
    }
    return ToolAnnotations(**kept)


def _nullable_as_type_list(schema: dict[str, Any]) -> dict[str, Any]:
    options = schema.get("anyOf")
    if not isinstance(options, list) or len(options) != 2 or {"type": "null"} not in options:
        return schema
    other = next(option for option in options if option != {"type": "null"})
    if set(other) - {"type", "items", "additionalProperties", "minimum", "maximum", "pattern", "enum"}:
        return schema
    if not isinstance(other.get("type"), str) or "enum" in other:
        return schema
    merged = {key: value for key, value in schema.items() if key != "anyOf"}
    return {**other, **merged, "type": [other["type"], "null"]}

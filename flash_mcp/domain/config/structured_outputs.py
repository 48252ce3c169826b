"""`[train] structured_outputs`: Flash 1.3.28's accepted forms and canonical JSON.

Mirrors flash/schema/fields.py (`_so_canonical`) and flash/content/structured_options.py.
"""

from __future__ import annotations

import json
from typing import Any

_SO_CONSTRAINTS = ("json", "regex", "choice", "json_object")
_SO_OPTIONS = ("disable_any_whitespace", "disable_additional_properties", "whitespace_pattern")
_SO_ALIASES = {"json_schema": "json", "schema": "json", "choices": "choice"}
_SO_COMPOSED = ("allOf", "anyOf", "oneOf", "not", "if", "then", "else", "dependentSchemas", "dependencies")
_SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas", "dependencies")
_SCHEMA_VALUES = (
    "items", "additionalItems", "additionalProperties", "unevaluatedItems", "unevaluatedProperties", "contains",
    "propertyNames", "not", "if", "then", "else",
)  # fmt: skip
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
_OBJECT_KEYS = (
    "properties", "patternProperties", "additionalProperties", "unevaluatedProperties", "required", "minProperties",
    "maxProperties", "propertyNames", "dependentRequired", "dependentSchemas", "dependencies",
)  # fmt: skip


def structured_problem(value: Any) -> str | None:
    """Why a structured_outputs value is rejected, in Flash's words; None when accepted."""
    try:
        canonical_structured_outputs(value)
    except ValueError as exc:
        return str(exc)
    return None


def canonical_structured_outputs(value: Any) -> dict[str, Any] | None:
    if value is None or value is False:
        return None
    if isinstance(value, str):
        text = value.strip()
        if not text or text.lower() == "none":
            return None
        if text.lower() in ("json", "json_object"):
            return {"json_object": True}
        try:
            parsed = json.loads(text)
        except ValueError as exc:
            raise ValueError(
                'string form must be JSON (a schema/constraint object) or the "json_object" '
                f"shorthand; got unparseable {text[:80]!r} ({exc})"
            ) from exc
        if not isinstance(parsed, dict):
            raise ValueError("JSON string form must decode to an object")
        return canonical_structured_outputs(parsed)
    if not isinstance(value, dict):
        raise ValueError("must be a table, a JSON string, or false")
    removed = sorted(k for k in value if k in ("grammar", "structural_tag"))
    if removed:
        raise ValueError(
            f"{', '.join(removed)} constraint(s) are not supported; use one of {', '.join(_SO_CONSTRAINTS)}"
        )
    folded = {_SO_ALIASES.get(k, k): v for k, v in value.items()}
    if len(folded) < len(value):
        raise ValueError(f"sets the same constraint twice via aliases: {sorted(value)}")
    constraints = [k for k in _SO_CONSTRAINTS if folded.get(k) is not None]
    if not constraints:
        stray = sorted(k for k in folded if k in _SO_OPTIONS)
        if stray:
            raise ValueError(
                f"sets backend option(s) {', '.join(stray)} without a constraint; options only apply alongside "
                f"one of {', '.join(_SO_CONSTRAINTS)}"
            )
        return {"json": value}
    unknown = sorted(set(folded) - set(_SO_CONSTRAINTS) - set(_SO_OPTIONS))
    if unknown:
        raise ValueError(
            f"unknown key(s): {', '.join(unknown)} (constraints: {', '.join(_SO_CONSTRAINTS)}; options: "
            f"{', '.join(_SO_OPTIONS)}; aliases: {', '.join(sorted(_SO_ALIASES))})"
        )
    if len(constraints) > 1:
        raise ValueError(f"must set exactly ONE constraint, got: {', '.join(constraints)}")
    canonical = _structured_constraint(constraints[0], folded[constraints[0]])
    for option in _SO_OPTIONS:
        if folded.get(option) is None:
            continue
        if option == "whitespace_pattern":
            if not isinstance(folded[option], str) or not folded[option]:
                raise ValueError("whitespace_pattern must be a non-empty string")
        elif not isinstance(folded[option], bool):
            raise ValueError(f"{option} must be a boolean")
        canonical[option] = folded[option]
    _structured_options(canonical)
    return canonical


def _structured_constraint(kind: str, value: Any) -> dict[str, Any]:
    if kind == "json":
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError as exc:
                raise ValueError(f"json schema string is not valid JSON: {exc}") from exc
        if not isinstance(value, dict):
            raise ValueError("json must be a schema table or a JSON-object string")
        return {"json": value}
    if kind == "choice":
        if not isinstance(value, (list, tuple)) or not value or not all(isinstance(c, str) and c for c in value):
            raise ValueError("choice must be a non-empty list of non-empty strings")
        return {"choice": list(value)}
    if kind == "json_object":
        if value is not True:
            raise ValueError("json_object must be true (omit the key for unconstrained output)")
        return {"json_object": True}
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{kind} must be a non-empty string")
    return {kind: value}


def _structured_options(spec: dict[str, Any]) -> None:
    if spec.get("whitespace_pattern") is not None:
        raise ValueError(
            "whitespace_pattern is not supported by the managed decoding backend; "
            "use disable_any_whitespace=true for compact JSON"
        )
    json_options = ("disable_any_whitespace", "disable_additional_properties")
    if not ("json" in spec or spec.get("json_object")) and any(spec.get(k) for k in json_options):
        raise ValueError("structured output whitespace/property options require a JSON constraint")
    if spec.get("disable_additional_properties"):
        for node in _schema_nodes(spec.get("json", {})):
            unsupported = next((k for k in _SO_COMPOSED if k in node), None)
            if unsupported is None and _is_object_schema(node):
                unsupported = next((k for k in ("$ref", "$dynamicRef") if k in node), None)
            if unsupported is not None:
                raise ValueError(
                    f"disable_additional_properties cannot safely rewrite schemas containing {unsupported}; set "
                    "additionalProperties explicitly in the schema and omit disable_additional_properties"
                )


def _schema_nodes(schema: Any):
    """Walk schema vocabulary only (never examples, defaults or property names), as Flash does."""
    if not isinstance(schema, dict):
        return
    yield schema
    for key in _SCHEMA_MAPS:
        children = schema.get(key)
        if isinstance(children, dict):
            for child in children.values():
                yield from _schema_nodes(child)
    for key in _SCHEMA_VALUES:
        child = schema.get(key)
        for item in child if isinstance(child, list) else [child]:
            yield from _schema_nodes(item)
    for key in _SCHEMA_LISTS:
        children = schema.get(key)
        if isinstance(children, list):
            for child in children:
                yield from _schema_nodes(child)


def _is_object_schema(node: dict[str, Any]) -> bool:
    kind = node.get("type")
    return kind == "object" or (isinstance(kind, list) and "object" in kind) or any(k in node for k in _OBJECT_KEYS)

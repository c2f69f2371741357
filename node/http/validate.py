"""`check`: the small validator of the API's JSON bodies against the schemas of
node/http/schemas.py (the subset of JSON Schema they use), so what the OpenAPI description
promises is what is checked."""

from __future__ import annotations

import re
from typing import Any

from node.http.common import HttpError
from node.http.schemas import SCHEMAS

# JSON nesting the validator follows before refusing a body.
MAX_CHECK_DEPTH = 16

_TYPES: dict[str, type | tuple[type, ...]] = {
    "object": dict, "array": list, "string": str, "integer": int, "boolean": bool,
}


def check(schema: dict[str, Any], value: Any, where: str = "body", depth: int = 0) -> None:
    """Raise HttpError(400) unless `value` fits `schema` (the subset of JSON Schema above)."""
    if "$ref" in schema:
        schema = SCHEMAS[schema["$ref"].rsplit("/", 1)[1]]
    if depth > MAX_CHECK_DEPTH:
        raise HttpError(400, "bad_request", f"{where} is nested too deeply")
    if value is None:
        if schema.get("nullable"):
            return
        raise HttpError(400, "bad_request", f"{where} must not be null")
    for sub in schema.get("allOf", ()):
        check(sub, value, where, depth + 1)
    if "oneOf" in schema:
        _check_one_of(schema["oneOf"], value, where, depth)
    kind = schema.get("type")
    wanted = _TYPES.get(kind or "")
    if wanted is not None and (not isinstance(value, wanted) or
                               (kind == "integer" and isinstance(value, bool))):  # fmt: skip
        raise HttpError(400, "bad_request", f"{where} must be of type {kind}")
    if "enum" in schema and value not in schema["enum"]:
        raise HttpError(400, "bad_request", f"{where} must be one of {schema['enum']}")
    if isinstance(value, str):
        _check_string(schema, value, where)
    elif isinstance(value, list):
        if len(value) > schema.get("maxItems", len(value)):
            raise HttpError(400, "bad_request", f"{where} has more than {schema['maxItems']} items")
        if len(value) < schema.get("minItems", 0):
            raise HttpError(400, "bad_request", f"{where} needs {schema['minItems']}+ items")
        for i, item in enumerate(value):
            check(schema.get("items", {}), item, f"{where}[{i}]", depth + 1)
    elif isinstance(value, dict):
        props = schema.get("properties", {})
        if len(value) < schema.get("minProperties", 0):
            raise HttpError(400, "bad_request", f"{where} needs {schema['minProperties']}+ fields")
        for name in schema.get("required", []):
            if name not in value:
                raise HttpError(400, "bad_request", f"{where} needs {name!r}")
        for name, item in value.items():
            if name in props:
                check(props[name], item, f"{where}.{name}", depth + 1)
            elif schema.get("additionalProperties") is False:
                raise HttpError(400, "bad_request", f"{where} has no field {name!r}")


def _check_one_of(alternatives: list[dict[str, Any]], value: Any, where: str,
                  depth: int) -> None:  # fmt: skip
    """Exactly one alternative fits (ours differ in a one-value enum, such as `act`); when
    none does, the error of the alternative the value names, so the message is about it."""
    failed: list[tuple[dict[str, Any], HttpError]] = []
    for alt in alternatives:
        try:
            check(alt, value, where, depth + 1)
        except HttpError as exc:
            failed.append((alt, exc))
    fits = len(alternatives) - len(failed)
    if fits == 1:
        return
    if fits > 1:
        raise HttpError(400, "bad_request", f"{where} fits several alternatives")
    tags = [(k, p["enum"][0]) for alt in alternatives
            for k, p in alt.get("properties", {}).items() if len(p.get("enum", ())) == 1]
    if not isinstance(value, dict) or not tags:
        raise failed[0][1]
    for alt, err in failed:
        props = alt.get("properties", {})
        if any(value.get(k) == v for k, v in tags if k in props and props[k]["enum"] == [v]):
            raise err
    raise HttpError(400, "bad_request", f"{where}.{tags[0][0]} must be one of "
                    f"{[v for _, v in tags]}")  # fmt: skip


def _check_string(schema: dict[str, Any], value: str, where: str) -> None:
    if len(value) > schema.get("maxLength", len(value)):
        raise HttpError(400, "bad_request", f"{where} is over {schema['maxLength']} characters")
    if len(value) < schema.get("minLength", 0):
        raise HttpError(400, "bad_request", f"{where} is under {schema['minLength']} characters")
    pattern = schema.get("pattern")
    if pattern is not None and not re.search(pattern, value):
        raise HttpError(400, "bad_request", f"{where} is malformed")

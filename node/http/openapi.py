"""The OpenAPI 3 description, generated from the route table and the body schemas (so a
route cannot exist undescribed); tests/http checks it against the router and fuzzes the
running server with it."""

from __future__ import annotations

import re
from typing import Any

from node.http.common import JSON, Param, Route
from node.http.schemas import SCHEMAS

API_VERSION = "1.0.0"
_REASONS = {
    200: "OK", 201: "Created", 304: "Not modified (the ETag matched)", 400: "Bad request",
    401: "Missing or wrong bearer token",
    403: "Forbidden (not an author; not a steward or not a member of the lab)", 404: "Not found",
    409: "Conflict (no member identity yet; an edit that changes nothing; a pledge on a "
         "need the project does not list)",
    413: "Request body too large",
    415: "Unsupported media type", 422: "Object rejected by validation",
}  # fmt: skip


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _param(p: Param) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": p.type}
    if p.minimum is not None:
        schema["minimum"] = p.minimum
    if p.maximum is not None:
        schema["maximum"] = p.maximum
    if p.enum:
        schema["enum"] = list(p.enum)
    if p.pattern is not None:
        schema["pattern"] = f"^{p.pattern}$"
    if p.max_length is not None:
        schema["maxLength"] = p.max_length
    if p.type == "string" and not p.enum:
        schema["minLength"] = 1  # an empty value is refused (Param.parse)
    if p.default is not None:
        schema["default"] = p.default
    out = {"name": p.name, "in": p.where, "required": p.required or p.where == "path",
           "schema": schema}  # fmt: skip
    if p.description:
        out["description"] = p.description
    return out


def _error(status: int) -> dict[str, Any]:
    return {"description": _REASONS.get(status, "Error"),
            "content": {JSON: {"schema": _ref("Error")}}}  # fmt: skip


def _operation(route: Route) -> dict[str, Any]:
    if route.response:
        ok: dict[str, Any] = {"content": {route.content_type: {"schema": _ref(route.response)}}}
    else:
        ok = {"content": {"application/atom+xml": {"schema": {"type": "string"}}}}
    # Every GET answer has an ETag, and If-None-Match may get a 304 (app.py), cached or not;
    # writes say where the object is.
    if route.method == "GET":
        headers = {"ETag": {"description": "strong validator (a hash of the body)",
                            "required": True, "schema": {"type": "string"}}}
    else:
        headers = {"Location": {"description": "the object's URL", "required": True,
                                "schema": {"type": "string"}}}
    responses: dict[str, Any] = {str(status): {"description": _REASONS[status],
                                               "headers": headers} | ok
                                 for status in (route.status, *route.also)}  # fmt: skip
    if route.method == "GET":
        responses["304"] = {"description": _REASONS[304], "headers": headers}
    errors = set(route.errors)
    if route.body is not None:  # any body may be too large or of another media type
        errors |= {413, 415}
    for status in sorted(errors):
        responses[str(status)] = _error(status)
    responses["default"] = {"description": "Error", "content": {JSON: {"schema": _ref("Error")}}}
    op: dict[str, Any] = {
        "operationId": route.operation_id,
        "summary": route.summary,
        "responses": responses,
    }
    if route.params:
        op["parameters"] = [_param(p) for p in route.params]
    if route.body is not None:
        content: dict[str, Any] = {JSON: {"schema": _ref(route.body)}}
        if route.raw_body:
            content["application/octet-stream"] = {"schema": {  # an empty body is a 400
                "type": "string", "format": "binary", "minLength": 1}}  # fmt: skip
        op["requestBody"] = {"required": True, "content": content}
    if route.auth:
        op["security"] = [{"bearer": []}]
    return op


def build_spec(routes: tuple[Route, ...], base_url: str) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.template, {})[route.method.lower()] = _operation(route)
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Percolab node API",
            "version": API_VERSION,
            "description": "Read and write a Percolab node's objects over loopback HTTP. "
            "Every object carries `raw`, its signed bytes in base64. See docs/http.md.",
        },
        "servers": [{"url": base_url}],
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "the token in <data dir>/http.token"}},
        },
    }


def spec_operations(spec: dict[str, Any]) -> set[tuple[str, str]]:
    """(METHOD, path template) of every operation a description lists."""
    return {
        (method.upper(), path)
        for path, item in spec["paths"].items()
        for method in item
        if re.fullmatch(r"get|put|post|delete|patch|head|options", method)
    }

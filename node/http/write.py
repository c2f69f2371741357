"""Write API handlers (POST /api/v1/...). Objects made here are signed by the node's member
through `Service` (which also has them gossiped); `submit_object` takes objects an external
signer made and runs them through the one ingest pipeline, then gossips the new ones."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from node.http import data
from node.http.common import Ctx, HttpError, json_response
from node.http.server import Response
from node.ingest.pipeline import IngestResult, now_ms
from node.service.queries import NotFound
from protocols import errors, validity
from protocols.objects import object_id


def _create(ctx: Ctx, method: str, params: dict[str, Any]) -> dict[str, Any]:
    oid = ctx.call(method, params)
    return data.object_view(ctx.node.service, oid)


async def _created(ctx: Ctx, method: str, params: dict[str, Any]) -> Response:
    view = await ctx.run(_create, ctx, method, params)
    location = f"/api/v1/objects/{view['id']}"
    return json_response({"id": view["id"], "object": view}, 201, [("location", location)])


async def create_project(ctx: Ctx) -> Response:
    return await _created(ctx, "post", dict(ctx.body))


async def create_comment(ctx: Ctx) -> Response:
    return await _created(ctx, "comment", dict(ctx.body))


async def create_tag(ctx: Ctx) -> Response:
    return await _created(ctx, "tag", dict(ctx.body))


async def create_revision(ctx: Ctx) -> Response:
    params = dict(ctx.body)
    params["id"] = params.pop("target")
    return await _created(ctx, "edit", params)


async def create_pledge(ctx: Ctx) -> Response:
    params = dict(ctx.body)
    params["id"] = params.pop("target")
    return await _created(ctx, "pledge", params)


async def create_fork(ctx: Ctx) -> Response:
    params = dict(ctx.body)
    params["id"] = params.pop("target")
    return await _created(ctx, "fork", params)


async def create_retraction(ctx: Ctx) -> Response:
    return await _created(ctx, "retract", {"id": ctx.body["target"]})


def _raw_of(ctx: Ctx) -> bytes:
    if isinstance(ctx.body, bytes):
        return ctx.body
    try:
        return base64.b64decode(ctx.body["raw"], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise HttpError(400, "bad_request", f"raw is not valid base64: {exc}") from exc


def _ingest(ctx: Ctx, raw: bytes) -> tuple[IngestResult, dict[str, Any] | None]:
    """Store an object signed elsewhere. Stricter than the network (docs/protocol.md §4): a
    member's own client gets a 422 for an object its node would hide or defer, where a peer's
    copy would be stored; objects of a kind this node does not know are taken (a newer client)."""
    if not ctx.node.store.has(object_id(raw)):
        try:
            verdict = validity.check(raw, now_ms())
        except errors.ObjectError as exc:
            raise HttpError(422, "invalid_object", str(exc), exc.code) from exc
        if verdict.layer is errors.Layer.HIDE:
            raise HttpError(422, "invalid_object", verdict.reason, verdict.code)
    result = ctx.node.ingest.ingest([raw])
    if result.rejected:
        return result, None
    if result.unindexed:
        return result, None
    try:
        return result, data.object_view(ctx.node.service, object_id(raw).hex())
    except NotFound:  # known here, and since withdrawn by its author
        return result, None


async def submit_object(ctx: Ctx) -> Response:
    raw = _raw_of(ctx)
    if not raw:
        raise HttpError(400, "bad_request", "no object bytes in the request")
    result, view = await ctx.run(_ingest, ctx, raw)
    if result.rejected:
        rej = result.rejected[0]
        raise HttpError(422, "invalid_object", rej.reason, rej.code)
    for stored in result.stored:
        ctx.node.publish_object(stored.obj)
    oid = object_id(raw).hex()
    body = {
        "id": oid, "object": view, "known": not result.stored,
        "unindexed": result.unindexed[0].code if result.unindexed else None,
    }  # fmt: skip
    status = 201 if result.stored else 200
    return json_response(body, status, [("location", f"/api/v1/objects/{oid}")])

"""Read API handlers (GET /api/v1/...): JSON views of docs/rpc.md, each object with `raw`."""

from __future__ import annotations

from typing import Any

from node.http import data
from node.http.common import Ctx, json_response
from node.http.server import Response
from protocols.fields import normalize_label


def _with_raw(ctx: Ctx, method: str, params: dict[str, Any]) -> Any:
    return data.attach_raw(ctx.node.store, ctx.call(method, params))


def _page_params(ctx: Ctx) -> dict[str, Any]:
    return {k: ctx.params[k] for k in ("limit", "cursor", "order") if ctx.params.get(k)}


async def list_labs(ctx: Ctx) -> Response:
    return json_response({"items": await ctx.run(_with_raw, ctx, "lab_list", {})})


async def get_lab(ctx: Ctx) -> Response:
    return json_response(await ctx.run(data.lab_view, ctx.node.service, ctx.params["lab"]))


async def lab_projects(ctx: Ctx) -> Response:
    params = _page_params(ctx) | {"lab": ctx.params["lab"]}
    return json_response(await ctx.run(_with_raw, ctx, "projects", params))


async def list_projects(ctx: Ctx) -> Response:
    params = _page_params(ctx)
    if ctx.params.get("tag"):
        params["tag"] = normalize_label(ctx.params["tag"])
    if ctx.params.get("author"):
        params["author"] = ctx.params["author"]
    return json_response(await ctx.run(_with_raw, ctx, "projects", params))


async def get_project(ctx: Ctx) -> Response:
    result = await ctx.run(_with_raw, ctx, "project", {"id": ctx.params["id"]})
    return json_response(result)


async def get_object(ctx: Ctx) -> Response:
    return json_response(await ctx.run(data.object_view, ctx.node.service, ctx.params["id"]))


async def list_tags(ctx: Ctx) -> Response:
    items = await ctx.run(ctx.call, "tags", {"limit": ctx.params.get("limit") or 100})
    return json_response({"items": items})


async def tagged_objects(ctx: Ctx) -> Response:
    label = normalize_label(ctx.params["label"])
    page = await ctx.run(
        data.by_label, ctx.node.service, label, ctx.params.get("limit") or 50,
        ctx.params.get("cursor"),
    )  # fmt: skip
    return json_response(page)


async def author_objects(ctx: Ctx) -> Response:
    kind = ctx.params.get("kind")
    page = await ctx.run(
        data.by_author, ctx.node.service, bytes.fromhex(ctx.params["author"]),
        ctx.params.get("limit") or 50, ctx.params.get("cursor"),
        frozenset([kind]) if kind else None,
    )  # fmt: skip
    return json_response(page)


async def search(ctx: Ctx) -> Response:
    params = {"query": ctx.params["q"], "limit": ctx.params.get("limit") or 50}
    return json_response({"items": await ctx.run(_with_raw, ctx, "search", params)})


async def node_status(ctx: Ctx) -> Response:
    return json_response(await ctx.node.handle_rpc("status", {}))


async def node_peers(ctx: Ctx) -> Response:
    return json_response({"items": await ctx.node.handle_rpc("peers", {})})

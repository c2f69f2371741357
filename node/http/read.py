"""Read API handlers (GET /api/v1/...): JSON views of docs/rpc.md, each object with `raw`.

Each builds its body (store reads, views, JSON) in one worker thread (`Ctx.render`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from node.http import data
from node.http.common import Ctx, json_response
from node.http.server import Response
from node.service.queries import DEFAULT_PAGE
from protocols.fields import normalize_label


def _json(fn: Callable[..., Any], *args: Any) -> Response:
    return json_response(fn(*args))


def _items(fn: Callable[..., Any], *args: Any) -> Response:
    return json_response({"items": fn(*args)})


def _with_raw(ctx: Ctx, method: str, params: dict[str, Any]) -> Any:
    return data.attach_raw(ctx.node.store, ctx.call(method, params))


def _page_params(ctx: Ctx) -> dict[str, Any]:
    return {k: ctx.params[k] for k in ("limit", "cursor", "order") if ctx.params.get(k)}


def _hidden(ctx: Ctx) -> dict[str, Any]:
    """`?show_hidden=1`: also hidden objects and others' queued ones (docs/governance.md)."""
    return {"show_hidden": True} if ctx.params.get("show_hidden") == "1" else {}


async def list_labs(ctx: Ctx) -> Response:
    return await ctx.render(_items, _with_raw, ctx, "lab_list", {})


async def get_lab(ctx: Ctx) -> Response:
    return await ctx.render(_json, data.lab_view, ctx.node.service, ctx.params["lab"])


async def lab_projects(ctx: Ctx) -> Response:
    # The hot read (first pages of labs): one read for the lab and its page (data.py).
    p = ctx.params
    return await ctx.render(
        _json, data.lab_projects, ctx.node.service, p["lab"], p.get("limit") or DEFAULT_PAGE,
        p.get("cursor"), p.get("order") or "newest", bool(_hidden(ctx)),
    )  # fmt: skip


async def list_projects(ctx: Ctx) -> Response:
    params = _page_params(ctx) | _hidden(ctx)
    if ctx.params.get("tag"):
        params["tag"] = normalize_label(ctx.params["tag"])
    if ctx.params.get("author"):
        params["author"] = ctx.params["author"]
    return await ctx.render(_json, _with_raw, ctx, "projects", params)


async def get_project(ctx: Ctx) -> Response:
    params = {"id": ctx.params["id"], **_hidden(ctx)}
    return await ctx.render(_json, _with_raw, ctx, "project", params)


async def get_object(ctx: Ctx) -> Response:
    return await ctx.render(_json, data.object_view, ctx.node.service, ctx.params["id"])


async def project_history(ctx: Ctx) -> Response:
    params = {"id": ctx.params["id"], "limit": ctx.params.get("limit") or 50}
    if ctx.params.get("before") is not None:
        params["before"] = ctx.params["before"]
    return await ctx.render(_json, ctx.call, "history", params)


async def project_pledges(ctx: Ctx) -> Response:
    params = {"id": ctx.params["id"], "limit": ctx.params.get("limit") or 50}
    return await ctx.render(_items, _with_raw, ctx, "pledges", params)


async def list_tags(ctx: Ctx) -> Response:
    limit = ctx.params.get("limit") or 100
    return await ctx.render(_items, ctx.call, "tags", {"limit": limit})


async def tagged_objects(ctx: Ctx) -> Response:
    label = normalize_label(ctx.params["label"])
    return await ctx.render(
        _json, data.by_label, ctx.node.service, label, ctx.params.get("limit") or 50,
        ctx.params.get("cursor"), True, bool(_hidden(ctx)),
    )  # fmt: skip


async def author_objects(ctx: Ctx) -> Response:
    kind = ctx.params.get("kind")
    return await ctx.render(
        _json, data.by_author, ctx.node.service, bytes.fromhex(ctx.params["author"]),
        ctx.params.get("limit") or 50, ctx.params.get("cursor"),
        frozenset([kind]) if kind else None, True, bool(_hidden(ctx)),
    )  # fmt: skip


async def get_member(ctx: Ctx) -> Response:
    return await ctx.render(_json, ctx.call, "member", {"id": ctx.params["id"]})


async def search(ctx: Ctx) -> Response:
    params = {"query": ctx.params["q"], "limit": ctx.params.get("limit") or 50, **_hidden(ctx)}
    return await ctx.render(_items, _with_raw, ctx, "search", params)


async def node_status(ctx: Ctx) -> Response:
    return json_response(await ctx.node.handle_rpc("status", {}))


async def node_peers(ctx: Ctx) -> Response:
    return json_response({"items": await ctx.node.handle_rpc("peers", {})})

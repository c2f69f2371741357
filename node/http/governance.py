"""Labs without a chief over HTTP (docs/http.md, docs/governance.md): a lab's members, its
decision log and its queue (reads), and its decisions (POST /api/v1/labs/{lab}/decisions,
signed by this node's member: one body, `act` naming the RPC write method it maps to).

The node refuses a decision that would have no authority before signing it: 403 with the
error code (`not_steward`, `not_member`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from node.http import data
from node.http.common import Ctx, HttpError, json_response
from node.http.server import Response
from node.service import queries
from protocols import kinds

# act -> the RPC write method (docs/rpc.md "Labs without a chief"), by what it names.
MEMBER_ACTS = {"admit": "lab_admit", "remove": "lab_remove", "vouch": "vouch",
               "suspend": "suspend", "unsuspend": "unsuspend"}  # fmt: skip
TARGET_ACTS = {"endorse": "endorse", "approve": "approve", "hide": "lab_hide",
               "unhide": "lab_unhide"}  # fmt: skip
DEFAULT_PAGE = 50


def _json(fn: Callable[..., Any], *args: Any) -> Response:
    return json_response(fn(*args))


async def lab_members(ctx: Ctx) -> Response:
    return await ctx.render(_json, ctx.call, "lab_members", {"lab": ctx.params["lab"]})


async def lab_log(ctx: Ctx) -> Response:
    params: dict[str, Any] = {"lab": ctx.params["lab"],
                              "limit": ctx.params.get("limit") or DEFAULT_PAGE}  # fmt: skip
    if ctx.params.get("cursor"):
        params["cursor"] = ctx.params["cursor"]
    return await ctx.render(_json, ctx.call, "lab_log", params)


def _queue(ctx: Ctx) -> dict[str, Any]:
    params: dict[str, Any] = {"lab": ctx.params["lab"],
                              "limit": ctx.params.get("limit") or DEFAULT_PAGE}  # fmt: skip
    if ctx.params.get("cursor"):
        params["cursor"] = ctx.params["cursor"]
    result: dict[str, Any] = ctx.call("queue", params)
    data.attach_raw(ctx.node.store, result["objects"])
    return result


async def lab_queue(ctx: Ctx) -> Response:
    return await ctx.render(_json, _queue, ctx)


def _in_lab(ctx: Ctx, lab: bytes, ref: str) -> None:
    """A decision names an object of its own lab: refuse a target of another lab here (the
    RPC would sign the decision for that lab). A target not here is the RPC's 404."""
    store = ctx.node.store
    with store.read() as txn:
        obj = store.get(txn, queries.resolve_id(store, txn, ref))
    if obj is None:
        return
    scope = obj.id if obj.kind == "lab" else kinds.scope_of(obj.body)
    if scope != lab:
        raise HttpError(400, "bad_request", f"{ref} is not an object of the lab "
                        f"{lab.hex()[:queries.SHORT_ID_CHARS]}")  # fmt: skip


def _decide(ctx: Ctx) -> dict[str, Any]:
    body, store = ctx.body, ctx.node.store
    with store.read() as txn:
        lab = queries.resolve_lab(store, txn, ctx.params["lab"])
    act = body["act"]
    params: dict[str, Any]
    if act in MEMBER_ACTS:
        method = MEMBER_ACTS[act]
        params = {"lab": lab.hex(), "member": body["member"]}
    elif act == "rules":
        method, params = "lab_rules", {"lab": lab.hex(), **body["rules"]}
    else:  # the body schema admits no other act
        method = TARGET_ACTS[act]
        _in_lab(ctx, lab, body["target"])
        params = {"id": body["target"]}
    params |= {k: body[k] for k in ("role", "reason") if k in body}
    return data.object_view(ctx.node.service, ctx.call(method, params))


async def create_decision(ctx: Ctx) -> Response:
    view = await ctx.run(_decide, ctx)
    location = f"/api/v1/objects/{view['id']}"
    return json_response({"id": view["id"], "object": view}, 201, [("location", location)])

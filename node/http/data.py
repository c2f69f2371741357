"""Blocking reads the HTTP API needs beyond `Service`: raw signed bytes for every object in
a response, single objects and labs, a lab's projects (page and feed), and pages of objects by
tag label, by author and of a project's comments. Each function opens one short read
transaction; call them in a worker thread. Pages run newest first over one index and cost
O(page), like `pages.page_projects`. Lists and feeds leave out what moderation hides and
others' queued posts (node/service/governance.py), unless `show_hidden`.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from typing import Any

from node.service import pages, queries
from node.service.api import Service
from node.store.read import prefix_keys
from node.store.store import Store
from protocols.objects import SignedObject

# Keys under which results nest object views (see docs/rpc.md and this package's results).
_NESTED = ("items", "project", "tags", "comments", "replies", "object", "pledges", "needs")
# Index entries a page may skip (withdrawn objects, repeats) before it stops early.
MAX_PAGE_SCAN = 5_000


def attach_raw(store: Store, value: Any, known: Mapping[str, bytes] | None = None) -> Any:
    """Add `"raw"` (base64 of the signed bytes) to every object view inside `value`, in place,
    so a client can check each object's signature itself. Withdrawn objects get `null`.
    `known`: bytes already read with the views (`Views.raws`, the same read), by hex id."""
    missing: list[dict[str, Any]] = []
    for v in _views_in(value):
        raw = known.get(v["id"]) if known is not None else None
        if raw is None:
            missing.append(v)
        else:
            v["raw"] = base64.b64encode(raw).decode()
    if missing:
        with store.read() as txn:
            for v in missing:
                raw = store.get_raw(txn, bytes.fromhex(v["id"]))
                v["raw"] = base64.b64encode(raw).decode() if raw is not None else None
    return value


def _views_in(value: Any) -> list[dict[str, Any]]:
    """Object views inside a result: the value itself, list items, and views nested under
    the keys results use (pages, threads, replies). Iterative: a page has ~50-500 views."""
    out: list[dict[str, Any]] = []
    stack = [value]
    while stack:
        v = stack.pop()
        if type(v) is dict:
            if "kind" in v and "author" in v and type(v.get("id")) is str:
                out.append(v)
            for key in _NESTED:
                inner = v.get(key)
                if type(inner) is list or type(inner) is dict:
                    stack.append(inner)
        elif type(v) is list:
            stack.extend(x for x in v if type(x) is dict or type(x) is list)
    return out


def object_view(service: Service, ref: str) -> dict[str, Any]:
    """Any live object by id or unique id prefix, as its view (with raw bytes)."""
    return _live_view(service, ref, queries.resolve_id, "object")


def lab_view(service: Service, ref: str) -> dict[str, Any]:
    """A live lab by id, id prefix or name, as its view (with raw bytes)."""
    return _live_view(service, ref, queries.resolve_lab, "lab")


def _live_view(
    service: Service, ref: str, resolve: Callable[[Store, Any, str], bytes], what: str
) -> dict[str, Any]:
    store = service.store
    follows = service.follows()
    with store.read() as txn:
        views = queries.Views(store, txn, follows)
        view = views.view(_live(views, resolve(store, txn, ref), ref, what))
    attach_raw(store, view, views.raws)
    return view


def _live(views: queries.Views, oid: bytes, ref: str, what: str) -> SignedObject:
    obj = views.get(oid)
    if obj is None:
        raise queries.NotFound(f"{what} {ref} was withdrawn by its author")
    return obj


def lab_projects(
    service: Service, ref: str, limit: int, cursor: str | None, order: str,
    show_hidden: bool = False,
) -> dict[str, Any]:
    """A lab's page of projects with raw bytes (`Service.call("projects")` for one lab) in
    one read: the lab resolved once, each object read once."""
    store = service.store
    follows = service.follows()
    with store.read() as txn:
        lab = queries.resolve_lab(store, txn, ref)
        views = queries.Views(store, txn, follows, service.members, show_hidden=show_hidden)
        try:
            page = pages.page_projects(store, views, lab=lab, order=order, limit=limit,
                                         cursor=cursor)  # fmt: skip
        except queries.QueryError:
            raise
        except ValueError as exc:  # as Service.m_projects words it
            raise queries.QueryError(f"bad cursor: {exc}") from exc
    for v in page["items"]:  # project views nest no other views: no walk (attach_raw)
        v["raw"] = base64.b64encode(views.raws[v["id"]]).decode()
    return page


def lab_feed(service: Service, ref: str, limit: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(the lab's view, its newest `limit` projects' views) in one read, for its feed."""
    store = service.store
    with store.read() as txn:
        # follows: a feed does not show them; moderation as for anyone (no viewer)
        views = queries.Views(store, txn, members=service.members)
        lab = views.view(_live(views, queries.resolve_lab(store, txn, ref), ref, "lab"))
        page = pages.page_projects(store, views, lab=bytes.fromhex(lab["id"]),
                                     order="newest", limit=limit, cursor=None)  # fmt: skip
    return lab, page["items"]


def _page(
    service: Service, db: str, prefix: bytes, limit: int, cursor: str | None, by_target: bool,
    kinds: frozenset[str] | None = None, with_raw: bool = True, show_hidden: bool = False,
) -> dict[str, Any]:  # fmt: skip
    store = service.store
    after = bytes.fromhex(cursor) if cursor else None
    by_member = db == "by_author"  # every key of the member (docs/identity.md)
    # (a member's page may end on a key of one of its devices: any by_author key)
    if after is not None and not (len(after) == 48 if by_member else after.startswith(prefix)):
        raise queries.QueryError("cursor does not belong to this listing")
    items: list[dict[str, Any]] = []
    seen: set[bytes] = set()
    last: bytes | None = None
    with store.read() as txn:
        views = queries.Views(store, txn, service.follows(), service.members,
                              show_hidden=show_hidden)  # fmt: skip
        if by_member:
            keys: Any = pages.member_keys_newest(views, prefix, after)
        else:
            keys = prefix_keys(txn, store.db[db], prefix, reverse=True, after=after)
        for n, key in enumerate(keys):
            if n >= MAX_PAGE_SCAN:
                break
            last = key
            # by_label keys end in the tagged object's id; the others in a sequence
            obj = views.get(key[-32:]) if by_target else views.get_seq(key[-8:])
            if obj is None or obj.id in seen or (kinds is not None and obj.kind not in kinds):
                continue
            if not views.listed(obj):  # hidden, or another's queued post
                continue
            if by_member and not pages.speaks_for(views, obj, prefix):
                continue
            seen.add(obj.id)
            items.append(views.view(obj))
            if len(items) >= limit:
                break
        else:
            last = None  # the index ran out: no further page
    if with_raw:
        attach_raw(store, items, views.raws)
    return {"items": items, "next": last.hex() if last is not None else None}


def by_label(
    service: Service, label: str, limit: int, cursor: str | None, with_raw: bool = True,
    show_hidden: bool = False,
) -> dict[str, Any]:  # fmt: skip
    """Objects (of any kind) tagged `label`, most recently tagged first."""
    prefix = label.encode() + b"\0"
    return _page(service, "by_label", prefix, limit, cursor, True, with_raw=with_raw,
                 show_hidden=show_hidden)  # fmt: skip


def by_author(
    service: Service, author: bytes, limit: int, cursor: str | None,
    kinds: frozenset[str] | None = None, with_raw: bool = True, show_hidden: bool = False,
) -> dict[str, Any]:  # fmt: skip
    """Objects signed by `author`, newest first."""
    return _page(service, "by_author", author, limit, cursor, False, kinds, with_raw,
                 show_hidden)  # fmt: skip


def about(
    service: Service, target: bytes, limit: int, cursor: str | None, kinds: frozenset[str],
    with_raw: bool = True, show_hidden: bool = False,
) -> dict[str, Any]:  # fmt: skip
    """Objects about `target` (its comments, tags), newest first."""
    return _page(service, "by_target", target, limit, cursor, False, kinds, with_raw,
                 show_hidden)  # fmt: skip


def profile_name(service: Service, author: bytes) -> str | None:
    """The member's name (its latest profile from any of its keys)."""
    with service.store.read() as txn:
        return queries.Views(service.store, txn, members=service.members).member_name(author)

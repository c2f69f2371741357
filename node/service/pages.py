"""Pages of projects (a lab's, a tag's, a member's, all labs'), `show` of any object (a lab's
shows its newest projects) and the tag counts, over the views of node/service/queries.py: a
page costs O(page), never O(store), less what moderation holds back
(node/service/moderation.py).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from typing import Any

from node.service import governance, living_views, moderation
from node.service.queries import (
    MAX_PAGE,
    Views,
)
from node.store.read import U64, prefix_keys
from node.store.store import Store
from protocols.kinds import kind_spec, registered_kinds
from protocols.objects import SignedObject

# Projects a `show` of a lab lists, newest first (`projects` with a cursor pages them all).
SHOW_LAB_PROJECTS = 20
# Keys of a `show` result beside the object's own view, which goes under its kind's name (an
# extension kind named like one of these goes under "object" instead).
SHOW_KEYS = frozenset({"kind", "object", "tags", "comments", "projects", "more_projects",
                       "target", "thread", "pledges", "needs", "lineage"})  # fmt: skip


def show(store: Store, views: Views, obj: SignedObject) -> dict[str, Any]:
    """`show` of any object: {"kind": K, K: its view, "tags", "comments" (threaded) about it},
    plus what places it: a lab's newest projects ("projects", "more_projects"); for a kind with a
    target (comment, tag, retraction...) the target's view ("target", null when it is not
    here or was withdrawn), and for a comment the whole thread it sits in ("thread")."""
    key = obj.kind if obj.kind not in SHOW_KEYS else "object"
    tags, comments = views.thread(obj.id)
    out: dict[str, Any] = {"kind": obj.kind, key: views.view(obj), "tags": tags,
                           "comments": comments}  # fmt: skip
    if obj.kind == "project":
        pledges = [p for p in living_views.pledges_of(views, obj)
                   if views.moderation.listed_view(p)]  # fmt: skip
        out["pledges"] = pledges
        out["needs"] = living_views.needs_with_pledges(out["project"]["needs"], pledges)
        out["lineage"] = living_views.lineage(views, obj)
    if obj.kind == "lab":
        page = page_projects(store, views, lab=obj.id, order="newest",
                             limit=SHOW_LAB_PROJECTS, cursor=None)  # fmt: skip
        out["projects"], out["more_projects"] = page["items"], page["next"] is not None
    spec = kind_spec(obj.kind) if obj.kind in registered_kinds() else None
    target_id = obj.body.get(spec.target_field) if spec and spec.target_field else None
    if isinstance(target_id, bytes):
        target = views.get(target_id)
        out["target"] = views.view(target) if target is not None else None
        if obj.kind == "comment":
            out["thread"] = views.thread(target_id)[1] if target is not None else []
    return out


def page_projects(
    store: Store, views: Views, *, lab: bytes | None, order: str, limit: int,
    cursor: str | None, tag: str | None = None, author: bytes | None = None,
) -> dict[str, Any]:  # fmt: skip
    limit = max(1, min(limit, MAX_PAGE))
    after = bytes.fromhex(cursor) if cursor else None
    txn, db = views.txn, store.db
    dropped: set[tuple[str, bytes]] = set()
    if tag is not None:
        keys = prefix_keys(txn, db["by_label"], tag.encode() + b"\0", reverse=True, after=after)
        raw_total = txn.get(tag.encode(), db=db["labels"])
        delta, dropped = views.moderation.label_fixes()
        total = (U64.unpack(raw_total)[0] if raw_total else 0) + delta.get(tag, 0)
    elif lab is not None and order == "active":
        keys, total = prefix_keys(txn, db["active"], lab, reverse=True, after=after), views.moderation.project_count(lab, store.count(txn, lab=lab))  # noqa: E501
    elif lab is not None:
        keys, total = prefix_keys(txn, db["by_lab"], lab + b"project\0", reverse=True, after=after), views.moderation.project_count(lab, store.count(txn, lab=lab))  # noqa: E501
    elif author is not None:
        keys, total = member_keys_newest(views, author, after), None
    else:
        keys, total = prefix_keys(txn, db["by_kind"], b"project\0", reverse=True, after=after), views.moderation.all_projects_count(store.count(txn, "project"))  # noqa: E501
    items: list[dict[str, Any]] = []
    seen: set[bytes] = set()
    last = None
    by_activity = tag is None and lab is not None and order == "active"
    # What the lab holds from this viewer is skipped unread (a flood of queued posts): by
    # the project's id in the activity log, else by the key's sequence.
    skip: frozenset[bytes] = frozenset()
    if lab is not None and tag is None:
        skip = views.moderation.held_out(lab)[1 if by_activity else 0]
    for key in keys:
        last = key
        if skip and (key[40:72] if by_activity else key[-8:]) in skip:
            continue
        o = _project_for_key(views, key, tag is not None, by_activity)
        if o is None or o.kind != "project" or o.id in seen or not views.listed(o):
            continue
        if author is not None and not speaks_for(views, o, author):
            continue
        if tag is not None and (tag, o.id) in dropped:
            continue  # only hidden or queued tags carry the label: not in its count
        view = views.view(o)
        if by_activity and view["activity"] != U64.unpack(key[32:40])[0]:
            continue  # an older event of a project listed at its newest one
        seen.add(o.id)
        items.append(view)
        if len(items) >= limit:
            break
    more = len(items) >= limit and last is not None
    return {"items": items, "next": last.hex() if more and last else None, "total": total}


def speaks_for(views: Views, o: SignedObject, member: bytes) -> bool:
    """Whether `o`, signed by one of the member's keys, counts as the member's (its own key,
    or a key attributed to it then): lists by member skip what a revoked device signed."""
    return o.author == member or views.members.attribute(o).member == member


def member_keys_newest(views: Views, member: bytes, after: bytes | None) -> Iterator[bytes]:
    """by_author keys of every key of `member` (its roots and devices; a key with no identity
    history is its own member), newest first, after the cursor `after` (a by_author key)."""
    db = views.store.db["by_author"]
    keys = sorted({k.key for k in views.members.member_keys(member)} | {member})
    streams = [prefix_keys(views.txn, db, k, reverse=True, after=k + after[32:] if after else None)
               for k in keys]  # fmt: skip
    return heapq.merge(*streams, key=lambda key: bytes(key[32:]), reverse=True)


def _project_for_key(
    views: Views, key: bytes, by_tag: bool, by_activity: bool
) -> SignedObject | None:
    if by_tag:
        return views.get(key[-32:])
    if by_activity:  # activity log: lab + ts + project id + seq of the event
        return views.get(key[40:72])
    return views.get_seq(key[-8:])


def tag_counts(
    store: Store, txn: Any, limit: int, judge: moderation.Moderation | None = None
) -> list[dict[str, Any]]:
    """Labels by the objects tagged with them, less what lists leave out for the viewer of
    `judge` (default: nobody's queued tags are counted): `Moderation.label_fixes`."""
    if judge is None:
        judge = moderation.Moderation(governance.of_store(store))
    delta = judge.label_fixes()[0]
    counts = []
    for k, v in txn.cursor(db=store.db["labels"]):
        label = k.decode()
        n = U64.unpack(v)[0] + delta.get(label, 0)
        if n > 0:
            counts.append({"label": label, "count": n})
    counts.sort(key=lambda c: (-c["count"], c["label"]))
    return counts[: max(1, limit)]


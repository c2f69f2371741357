"""Views of living projects (docs/rpc.md): a project's current fields, its pledges, its needs
with the pledges answering them, its lineage and its history, from the registry
(node/service/living.py) and the store's indexes. Every function reads through one `Views`
(one read transaction)."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import Any, Protocol

from node.service.living import Living
from node.service.members import Members
from node.store.read import prefix_items, prefix_keys
from node.store.store import Store
from protocols.licences import is_known_licence
from protocols.living import derive_label, pledge_label, project_fields
from protocols.objects import SignedObject
from protocols.project_history import HistoryEntry, ProjectState


class Views(Protocol):
    """What these functions read through: node/service/queries.py's `Views` (a Protocol, so
    that queries, which shows living projects with these functions, is not imported back)."""

    store: Store
    txn: Any
    members: Members
    living: Living

    def get(self, oid: bytes) -> SignedObject | None: ...
    def get_seq(self, seq: bytes) -> SignedObject | None: ...
    def lab_name(self, lab: bytes) -> str | None: ...
    def member_name(self, member: bytes) -> str | None: ...
    def view(self, o: SignedObject) -> dict[str, Any]: ...

# Ancestors and descendants a lineage lists (breadth first), and how far it follows links.
MAX_LINEAGE_ITEMS = 50
MAX_LINEAGE_DEPTH = 4
# Objects naming one origin that `descendants` reads (projects and revisions of them).
MAX_DERIVES_SCAN = 2_000
# Pledges a listing (of a lab or a member) reads, newest first, before it stops.
MAX_PLEDGE_SCAN = 5_000
# Entries of a history page (`history` limit), like other pages.
DEFAULT_HISTORY_PAGE = 50
MAX_HISTORY_PAGE = 200


def current(views: Views, project: SignedObject) -> tuple[dict[str, Any], ProjectState | None]:
    """(the project's visible revisable fields, its replayed state or None when no revision
    targets it: then the fields are the object's own)."""
    if not has_revisions(views, project.id):
        return project_fields(project.body), None
    state = views.living.state(project)
    return dict(state.fields), state


def has_revisions(views: Views, pid: bytes) -> bool:
    """Whether any live revision targets `pid` (one seek in the revisions index)."""
    cur = views.txn.cursor(db=views.store.db["revisions"])
    return bool(cur.set_range(pid)) and bytes(cur.key()[:32]) == pid


def newest_revisions(views: Views, project: SignedObject) -> tuple[int | None, int | None]:
    """(ts of the newest live revision of the project, ts of the newest one scoped to its
    lab): the end of its range in the revisions index (the first is usually the second)."""
    newest = of_lab = None
    lab = project.body["lab"]
    cur = views.txn.cursor(db=views.store.db["revisions"])
    for key, scope in _reverse_prefix(cur, project.id):
        ts = int.from_bytes(key[32:40], "big")
        newest = ts if newest is None else newest
        if scope == lab:
            of_lab = ts
            break
    return newest, of_lab


def _reverse_prefix(cur: Any, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
    if not cur.set_range(prefix + b"\xff" * 16):
        if not cur.last():
            return
    elif not cur.prev():
        return
    while cur.key()[:32] == prefix:
        yield bytes(cur.key()), bytes(cur.value())
        if not cur.prev():
            return


def decorate_project(
    views: Views, project: SignedObject, v: dict[str, Any], revisions: int, pledges: int,
    updated: int,
) -> None:  # fmt: skip
    """Put the current fields in a project's view `v` (made from the object itself), and
    licence_known, coauthors, derives, revised_ts, revisions (applied), pledges, updated."""
    state = views.living.state(project) if revisions else None
    fields = dict(state.fields) if state is not None else project_fields(project.body)
    for name in ("title", "summary", "body", "stage"):
        v[name] = fields[name]
    v["needs"] = list(fields["needs"])
    v["licence"] = fields["licence"]
    v["licence_known"] = is_known_licence(fields["licence"])
    v["coauthors"] = [{"member": m.hex(), "name": views.member_name(m)}
                      for m in fields["coauthors"]]  # fmt: skip
    v["derives"] = [derive_view(views, d) for d in fields["derives"]]
    v["revised_ts"] = state.revised_ts if state is not None else None
    v["revisions"] = state.applied if state is not None else 0
    v["pledges"] = pledges
    v["updated"] = max(updated, v["revised_ts"] or 0, project.ts)


def decorate_other(o: SignedObject, v: dict[str, Any]) -> None:
    """A pledge's view: its type's label, and the optional fields (null need, empty note); a
    revision's: its optional note."""
    v.setdefault("note", "")
    if o.kind == "pledge":
        v["type_label"] = pledge_label(o.body["type"])
        v.setdefault("need", None)


def derive_view(views: Views, d: dict[str, Any]) -> dict[str, Any]:
    origin = views.get(d["project"])
    title = lab_name = None
    if origin is not None and origin.kind == "project":
        title = current(views, origin)[0]["title"]
        lab_name = views.lab_name(origin.body["lab"])
    return {"project": d["project"].hex(), "how": d["how"], "how_label": derive_label(d["how"]),
            "note": d.get("note", ""), "title": title, "lab_name": lab_name}  # fmt: skip


# ---- pledges ---------------------------------------------------------------------------


def pledge_view(views: Views, pledge: SignedObject, project: SignedObject | None = None) -> dict[str, Any]:  # noqa: E501
    v = views.view(pledge)
    if project is None:
        target = views.get(pledge.body["target"])
        project = target if target is not None and target.kind == "project" else None
    v["project_title"] = current(views, project)[0]["title"] if project is not None else None
    return v


def pledges_of(views: Views, project: SignedObject) -> list[dict[str, Any]]:
    """The live pledges on a project, oldest first."""
    out = []
    for key, value in prefix_items(views.txn, views.store.db["by_target"], project.id):
        if value.startswith(b"pledge\0"):
            o = views.get_seq(key[-8:])
            if o is not None:
                out.append(pledge_view(views, o, project))
    return out


def needs_with_pledges(needs: list[str], pledges: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each current need with the pledges answering it (a pledge naming a need the project no
    longer lists answers none of them; it is still among the project's pledges)."""
    return [{"need": n, "pledges": [p for p in pledges if p.get("need") == n]} for n in needs]


def pledges_around(
    views: Views, limit: int, *, lab: bytes | None = None, member: bytes | None = None
) -> list[dict[str, Any]]:
    """Pledges made and received, newest first: for a lab, those on its projects (received)
    and those its creator made on other labs' projects (made); for a member, those it made
    and those on projects it is an author of now. Each view says `made` and `received`."""
    maker: bytes | None = member
    if lab is not None:
        lab_obj = views.get(lab)
        maker = views.members.attribute(lab_obj).member if lab_obj is not None else None
    out: list[dict[str, Any]] = []
    keys = prefix_keys(views.txn, views.store.db["by_kind"], b"pledge\0", reverse=True)
    for n, key in enumerate(keys):
        if n >= MAX_PLEDGE_SCAN or len(out) >= limit:
            break
        o = views.get_seq(key[-8:])
        if o is None:
            continue
        made = maker is not None and views.members.attribute(o).member == maker
        target = views.get(o.body["target"])
        project = target if target is not None and target.kind == "project" else None
        if lab is not None:
            received = project is not None and project.body["lab"] == lab
            made = made and not received
        else:
            received = project is not None and member in authors(views, project)
        if made or received:
            out.append(pledge_view(views, o, project) | {"made": made, "received": received})
    return out


def authors(views: Views, project: SignedObject) -> frozenset[bytes]:
    fields, state = current(views, project)
    if state is not None:
        return state.authors
    creator = views.members.attribute(project).member
    return frozenset(fields["coauthors"]) | ({creator} if creator is not None else set())


# ---- lineage ---------------------------------------------------------------------------


def lineage(views: Views, project: SignedObject) -> dict[str, list[dict[str, Any]]]:
    """{"ancestors", "descendants"}: breadth first over current `derives` (up to
    MAX_LINEAGE_DEPTH links away), each {project, how, how_label, note, title, lab,
    lab_name, depth, via} (via: the project one link closer, null at depth 1)."""
    return {"ancestors": _walk(views, project, _parents),
            "descendants": _walk(views, project, _children)}  # fmt: skip


def _walk(views: Views, start: SignedObject, step: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    seen = {start.id}
    queue: deque[tuple[SignedObject, int]] = deque([(start, 0)])
    while queue and len(out) < MAX_LINEAGE_ITEMS:
        node, depth = queue.popleft()
        if depth >= MAX_LINEAGE_DEPTH:
            continue
        for other_id, other, d in step(views, node):
            if other_id in seen or len(out) >= MAX_LINEAGE_ITEMS:
                continue
            seen.add(other_id)
            title = lab = lab_name = None
            if other is not None:
                title = current(views, other)[0]["title"]
                lab = other.body["lab"].hex()
                lab_name = views.lab_name(other.body["lab"])
                queue.append((other, depth + 1))
            out.append({"project": other_id.hex(), "how": d["how"],
                        "how_label": derive_label(d["how"]), "note": d.get("note", ""),
                        "title": title, "lab": lab, "lab_name": lab_name, "depth": depth + 1,
                        "via": node.id.hex() if depth else None})  # fmt: skip
    return out


def _parents(views: Views, node: SignedObject) -> Iterator[tuple[bytes, SignedObject | None, Any]]:
    for d in current(views, node)[0]["derives"]:
        origin = views.get(d["project"])
        yield d["project"], origin if origin is not None and origin.kind == "project" else None, d


def _children(views: Views, node: SignedObject) -> Iterator[tuple[bytes, SignedObject, Any]]:
    """Live projects whose *current* derives name `node` (the derives index lists every
    project and revision that ever named it)."""
    found: set[bytes] = set()
    keys = prefix_keys(views.txn, views.store.db["derives"], node.id)
    for n, key in enumerate(keys):
        if n >= MAX_DERIVES_SCAN:
            break
        o = views.get_seq(key[-8:])
        if o is None:
            continue
        child = views.get(o.body["target"]) if o.kind == "revision" else o
        if child is None or child.kind != "project" or child.id in found:
            continue
        found.add(child.id)
        for d in current(views, child)[0]["derives"]:
            if d["project"] == node.id:
                yield child.id, child, d


# ---- history ---------------------------------------------------------------------------


def history_page(
    views: Views, project: SignedObject, limit: int, before: int | None
) -> dict[str, Any]:
    """{"project", "heads", "total", "entries", "next"}: the newest `limit` entries of the
    replay order before position `before` (all: None), oldest first. Each entry: {index, id,
    ts, member, author_name, supersedes, changes: {field: {old, new}}, note, effect}; pass
    `next` as `before` for the page before (null: this is the first)."""
    state, total, start, entries = views.living.page(project, limit, before)
    return {
        "project": project.id.hex(),
        "heads": [h.hex() for h in state.heads],
        "total": total,
        "entries": [entry_view(views, start + i, e) for i, e in enumerate(entries)],
        "next": start if start > 0 else None,
    }


def entry_view(views: Views, index: int, e: HistoryEntry) -> dict[str, Any]:
    return {
        "index": index,
        "id": e.id.hex(),
        "ts": e.ts,
        "member": e.member.hex() if e.member is not None else None,
        "author_name": views.member_name(e.member) if e.member is not None else None,
        "supersedes": [s.hex() for s in e.supersedes],
        "changes": {f: {"old": plain(old), "new": plain(new)}
                    for f, (old, new) in e.changes.items()},
        "note": e.note,
        "effect": e.effect,
    }


def plain(value: Any) -> Any:
    """A field value as JSON-friendly data: ids (bytes) as hex, records as dicts."""
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, list | tuple):
        return [plain(x) for x in value]
    if isinstance(value, dict):
        return {k: plain(x) for k, x in value.items()}
    return value

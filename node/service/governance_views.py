"""The views of a lab's self-government (docs/rpc.md, "Labs without a chief"): its members,
its decision log, its queue, and what a lab's view says about the caller (`role`, `queued`,
`short_id`, `name_clash`). Computed from the lab's state in node/service/governance.py."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from node.identity import fingerprint
from node.service import lab_names, queries
from node.service.governance import QUEUED, Governance, Held, LabState, object_of
from node.store.read import U64
from node.store.store import Store
from protocols.governance import STEWARD
from protocols.lab_authority import LabAuthority
from protocols.limits import PROPOSAL_TTL_MS

log = logging.getLogger(__name__)

SHORT_ID_HEX = 8  # a lab's `short_id`: its name is shown `name (short_id)` on a clash
MAX_LOG_PAGE = 200
MAX_QUEUE_PAGE = 200  # a `queue` page: its object views stay far below the RPC frame
DEFAULT_PAGE = 50


def member_view(views: queries.Views, member: bytes) -> dict[str, Any]:
    """M: a member as the governance views name it."""
    return {"member": member.hex(), "name": views.member_name(member) or "",
            "fingerprint": fingerprint(member)}  # fmt: skip


def _members(views: queries.Views, ids: Iterable[bytes]) -> list[dict[str, Any]]:
    out = [member_view(views, m) for m in ids]
    out.sort(key=lambda m: (m["name"].casefold(), m["member"]))
    return out


def role(authority: LabAuthority, member: bytes | None) -> str | None:
    if member is None or member not in authority.members:
        return None
    return "steward" if member in authority.stewards else "member"


def rules_view(authority: LabAuthority) -> dict[str, Any]:
    r = authority.rules
    return {"admit_vouches": r.admit_vouches, "posts": r.posts, "replies": r.replies}


def is_proposal(body: Mapping[str, Any]) -> bool:
    return body["act"] == "rules" or (body["act"] in ("admit", "remove")
                                      and body.get("role") == STEWARD)  # fmt: skip


def proposals(views: queries.Views, state: LabState, now: int) -> list[dict[str, Any]]:
    """The proposals still waiting (pending, not expired), with their backing now."""
    a = state.authority
    endorsers: dict[bytes, set[bytes]] = {}
    for e in a.log:
        if e.act == "endorse" and e.effect == "applied" and e.by is not None:
            target = state.decisions[e.id].body["target"]
            endorsers.setdefault(target, set()).add(e.by)
    out = []
    for e in a.log:
        body = state.decisions[e.id].body
        if e.effect != "pending" or not is_proposal(body) or e.by is None:
            continue
        if now > e.ts + PROPOSAL_TTL_MS:
            continue  # expired: it can never take effect
        subject = body.get("subject")
        out.append({
            "id": e.id.hex(), "act": e.act, "by": member_view(views, e.by),
            "subject": member_view(views, subject) if subject is not None else None,
            "rules": dict(body["rules"]) if "rules" in body else None,
            "backing": len(({e.by} | endorsers.get(e.id, set())) & a.stewards),
            "needed": len(a.stewards) // 2 + 1,
        })  # fmt: skip
    return out


def newcomers(views: queries.Views, state: LabState,
              held: Iterable[Held]) -> list[dict[str, Any]]:  # fmt: skip
    """Who waits to be a member: those members vouched for, then the authors of queued
    objects (no vouch yet), each once. Authors come from the lab's cached `held` entries
    (attributed at its scan): nothing is decoded."""
    a = state.authority
    waiting: dict[bytes, frozenset[bytes]] = dict(a.newcomers)
    for h in held:
        m = h.member
        if h.status == QUEUED and m is not None and m not in a.members and m not in waiting:
            waiting[m] = frozenset()
    return [{"member": member_view(views, m), "vouchers": _members(views, vs)}
            for m, vs in waiting.items()]  # fmt: skip


def lab_members(views: queries.Views, state: LabState, gov: Governance, viewer: bytes | None,
                now: int) -> dict[str, Any]:  # fmt: skip
    a = state.authority
    return {
        "lab": state.lab.id.hex(),
        "stewards": _members(views, a.stewards),
        "members": _members(views, a.members),  # stewards included
        "suspended": _members(views, a.suspended),
        "newcomers": newcomers(views, state, gov.held(state.lab.id)),
        "rules": rules_view(a),
        "role": role(a, viewer),
        "proposals": proposals(views, state, now),
    }


def _after(cursor: str | None, size: int) -> tuple[int, bytes] | None:
    """A page cursor: 8 bytes of ts then the rest (a sequence or an id), in hex."""
    if not cursor:
        return None
    raw = bytes.fromhex(cursor)  # ValueError: the caller's bad_request
    if len(raw) != size:
        raise ValueError(f"a cursor is {size} bytes of hex")
    return U64.unpack(raw[:8])[0], raw[8:]


def queue(views: queries.Views, state: LabState, gov: Governance, limit: int = DEFAULT_PAGE,
          cursor: str | None = None) -> dict[str, Any]:  # fmt: skip
    """A page of the lab's queued objects, newest first, and every newcomer; `total`
    counts all that wait, `next` continues after the page. Only the page is decoded."""
    limit = max(1, min(limit, MAX_QUEUE_PAGE))
    after = _after(cursor, 16)
    held = gov.held(state.lab.id)
    waiting = [h for h in held if h.status == QUEUED]
    objects: list[dict[str, Any]] = []
    last: Held | None = None
    more = False
    for h in waiting:
        if after is not None and (h.ts, h.seq) >= after:
            continue
        if len(objects) >= limit:
            more = True
            break
        obj = object_of(views.store, views.txn, h.seq)
        if obj is not None:
            objects.append(views.view(obj))
            last = h
    nxt = (U64.pack(last.ts) + last.seq).hex() if more and last is not None else None
    return {"objects": objects, "newcomers": newcomers(views, state, held),
            "total": len(waiting), "next": nxt}  # fmt: skip


def lab_log(views: queries.Views, state: LabState, limit: int,
            cursor: str | None) -> dict[str, Any]:  # fmt: skip
    """The lab's decisions newest first, each with what it did; `cursor` (the previous
    page's `next`) continues after it."""
    limit = max(1, min(limit, MAX_LOG_PAGE))
    after = _after(cursor, 40)
    entries: list[dict[str, Any]] = []
    more = False
    for e in reversed(state.authority.log):
        if after is not None and (e.ts, e.id) >= after:
            continue
        if len(entries) >= limit:
            more = True
            break
        body = state.decisions[e.id].body
        subject, target = body.get("subject"), body.get("target")
        entries.append({
            "id": e.id.hex(), "ts": e.ts, "by": member_view(views, e.by) if e.by else None,
            "act": e.act, "effect": e.effect,
            "subject": member_view(views, subject) if isinstance(subject, bytes) else None,
            "target": target.hex() if isinstance(target, bytes) else None,
            "role": body.get("role"),
            "rules": dict(body["rules"]) if "rules" in body else None,
            "reason": body.get("reason"),
        })  # fmt: skip
    nxt = None
    if more and entries:
        last = entries[-1]
        nxt = (U64.pack(last["ts"]) + bytes.fromhex(last["id"])).hex()
    return {"entries": entries, "next": nxt}


# ---- lab views: the caller's role, the queue, names that clash ------------------------


def clashing_labs(store: Store, txn: Any) -> frozenset[bytes]:
    """Labs whose name is the same as, or confusable with, another known lab's."""
    return lab_names.clashes(store, txn)


def decorate_labs(views: queries.Views, gov: Governance, labs: list[dict[str, Any]],
                  viewer: bytes | None) -> None:  # fmt: skip
    """Add `role`, `queued`, `short_id` and `name_clash` to lab views, in place."""
    if not labs:
        return
    clashes = clashing_labs(views.store, views.txn)
    for v in labs:
        lab = bytes.fromhex(v["id"])
        state = gov.state(lab)
        r = role(state.authority, viewer) if state is not None else None
        queued = 0
        if r is not None and state is not None:  # shown to members
            queued = len(gov.queued(lab)) + len(state.authority.newcomers)
        v |= {"role": r, "queued": queued, "short_id": v["id"][:SHORT_ID_HEX],
              "name_clash": lab in clashes}  # fmt: skip

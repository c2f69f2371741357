"""One member's identity timeline, computed from that member's identity objects alone
(docs/identity.md §4): roots and their validity, disputes, certificates, revocations and
recovery sets. protocols/attribution.py combines the members' views.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field

from protocols.identity import RECOVERY
from protocols.objects import SignedObject


@dataclass
class MemberObjects:
    """The identity objects naming one member (`body.member`), as filed (any order)."""

    certs: list[SignedObject] = field(default_factory=list)
    revokes: list[SignedObject] = field(default_factory=list)
    recoveries: list[SignedObject] = field(default_factory=list)
    rotations: list[SignedObject] = field(default_factory=list)


@dataclass(frozen=True)
class RootSpan:
    """A root key of a member, valid for start <= ts < end (end None: open)."""

    key: bytes
    start: int
    end: int | None
    # On a branch of a dispute (it descends from one of two rotations of the same root).
    disputed: bool
    # The rotation that made it a root (None for the genesis root).
    via: bytes | None

    def holds(self, ts: int) -> bool:
        return self.start <= ts and (self.end is None or ts < self.end)


@dataclass(frozen=True)
class RecoverySet:
    ts: int
    id: bytes
    contacts: frozenset[bytes]
    threshold: int


@dataclass(frozen=True)
class MemberView:
    member: bytes
    spans: tuple[RootSpan, ...]
    span_of: dict[bytes, RootSpan]
    # Certificate id -> None (its author was no root of the member at its ts), else whether
    # that root was on a disputed branch.
    certs: dict[bytes, bool | None]
    # Device key -> the earliest `since` of a revocation by a valid root.
    revoked_since: dict[bytes, int]
    # Device key -> object ids disowned by valid revocations.
    disowned: dict[bytes, frozenset[bytes]]
    # Recovery sets by a root valid at their ts, in (ts, id) order.
    recoveries: tuple[RecoverySet, ...]
    dispute_since: int | None
    competing: tuple[bytes, ...]

    @property
    def genesis(self) -> RootSpan:
        return self.spans[0]

    def root_at(self, key: bytes, ts: int) -> RootSpan | None:
        span = self.span_of.get(key)
        return span if span is not None and span.holds(ts) else None

    def recovery_at(self, ts: int) -> RecoverySet | None:
        """The set in effect at `ts`: the latest by ts (ties: the smallest id) before it."""
        sets = self.recoveries
        i = bisect_left([s.ts for s in sets], ts)
        if i == 0:
            return None
        latest = sets[i - 1].ts
        j = bisect_left([s.ts for s in sets], latest)
        return sets[j]  # (ts, id) order: the first of the latest ts has the smallest id


def _order(obj: SignedObject) -> tuple[int, bytes]:
    return obj.ts, obj.id


def compute_view(
    member: bytes, objs: MemberObjects, endorsed: frozenset[bytes], device_since: int | None
) -> MemberView:
    """The member's view, given which recovery rotations are backed by enough endorsements
    (`endorsed`, decided by the directory) and when the genesis key became someone's device
    (`device_since`: from then on it is no root)."""
    # key -> [start, cap, parent, via]; rotations in (ts, id) order, so a parent comes first.
    starts: dict[bytes, int] = {member: -1}
    caps: dict[bytes, int | None] = {member: device_since}
    parent: dict[bytes, bytes | None] = {member: None}
    via: dict[bytes, bytes | None] = {member: None}
    children: dict[bytes, list[SignedObject]] = {}
    for r in sorted(objs.rotations, key=_order):
        old, new, ts = r.body["old"], r.author, r.ts
        if old not in starts or new in starts:
            continue
        cap = caps[old]
        if not (starts[old] <= ts and (cap is None or ts < cap)):
            continue  # the old key was no root of the member at that time
        if r.body["mode"] == RECOVERY and r.id not in endorsed:
            continue
        starts[new], caps[new], parent[new], via[new] = ts, None, old, r.id
        children.setdefault(old, []).append(r)
    spans: list[RootSpan] = []
    span_of: dict[bytes, RootSpan] = {}
    dispute_since: int | None = None
    competing: list[bytes] = []
    for key in starts:  # insertion order: parents before children
        ends = [c.ts for c in children.get(key, ())]
        cap = caps[key]
        if cap is not None:
            ends.append(cap)
        up = parent[key]
        disputed = up is not None and (span_of[up].disputed or len(children[up]) > 1)
        span = RootSpan(key, starts[key], min(ends) if ends else None, disputed, via[key])
        spans.append(span)
        span_of[key] = span
        kids = children.get(key, [])
        if len(kids) > 1:
            first = kids[0].ts
            dispute_since = first if dispute_since is None else min(dispute_since, first)
            competing += [k.id for k in kids]
    view_certs: dict[bytes, bool | None] = {}
    for c in objs.certs:
        certifier = _root(span_of, c.author, c.ts)
        view_certs[c.id] = None if certifier is None else certifier.disputed
    revoked: dict[bytes, int] = {}
    disowned: dict[bytes, set[bytes]] = {}
    for v in objs.revokes:
        if _root(span_of, v.author, v.ts) is None:
            continue
        device = v.body["device"]
        revoked[device] = min(revoked.get(device, v.body["since"]), v.body["since"])
        disowned.setdefault(device, set()).update(v.body["disown"])
    sets = [
        RecoverySet(s.ts, s.id, frozenset(s.body["contacts"]), s.body["threshold"])
        for s in sorted(objs.recoveries, key=_order)
        if _root(span_of, s.author, s.ts) is not None
    ]
    return MemberView(
        member, tuple(spans), span_of, view_certs, revoked,
        {d: frozenset(ids) for d, ids in disowned.items()}, tuple(sets),
        dispute_since, tuple(sorted(competing)),
    )  # fmt: skip


def _root(span_of: dict[bytes, RootSpan], key: bytes, ts: int) -> RootSpan | None:
    span = span_of.get(key)
    return span if span is not None and span.holds(ts) else None

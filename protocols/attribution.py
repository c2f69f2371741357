"""Which member an object speaks for: a pure, deterministic view (docs/identity.md §4).

`Directory` holds the identity objects (device, revoke, recovery, rotation, endorsement) a
node stores, added in any order, and answers `attribute(author, ts, oid, cert)` for any
object. The answer is a function of the set of identity objects alone: every node holding
the same objects shows the same attribution, whatever order they arrived in.

Cost: `attribute` is a few dict lookups. `add` files the object and marks its member stale;
the next query recomputes the stale members (their own objects only) and, if any member
ever rotated by recovery, the recovery fixed point over those members (recovery rotations and
their endorsements: few).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from protocols import validity
from protocols.identity import IDENTITY_KINDS, RECOVERY, cert_of
from protocols.identity_view import (
    MemberObjects,
    MemberView,
    RecoverySet,
    RootSpan,
    compute_view,
)
from protocols.limits import MAX_RECOVERY_ROUNDS
from protocols.objects import SignedObject

Status = Literal["member", "unattributed", "disputed", "pending"]


@dataclass(frozen=True)
class Attribution:
    member: bytes | None
    device: bytes | None
    status: Status


UNATTRIBUTED = Attribution(None, None, "unattributed")
PENDING = Attribution(None, None, "pending")


@dataclass(frozen=True)
class DeviceInfo:
    name: str
    key: bytes
    cert: bytes
    ts: int
    # Whether the certificate's author was a root of the member at its ts; a device whose
    # certificate is not valid speaks for nobody.
    valid: bool
    # Objects by this device with ts >= revoked_since are not attributed (None: not revoked).
    revoked_since: int | None


@dataclass(frozen=True)
class KeyInfo:
    key: bytes
    role: Literal["root", "device"]
    # Validity interval [start, end) in ms; start -1 = always, end None = open.
    start: int
    end: int | None
    disputed: bool


@dataclass(frozen=True)
class MemberStatus:
    state: Literal["ok", "disputed"]
    # When the dispute began (the earliest competing rotation's ts), and those rotations.
    since: int | None = None
    rotations: tuple[bytes, ...] = field(default=())


class Directory:
    """The identity view over a growing set of identity objects."""

    def __init__(self, objects: Iterable[SignedObject] = ()) -> None:
        self._seen: set[bytes] = set()
        self._members: dict[bytes, MemberObjects] = {}
        self._certs: dict[bytes, SignedObject] = {}
        # Ids of `device` objects that break the kind's rules (a bad consent signature).
        self._bad_certs: set[bytes] = set()
        # Device key -> earliest ts of a certificate naming it (the cert-less rule).
        self._device_since: dict[bytes, int] = {}
        self._endorsements: dict[bytes, list[SignedObject]] = {}
        self._views: dict[bytes, MemberView] = {}
        # Key -> [(member, span)]: the roots that rotations made (genesis roots are in
        # `_views`), over every member's current view.
        self._roots: dict[bytes, list[tuple[bytes, RootSpan]]] = {}
        # Members with a recovery rotation: decided together by the fixed point.
        self._recovering: set[bytes] = set()
        self._dirty: set[bytes] = set()
        for obj in objects:
            self.add(obj)

    # ---- input ----------------------------------------------------------------------

    def add(self, obj: SignedObject, understood: bool | None = None) -> bool:
        """File an identity object whose envelope and signature were checked (a stored
        object). Returns False (and ignores it) for other kinds, hidden or opaque objects
        and repeats. `understood`: whether this release's rules accept it, when the caller
        knows already (a store's visible/hidden verdict); None checks it here."""
        if obj.kind not in IDENTITY_KINDS or obj.id in self._seen:
            return False
        if understood is None:
            understood = validity.understood(obj).code is None
        if not understood:
            if obj.kind == "device":
                self._bad_certs.add(obj.id)
            return False
        self._seen.add(obj.id)
        body = obj.body
        member: bytes = body["member"]
        if obj.kind == "endorsement":
            self._endorsements.setdefault(body["rotation"], []).append(obj)
            self._dirty.add(member)
            return True
        objs = self._members.setdefault(member, MemberObjects())
        if obj.kind == "device":
            objs.certs.append(obj)
            self._certs[obj.id] = obj
            device = body["device"]
            self._device_since[device] = min(self._device_since.get(device, obj.ts), obj.ts)
            self._dirty.add(device)  # its own genesis root ends there
        elif obj.kind == "revoke":
            objs.revokes.append(obj)
        elif obj.kind == "recovery":
            objs.recoveries.append(obj)
        else:
            objs.rotations.append(obj)
            if body["mode"] == RECOVERY:
                self._recovering.add(member)
        self._dirty.add(member)
        return True

    # ---- queries --------------------------------------------------------------------

    def attribute(self, author: bytes, ts: int, oid: bytes, cert: bytes | None) -> Attribution:
        """Who the object (`author`, `ts`, id `oid`, naming certificate `cert`) speaks for."""
        self._refresh()
        return self._attribute(author, ts, oid, cert)

    def attribute_object(self, obj: SignedObject) -> Attribution:
        return self.attribute(obj.author, obj.ts, obj.id, cert_of(obj))

    def member_of_root(self, key: bytes) -> bytes | None:
        """The member `key` is (or was) a root of; a key with no identity history is its own
        member; a certified device key that is no root is None."""
        self._refresh()
        entries = self._roots.get(key)
        if entries:
            return min(entries, key=_entry_order)[0]
        return None if key in self._device_since and key not in self._views else key

    def status(self, member: bytes) -> MemberStatus:
        self._refresh()
        view = self._views.get(member)
        if view is None or view.dispute_since is None:
            return MemberStatus("ok")
        return MemberStatus("disputed", view.dispute_since, view.competing)

    def devices(self, member: bytes) -> list[DeviceInfo]:
        self._refresh()
        view = self._views.get(member)
        if view is None:
            return []
        out = []
        for c in sorted(self._members[member].certs, key=_obj_order):
            state = view.certs[c.id]
            key = c.body["device"]
            out.append(DeviceInfo(c.body["name"], key, c.id, c.ts, state is not None,
                                  view.revoked_since.get(key)))  # fmt: skip
        return out

    def member_keys(self, member: bytes) -> list[KeyInfo]:
        """The member's roots (with their validity) and devices (valid from their
        certificate's ts until revoked)."""
        self._refresh()
        view = self._views.get(member)
        if view is None:
            return [KeyInfo(member, "root", -1, None, False)]
        keys = [KeyInfo(s.key, "root", s.start, s.end, s.disputed) for s in view.spans]
        for d in self.devices(member):
            if d.valid:
                state = view.certs[d.cert]
                keys.append(KeyInfo(d.key, "device", d.ts, d.revoked_since, bool(state)))
        return keys

    # ---- the rules ------------------------------------------------------------------

    def _attribute(self, author: bytes, ts: int, oid: bytes, cert: bytes | None) -> Attribution:
        if cert is not None:
            c = self._certs.get(cert)
            if c is None:
                return UNATTRIBUTED if cert in self._bad_certs else PENDING
            member: bytes = c.body["member"]
            if c.body["device"] != author:
                return UNATTRIBUTED
            view = self._views.get(member)
            disputed = None if view is None else view.certs.get(cert)
            if disputed is None:  # the certifying key was no root of the member then
                return UNATTRIBUTED
            assert view is not None
            since = view.revoked_since.get(author)
            if (since is not None and ts >= since) or oid in view.disowned.get(author, ()):
                return UNATTRIBUTED
            return Attribution(member, author, "disputed" if disputed else "member")
        entries = self._roots.get(author)
        if entries:  # a key a rotation made a root: it is no longer its own member
            for member, span in sorted(entries, key=_entry_order):
                if span.holds(ts):
                    return Attribution(member, None, "disputed" if span.disputed else "member")
            return UNATTRIBUTED  # a root, but not at that time
        own = self._views.get(author)
        if own is not None:
            return Attribution(author, None, "member") if own.genesis.holds(ts) else UNATTRIBUTED
        since = self._device_since.get(author)
        if since is not None and ts >= since:
            return UNATTRIBUTED  # a device must name its certificate
        return Attribution(author, None, "member")  # a single-key member

    # ---- recomputation --------------------------------------------------------------

    def _refresh(self) -> None:
        if not self._dirty:
            return
        dirty, self._dirty = self._dirty, set()
        for member in sorted(dirty - self._recovering):
            objs = self._members.get(member)
            if objs is not None:
                self._install(member, self._compute(member, frozenset()))
        if self._recovering:
            self._settle_recoveries()

    def _settle_recoveries(self) -> None:
        """The recovery fixed point: from no recovery rotation effective, decide each one
        against the previous round's view until nothing changes. A cycle (rotations whose
        endorsements lose their authority once they take effect) settles on the rotations
        effective in every round of the cycle: never more than the evidence supports."""
        members = sorted(self._recovering)
        endorsed: frozenset[bytes] = frozenset()
        seen = [endorsed]
        for _ in range(MAX_RECOVERY_ROUNDS):
            self._install_all(members, endorsed)
            nxt = frozenset(
                r.id for m in members for r in self._members[m].rotations if self._backed(m, r)
            )
            if nxt == endorsed:
                return
            if nxt in seen:
                cycle = seen[seen.index(nxt) :]
                endorsed = frozenset.intersection(*cycle)
                break
            seen.append(nxt)
            endorsed = nxt
        else:
            endorsed = seen[-1] & seen[-2]
        self._install_all(members, endorsed)

    def _install_all(self, members: list[bytes], endorsed: frozenset[bytes]) -> None:
        for m in members:
            self._install(m, self._compute(m, endorsed))

    def _compute(self, member: bytes, endorsed: frozenset[bytes]) -> MemberView:
        objs = self._members[member]
        return compute_view(member, objs, endorsed, self._device_since.get(member))

    def _backed(self, member: bytes, rotation: SignedObject) -> bool:
        """Whether a recovery rotation has endorsements attributed to at least `threshold`
        distinct contacts of the recovery set in effect at its ts."""
        if rotation.body["mode"] != RECOVERY:
            return False
        rset: RecoverySet | None = self._views[member].recovery_at(rotation.ts)
        if rset is None:
            return False
        backers: set[bytes] = set()
        for e in self._endorsements.get(rotation.id, ()):
            if e.body["member"] != member:
                continue
            a = self._attribute(e.author, e.ts, e.id, cert_of(e))
            if a.status == "member" and a.member in rset.contacts:
                backers.add(a.member)
        return len(backers) >= rset.threshold

    def _install(self, member: bytes, view: MemberView) -> None:
        old = self._views.get(member)
        if old is not None:
            for span in old.spans[1:]:
                rest = [e for e in self._roots[span.key] if e[0] != member]
                if rest:
                    self._roots[span.key] = rest
                else:
                    del self._roots[span.key]
        self._views[member] = view
        for span in view.spans[1:]:
            self._roots.setdefault(span.key, []).append((member, span))


def _entry_order(entry: tuple[bytes, RootSpan]) -> tuple[int, bytes]:
    return entry[1].start, entry[0]


def _obj_order(obj: SignedObject) -> tuple[int, bytes]:
    return obj.ts, obj.id

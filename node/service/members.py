"""The node's identity view: a `protocols.attribution.Directory` over every stored identity
object (docs/identity.md), kept current by an ingest listener.

Built once per store (`attach`), from the five identity kinds read through the `by_kind`
index in one read transaction (plus the identity objects stored hidden: a hidden certificate
makes the objects naming it unattributed, not pending). Every stored batch then reaches
`on_stored` on the ingest's thread; queries come from RPC and HTTP worker threads, so every
access to the Directory (whose queries recompute lazily, i.e. write) holds one lock.

Measured (`python -m bench.members`): 10,000 members with 2 devices and a revocation each
(30,000 objects) load in 1.2 s on an idle reference machine (3.6 s beside a test run), ~85% of
it `Directory.add` checking each object's validity again (a full decode and the device's
consent signature), which stored visible objects already passed; the first query then settles
every member's view in 0.17 s.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from node.ingest.pipeline import Ingest
from node.store.read import prefix_keys
from node.store.store import Store, Stored
from protocols.attribution import Attribution, DeviceInfo, Directory, KeyInfo, MemberStatus
from protocols.identity import IDENTITY_KINDS
from protocols.objects import SignedObject, decode_checked, object_id


@dataclass(frozen=True)
class CertInfo:
    """A `device` certificate naming a device key, for `whoami` without the passphrase."""

    cert: bytes
    member: bytes
    name: str
    ts: int


class Members:
    """A thread-safe Directory of one store's identity objects."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._dir = Directory()
        # Device key -> the certificates naming it (any member), for whoami and `device list`.
        self._certs_of: dict[bytes, list[CertInfo]] = {}
        self._ingests: weakref.WeakSet[Ingest] = weakref.WeakSet()
        # Bumped by every identity object filed: views computed from attributions (project
        # histories, node/service/living.py) are stale once it moved.
        self.generation = 0

    # ---- input ----------------------------------------------------------------------

    def add_all(self, objects: Iterable[SignedObject], visible: bool | None = None) -> None:
        """File `objects`; `visible`: the store's verdict on them under this release's rules
        (so the Directory need not check their schemas and countersignatures again)."""
        with self._lock:
            for obj in objects:
                self._add(obj, visible)

    def _add(self, obj: SignedObject, visible: bool | None = None) -> None:
        self.generation += 1
        if self._dir.add(obj, visible) and obj.kind == "device":
            b = obj.body
            info = CertInfo(obj.id, b["member"], b["name"], obj.ts)
            self._certs_of.setdefault(b["device"], []).append(info)

    def on_stored(self, stored: list[Stored]) -> None:
        """Ingest listener (the ingest caller's or writer's thread)."""
        found = [s for s in stored if s.obj.kind in IDENTITY_KINDS]
        if found:
            with self._lock:
                for st in found:
                    self._add(st.obj, st.visible)

    def listen(self, ingest: Ingest) -> None:
        with self._lock:
            if ingest not in self._ingests:
                self._ingests.add(ingest)
                ingest.listeners.append(self.on_stored)

    def load(self, store: Store) -> None:
        """Every identity object of `store`, in one read transaction."""
        visible: list[SignedObject] = []
        hidden: list[SignedObject] = []
        with store.read() as txn:
            objects_db = store.db["objects"]
            for kind in IDENTITY_KINDS:
                for key in prefix_keys(txn, store.db["by_kind"], kind.encode() + b"\0"):
                    raw = txn.get(key[-8:], db=objects_db)
                    if raw:
                        visible.append(decode_checked(raw, object_id(raw)))
            # Hidden identity objects (few): the Directory files hidden certificates apart.
            for seq, _ in txn.cursor(db=store.db["unindexed"]):
                raw = txn.get(seq, db=objects_db)
                if raw and _identity_kind(raw):
                    hidden.append(decode_checked(raw, object_id(raw)))
        # The store's verdicts stand: the schemas and countersignatures are not checked again.
        self.add_all(visible, visible=True)
        self.add_all(hidden, visible=False)

    # ---- queries --------------------------------------------------------------------

    def attribute(self, obj: SignedObject) -> Attribution:
        with self._lock:
            return self._dir.attribute_object(obj)

    def member_keys(self, member: bytes) -> list[KeyInfo]:
        with self._lock:
            return self._dir.member_keys(member)

    def devices(self, member: bytes) -> list[DeviceInfo]:
        with self._lock:
            return self._dir.devices(member)

    def status(self, member: bytes) -> MemberStatus:
        with self._lock:
            return self._dir.status(member)

    def member_of_root(self, key: bytes) -> bytes | None:
        with self._lock:
            return self._dir.member_of_root(key)

    def certs_of(self, device: bytes) -> list[CertInfo]:
        with self._lock:
            return list(self._certs_of.get(device, ()))

    def knows_member(self, member: bytes) -> bool:
        """Whether any identity object names `member` (else it is a plain single key)."""
        with self._lock:
            return member in self._dir._members

    def rotations(self, member: bytes) -> list[SignedObject]:
        """The member's rotation objects, oldest first (recovery show, rotate)."""
        with self._lock:
            objs = self._dir._members.get(member)
            return sorted(objs.rotations, key=lambda o: (o.ts, o.id)) if objs else []

    def recoveries(self, member: bytes) -> list[SignedObject]:
        with self._lock:
            objs = self._dir._members.get(member)
            return sorted(objs.recoveries, key=lambda o: (o.ts, o.id)) if objs else []

    def endorsements(self, rotation: bytes) -> list[SignedObject]:
        with self._lock:
            return list(self._dir._endorsements.get(rotation, ()))

    def current_roots(self, member: bytes) -> list[bytes]:
        """The member's roots valid now (open intervals): one, or several in a dispute."""
        return [k.key for k in self.member_keys(member) if k.role == "root" and k.end is None]


def _identity_kind(raw: bytes) -> bool:
    # Canonical bytes: 0x96, the version, then the kind as a fixstr.
    n = raw[2] - 0xA0 if len(raw) > 2 and 0xA0 <= raw[2] <= 0xBF else -1
    return n > 0 and raw[3 : 3 + n].decode("utf-8", "replace") in IDENTITY_KINDS


_attached: weakref.WeakKeyDictionary[Store, Members] = weakref.WeakKeyDictionary()
_attach_lock = threading.Lock()


def attach(store: Store, ingest: Ingest | None = None) -> Members:
    """The store's Members (built at the first call), listening to `ingest`."""
    with _attach_lock:
        members = _attached.get(store)
        if members is None:
            members = Members()
            if ingest is not None:
                members.listen(ingest)  # before the read: nothing stored meanwhile is missed
            members.load(store)
            _attached[store] = members
        elif ingest is not None:
            members.listen(ingest)
    return members


def of_store(store: Store) -> Members:
    """The store's attached Members; one built now (not kept) for a store no Service
    attached (a bare store in a test or a tool)."""
    members = _attached.get(store)
    if members is None:
        members = Members()
        members.load(store)
    return members


def attribution_fields(a: Attribution) -> dict[str, Any]:
    return {"member": a.member.hex() if a.member is not None else None,
            "attribution": a.status}  # fmt: skip

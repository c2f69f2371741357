"""Labs without a chief in the node (issue 24, docs/governance.md): each lab's authority
(`protocols.lab_authority.replay` of its decisions), kept per store and fed by ingest, and the
moderation of an object for the member looking at it.

Built like node/service/living.py: one registry per store (`attach`), an ingest listener, one
lock, an LRU of at most MAX_CACHED_LABS authorities, each replayed on demand from the store's
`decisions` index (a lab's decisions in (ts, id) order). A stored decision, a retraction in
the lab, or the lab itself arriving drops the lab's entry (the next query replays it: ~30 ms
for 10,000 decisions); attribution decides who signed each decision, so an entry is replayed
again once `Members.generation` moved.

Moderation layers (docs/governance.md §1): the lab's status of its own objects, the labs
whose decisions this node follows (their hidden set applies everywhere here), and this node's
own choices (muted members, hidden objects: node/service/local_moderation.py).
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from node.ingest.pipeline import Ingest
from node.service.local_moderation import LocalModeration
from node.service.members import Members
from node.service.registry import PerStore
from node.store.read import U64, prefix_items, prefix_keys, u64
from node.store.store import Store, Stored
from protocols import kinds
from protocols.governance import DECISION_KIND
from protocols.lab_authority import LabAuthority, replay
from protocols.objects import SignedObject, decode_checked, object_id

log = logging.getLogger(__name__)

# Lab authorities kept in memory (least recently used dropped first).
MAX_CACHED_LABS = 256
SHOWN, QUEUED, HIDDEN = "shown", "queued", "hidden"
NODE = "node"  # `hidden_by` of what this node hides on its own (mute, hide)
MUTED_REASON = "author muted on this node"
LOCAL_REASON = "hidden on this node"
SUSPENDED_REASON = "author suspended in the lab"


class LocalChoices(Protocol):
    """This node's own moderation (node/service/local_moderation.py `LocalModeration`)."""

    def muted(self) -> frozenset[bytes]: ...

    def hidden(self) -> frozenset[bytes]: ...

    def decisions_followed(self) -> frozenset[bytes]: ...


def local_choices(store: Store) -> LocalChoices:
    """The store's local moderation (every instance of one store shares its cache)."""
    return LocalModeration(store)


@dataclass(frozen=True)
class LabState:
    """A lab's authority and what the RPC needs beside it: its decisions by id (the log's
    fields), and who suspended each suspended member (`hidden_by` of their objects)."""

    lab: SignedObject
    authority: LabAuthority
    decisions: dict[bytes, SignedObject]
    suspended_by: dict[bytes, tuple[bytes | None, str]]
    generation: int


@dataclass(frozen=True)
class Held:
    """An object of a lab that the lab itself does not show (status hidden or queued), with
    what counts need of it: a tag's target and labels."""

    id: bytes
    seq: bytes
    ts: int
    kind: str
    member: bytes | None
    status: str
    target: bytes | None = None
    labels: tuple[str, ...] = ()

    @staticmethod
    def of(obj: SignedObject, seq: bytes, member: bytes | None, status: str) -> Held:
        target = obj.body.get("target") if obj.kind == "tag" else None
        labels = tuple(obj.body["labels"]) if obj.kind == "tag" else ()
        return Held(obj.id, seq, obj.ts, obj.kind, member, status,
                    target if isinstance(target, bytes) else None, labels)  # fmt: skip


class Governance:
    """Thread-safe authorities of one store's labs (ingest thread and query threads)."""

    def __init__(self, store: Store, members: Members) -> None:
        self.store, self.members = store, members
        self._lock = threading.RLock()
        self._cache: OrderedDict[bytes, LabState] = OrderedDict()
        self._ingests: weakref.WeakSet[Ingest] = weakref.WeakSet()
        # lab -> (Members.generation, the store's last sequence its scan saw, its objects
        # the lab does not show: `held`); a new object of the lab is added to it on arrival.
        self._held: dict[bytes, tuple[int, int, list[Held]]] = {}
        self.builds = 0  # replays from the store (tests read it)

    def state(self, lab: bytes) -> LabState | None:
        """The lab's state, None when no live lab of that id is here."""
        with self._lock:
            entry = self._cache.get(lab)
            if entry is not None and entry.generation == self.members.generation:
                self._cache.move_to_end(lab)
                return entry
            entry = self._build(lab)
            if entry is None:
                self._cache.pop(lab, None)
                return None
            self._cache[lab] = entry
            while len(self._cache) > MAX_CACHED_LABS:
                self._cache.popitem(last=False)
            return entry

    def authority(self, lab: bytes) -> LabAuthority | None:
        entry = self.state(lab)
        return entry.authority if entry is not None else None

    def forget(self, lab: bytes | None = None) -> None:
        with self._lock:
            if lab is None:
                self._cache.clear()
                self._held.clear()
            else:
                self._cache.pop(lab, None)
                self._held.pop(lab, None)

    def queued(self, lab: bytes) -> list[bytes]:
        """Sequences of the lab's queued objects, newest first (from `held`)."""
        return [h.seq for h in self.held(lab) if h.status == QUEUED]

    def held(self, lab: bytes) -> list[Held]:
        """The lab's objects that the lab itself hides or queues, newest first; cached until
        a decision, retraction or the lab is stored or attribution moves (its other new
        objects are added on arrival: `on_stored`). A lab that hides nothing by
        rule costs nothing; one that only hides objects by id, a lookup per id; one that
        queues or suspends, one scan of its objects."""
        state = self.state(lab)
        if state is None:
            return []
        a = state.authority
        scan = bool(a.suspended) or QUEUED in (a.rules.posts, a.rules.replies)
        if not scan and not a.hidden:
            return []
        with self._lock:
            generation = self.members.generation
            hit = self._held.get(lab)
            if hit is not None and hit[0] == generation:
                return hit[2]
            found: list[Held] = []
            with self.store.read() as txn:
                cur = txn.cursor(db=self.store.db["objects"])
                seen = U64.unpack(cur.key())[0] if cur.last() else 0
                if scan:
                    seqs: Iterable[bytes] = (bytes(k[-8:]) for k in
                                             prefix_keys(txn, self.store.db["by_lab"], lab))
                else:
                    seqs = [q for oid in a.hidden if (q := self.store.seq_of(txn, oid))]
                for seq in seqs:
                    obj = object_of(self.store, txn, seq)
                    if (obj is None or obj.kind in ("lab", DECISION_KIND)
                            or kinds.scope_of(obj.body) != lab):  # fmt: skip
                        continue
                    member = self._member(obj)
                    status = a.status(obj, member)
                    if status != SHOWN:
                        found.append(Held.of(obj, seq, member, status))
            found.sort(key=lambda h: (h.ts, h.seq), reverse=True)
            if len(self._held) >= MAX_CACHED_LABS:
                self._held.clear()
            self._held[lab] = (generation, seen, found)
            return found

    def labs_with_decisions(self) -> list[bytes]:
        """Labs that have decisions here (one seek each in the `decisions` index): only
        they can hide or queue anything by their own authority."""
        out: list[bytes] = []
        with self.store.read() as txn:
            cur = txn.cursor(db=self.store.db["decisions"])
            found = cur.set_range(b"")
            while found:
                lab = bytes(cur.key()[:32])
                out.append(lab)
                found = cur.set_range(lab + b"\xff" * 41)  # past every key of the lab
        return out

    def _build(self, lab_id: bytes) -> LabState | None:
        generation = self.members.generation
        decisions: dict[bytes, SignedObject] = {}
        with self.store.read() as txn:
            lab = self.store.get(txn, lab_id)
            if lab is None or lab.kind != "lab":
                return None
            objects, unindexed = self.store.db["objects"], self.store.db["unindexed"]
            for key, seq in prefix_items(txn, self.store.db["decisions"], lab_id):
                raw = txn.get(seq, db=objects)
                if raw and txn.get(seq, db=unindexed) is None:
                    obj = decode_checked(raw, bytes(key[40:72]))
                    decisions[obj.id] = obj
        authority = replay(lab, decisions.values(), self._member)
        suspended_by: dict[bytes, tuple[bytes | None, str]] = {}
        for e in authority.log:  # who suspended each member still suspended, and why
            if e.effect == "applied" and e.act == "suspend":
                body = decisions[e.id].body
                suspended_by[body["subject"]] = (e.by, body.get("reason", ""))
        self.builds += 1
        return LabState(lab, authority, decisions, suspended_by, generation)

    def _member(self, obj: SignedObject) -> bytes | None:
        return self.members.attribute(obj).member

    # ---- input -------------------------------------------------------------------------

    def listen(self, ingest: Ingest) -> None:
        with self._lock:
            if ingest not in self._ingests:
                self._ingests.add(ingest)
                ingest.listeners.append(self.on_stored)

    def on_stored(self, stored: list[Stored]) -> None:
        """Ingest listener: drop the labs a batch changes (their next query replays: a
        decision, a retraction, the lab), and add the other new objects a lab holds to its
        cached `held` (a flood of queued posts costs no scan of the lab per batch)."""
        touched: set[bytes] = set()
        new: dict[bytes, list[Stored]] = {}  # lab -> its other new objects
        for st in stored:
            obj = st.obj
            if obj.kind == "lab":
                touched.add(obj.id)
            elif obj.kind in (DECISION_KIND, "retraction"):
                touched.add(kinds.scope_of(obj.body))
            elif (scope := kinds.scope_of(obj.body)) != kinds.PUBLIC_SCOPE:
                new.setdefault(scope, []).append(st)
        with self._lock:
            for lab in touched:
                self._cache.pop(lab, None)
                self._held.pop(lab, None)
            for lab, arrived in new.items():
                if lab not in touched and lab in self._held:
                    self._add_held(lab, arrived)

    def _add_held(self, lab: bytes, arrived: list[Stored]) -> None:
        """Add a lab's new objects to its cached `held` (under the lock); drop the entry
        when the lab's authority or attribution it was made with is gone."""
        generation, seen, found = self._held[lab]
        state = self._cache.get(lab)
        if (generation != self.members.generation or state is None
                or state.generation != generation):  # fmt: skip
            self._held.pop(lab, None)
            return
        added: list[Held] = []
        objects, unindexed = self.store.db["objects"], self.store.db["unindexed"]
        with self.store.read() as txn:
            for st in arrived:
                if st.seq <= seen or not st.visible:
                    continue  # already in the scan, or not shown here at all
                seq = u64(st.seq)
                if not txn.get(seq, db=objects) or txn.get(seq, db=unindexed) is not None:
                    continue  # withdrawn before it arrived (a tombstone): as `object_of`
                member = self._member(st.obj)
                status = state.authority.status(st.obj, member)
                if status != SHOWN:
                    added.append(Held.of(st.obj, seq, member, status))
        last = max(seen, max(st.seq for st in arrived))
        if added:  # a new list: readers may be walking the old one
            found = sorted([*found, *added], key=lambda h: (h.ts, h.seq), reverse=True)
        self._held[lab] = (generation, last, found)


_REGISTRIES = PerStore(Governance)
# The store's registry, made at the first call and fed by `ingest` (node/service/registry.py).
attach = _REGISTRIES.attach
# The store's attached registry; for a bare store (a tool, a test) one made now and not kept.
of_store = _REGISTRIES.of_store


def object_of(store: Store, txn: Any, seq: bytes) -> SignedObject | None:
    """A live, shown object by sequence (for the queue's scan)."""
    raw = txn.get(seq, db=store.db["objects"])
    if not raw or txn.get(seq, db=store.db["unindexed"]) is not None:
        return None
    return decode_checked(raw, object_id(raw))

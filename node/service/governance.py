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
from node.service.members import attach as attach_members
from node.service.members import of_store as members_of_store
from node.store.read import prefix_items, prefix_keys
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


class Governance:
    """Thread-safe authorities of one store's labs (ingest thread and query threads)."""

    def __init__(self, store: Store, members: Members) -> None:
        self.store, self.members = store, members
        self._lock = threading.RLock()
        self._cache: OrderedDict[bytes, LabState] = OrderedDict()
        self._ingests: weakref.WeakSet[Ingest] = weakref.WeakSet()
        # lab -> (Members.generation, seqs of its queued objects, newest first)
        self._queued: dict[bytes, tuple[int, list[bytes]]] = {}
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
                self._queued.clear()
            else:
                self._cache.pop(lab, None)
                self._queued.pop(lab, None)

    def queued(self, lab: bytes) -> list[bytes]:
        """Sequences of the lab's queued objects, newest first (cached until an object of
        the lab is stored or attribution moves). A lab whose rules queue nothing has none:
        no scan; else one scan of the lab's objects."""
        with self._lock:
            generation = self.members.generation
            hit = self._queued.get(lab)
            if hit is not None and hit[0] == generation:
                return hit[1]
            state = self.state(lab)
            found: list[tuple[int, bytes]] = []
            rules = state.authority.rules if state is not None else None
            if state is not None and rules is not None and QUEUED in (rules.posts, rules.replies):
                with self.store.read() as txn:
                    for key in prefix_keys(txn, self.store.db["by_lab"], lab):
                        obj = object_of(self.store, txn, bytes(key[-8:]))
                        if obj is None or obj.kind in ("lab", DECISION_KIND):
                            continue
                        if state.authority.status(obj, self._member(obj)) == QUEUED:
                            found.append((obj.ts, bytes(key[-8:])))
            seqs = [seq for _, seq in sorted(found, reverse=True)]
            if len(self._queued) >= MAX_CACHED_LABS:
                self._queued.clear()
            self._queued[lab] = (generation, seqs)
            return seqs

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
        """Ingest listener: drop the labs a batch changes (their next query replays)."""
        touched: set[bytes] = set()
        scopes: set[bytes] = set()  # any object of a lab may join or leave its queue
        for st in stored:
            obj = st.obj
            scopes.add(obj.id if obj.kind == "lab" else kinds.scope_of(obj.body))
            if obj.kind == "lab":
                touched.add(obj.id)
            elif obj.kind in (DECISION_KIND, "retraction"):
                touched.add(kinds.scope_of(obj.body))
        with self._lock:
            for lab in touched:
                self._cache.pop(lab, None)
            for lab in scopes:
                self._queued.pop(lab, None)


@dataclass(frozen=True)
class Verdict:
    status: str  # shown | queued | hidden
    by: str | None = None  # hidden: member hex, or "node"
    reason: str = ""


_SHOWN = Verdict(SHOWN)


class Moderation:
    """How objects show to one member in one read: the lab's status of objects of a lab,
    the followed labs' hidden sets, this node's own choices. `listed(obj)` is what lists,
    search, feeds and counts keep: shown objects, the viewer's own queued ones, and all of
    them with `show_hidden`."""

    def __init__(self, governance: Governance, viewer: bytes | None = None,
                 show_hidden: bool = False, local: LocalChoices | None = None) -> None:  # fmt: skip
        self.governance, self.viewer, self.show_hidden = governance, viewer, show_hidden
        local = local if local is not None else local_choices(governance.store)
        self.muted, self.local_hidden = local.muted(), local.hidden()
        self.followed = [a for lab in sorted(local.decisions_followed())
                         if (a := governance.authority(lab)) is not None]  # fmt: skip
        self._labs: dict[bytes, LabState | None] = {}
        self._verdicts: dict[bytes, Verdict] = {}

    def lab(self, lab: bytes) -> LabState | None:
        if lab not in self._labs:
            self._labs[lab] = self.governance.state(lab)
        return self._labs[lab]

    def verdict(self, obj: SignedObject, member: bytes | None = None) -> Verdict:
        found = self._verdicts.get(obj.id)
        if found is None:
            if member is None:
                member = self.governance.members.attribute(obj).member
            found = self._verdicts[obj.id] = self._judge(obj, member)
        return found

    def _judge(self, obj: SignedObject, member: bytes | None) -> Verdict:
        scope = obj.id if obj.kind == "lab" else kinds.scope_of(obj.body)
        lab = self.lab(scope) if scope != kinds.PUBLIC_SCOPE else None
        status = SHOWN
        if lab is not None:
            status = lab.authority.status(obj, member)
            if status == HIDDEN:
                hit = lab.authority.hidden.get(obj.id)
                by, reason = hit if hit is not None else (None, "")
                if hit is None and member is not None:  # its author is suspended
                    by, reason = lab.suspended_by.get(member, (None, ""))
                    reason = reason or SUSPENDED_REASON
                return Verdict(HIDDEN, by.hex() if by is not None else None, reason)
        for authority in self.followed:
            hit = authority.hidden.get(obj.id)
            if hit is not None:
                return Verdict(HIDDEN, hit[0].hex(), hit[1])
        if obj.id in self.local_hidden:
            return Verdict(HIDDEN, NODE, LOCAL_REASON)
        if member is not None and member in self.muted:
            return Verdict(HIDDEN, NODE, MUTED_REASON)
        return _SHOWN if status == SHOWN else Verdict(status)

    def listed(self, obj: SignedObject, member: bytes | None = None) -> bool:
        v = self.verdict(obj, member)
        if v.status == SHOWN or self.show_hidden:
            return True
        if v.status == QUEUED:  # the author sees their own post, marked queued
            if member is None:
                member = self.governance.members.attribute(obj).member
            return member is not None and member == self.viewer
        return False

    def keep(self, objs: Iterable[SignedObject]) -> list[SignedObject]:
        return [o for o in objs if self.listed(o)]

    def listed_view(self, v: dict[str, Any]) -> bool:
        """`listed` of an object view already made (its `moderation` and `member`)."""
        status = v.get("moderation", SHOWN)
        if status == SHOWN or self.show_hidden:
            return True
        mine = self.viewer is not None and v.get("member") == self.viewer.hex()
        return status == QUEUED and mine

    def may_hide(self, lab: bytes) -> bool:
        """Whether a reply in `lab` may be left out of lists (else counts need no decoding):
        the lab hides, suspends or queues replies, or this node hides or mutes anything."""
        if self.show_hidden:
            return False
        if self.muted or self.local_hidden or any(a.hidden for a in self.followed):
            return True
        state = self.lab(lab)
        if state is None:
            return False
        a = state.authority
        return bool(a.hidden or a.suspended) or a.rules.replies != SHOWN

    @staticmethod
    def fields(v: Verdict) -> dict[str, Any]:
        out: dict[str, Any] = {"moderation": v.status}
        if v.status == HIDDEN:
            out["hidden_by"], out["hidden_reason"] = v.by, v.reason
        return out


_attached: weakref.WeakKeyDictionary[Store, Governance] = weakref.WeakKeyDictionary()
_attach_lock = threading.Lock()


def attach(store: Store, ingest: Ingest, members: Members | None = None) -> Governance:
    """The store's Governance registry (made at the first call), listening to `ingest`."""
    with _attach_lock:
        gov = _attached.get(store)
        if gov is None:
            gov = _attached[store] = Governance(store, members or attach_members(store, ingest))
        gov.listen(ingest)
    return gov


def of_store(store: Store, members: Members | None = None) -> Governance:
    """The store's attached registry; for a bare store (a tool, a test) one made now and not
    kept."""
    gov = _attached.get(store)
    if gov is None:
        gov = Governance(store, members if members is not None else members_of_store(store))
    return gov


def object_of(store: Store, txn: Any, seq: bytes) -> SignedObject | None:
    """A live, shown object by sequence (for the queue's scan)."""
    raw = txn.get(seq, db=store.db["objects"])
    if not raw or txn.get(seq, db=store.db["unindexed"]) is not None:
        return None
    return decode_checked(raw, object_id(raw))

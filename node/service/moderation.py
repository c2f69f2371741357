"""How objects show to one member in one read (issue 24, docs/governance.md §9): the lab's
status of its objects (node/service/governance.py replays it), the hidden sets of the labs
whose decisions this node follows, and this node's own choices (muted members, hidden objects:
node/service/local_moderation.py); and the counts that follow the lists.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from node.service.governance import (
    HIDDEN,
    LOCAL_REASON,
    MUTED_REASON,
    NODE,
    QUEUED,
    SHOWN,
    SUSPENDED_REASON,
    Governance,
    Held,
    LabState,
    LocalChoices,
    local_choices,
    object_of,
)
from node.store.read import prefix_items, prefix_keys
from protocols import kinds
from protocols.objects import SignedObject

log = logging.getLogger(__name__)


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
        self._authors: dict[bytes, bytes | None] = {}  # the member each verdict judged
        self._may_hide: dict[bytes, bool] = {}
        # For counts (read once per Moderation, on demand): below.
        self._anywhere: list[SignedObject] | None = None
        self._unlisted: dict[bytes, dict[bytes, str]] = {}
        self._held_out: dict[bytes, tuple[frozenset[bytes], frozenset[bytes]]] = {}
        self._label_fixes: tuple[dict[str, int], set[tuple[str, bytes]]] | None = None

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
            self._authors[obj.id] = member
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
            if member is None:  # as the verdict judged it: no second attribution
                member = self._authors.get(obj.id)
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
        hit = self._may_hide.get(lab)
        if hit is None:
            hit = self._may_hide[lab] = self._may_hide_reply(lab)
        return hit

    def _may_hide_reply(self, lab: bytes) -> bool:
        if self.show_hidden:
            return False
        if self.muted or self.local_hidden or any(a.hidden for a in self.followed):
            return True
        state = self.lab(lab) if lab != kinds.PUBLIC_SCOPE else None
        if state is None:
            return False
        a = state.authority
        return bool(a.hidden or a.suspended) or a.rules.replies != SHOWN

    # ---- counts: the store's counters less what lists leave out ------------------------

    def _keeps(self, h: Held) -> bool:
        """Whether lists keep an object its lab holds: the viewer's own queued one."""
        return h.status == QUEUED and h.member is not None and h.member == self.viewer

    def held_out(self, lab: bytes) -> tuple[frozenset[bytes], frozenset[bytes]]:
        """(sequences, ids) of the lab's objects it holds that lists leave out for this
        viewer (all but their own queued ones): a page skips them before reading them.
        Those hidden only here or by a followed lab are not in it (`listed` sees them)."""
        if self.show_hidden:
            return frozenset(), frozenset()
        hit = self._held_out.get(lab)
        if hit is None:
            out = [h for h in self.governance.held(lab) if not self._keeps(h)]
            hit = self._held_out[lab] = (frozenset(h.seq for h in out),
                                         frozenset(h.id for h in out))  # fmt: skip
        return hit

    def hidden_anywhere(self) -> list[SignedObject]:
        """Live objects hidden here whatever their lab: named by a followed lab's or this
        node's hidden set, or signed for a muted member (each checked by `verdict`). Read
        once per Moderation; nothing to read when none is set (the common case)."""
        if self._anywhere is None:
            ids = set(self.local_hidden).union(*(a.hidden for a in self.followed))
            found: dict[bytes, SignedObject] = {}
            store = self.governance.store
            if not self.show_hidden and (ids or self.muted):
                with store.read() as txn:
                    seqs = [q for oid in ids if (q := store.seq_of(txn, oid)) is not None]
                    for m in self.muted:  # every key that ever spoke for it
                        for key in {k.key for k in self.governance.members.member_keys(m)} | {m}:
                            seqs += (bytes(k[-8:]) for k in
                                     prefix_keys(txn, store.db["by_author"], key))  # fmt: skip
                    for seq in seqs:
                        obj = object_of(store, txn, seq)
                        if obj is not None:
                            found[obj.id] = obj
            self._anywhere = [o for o in found.values() if self.verdict(o).status == HIDDEN]
        return self._anywhere

    def unlisted(self, lab: bytes) -> dict[bytes, str]:
        """The lab's live objects that lists leave out for this viewer (id -> kind): those
        the lab holds (`Governance.held`) but the viewer's own queued ones, and those
        hidden anywhere here. Empty without a read when nothing can hide or queue."""
        if self.show_hidden:
            return {}
        hit = self._unlisted.get(lab)
        if hit is None:
            hit = {h.id: h.kind for h in self.governance.held(lab) if not self._keeps(h)}
            hit |= {o.id: o.kind for o in self.hidden_anywhere()
                    if kinds.scope_of(o.body) == lab}  # fmt: skip
            self._unlisted[lab] = hit
        return hit

    def project_count(self, lab: bytes, total: int) -> int:
        """A lab's listed projects from its store counter `total`."""
        left_out = sum(1 for kind in self.unlisted(lab).values() if kind == "project")
        return max(0, total - left_out)

    def all_projects_count(self, total: int) -> int:
        """Listed projects of every lab from the store's counter `total`: only labs with
        decisions, and what is hidden anywhere, can leave any out."""
        if self.show_hidden:
            return total
        left_out = {o.id for o in self.hidden_anywhere() if o.kind == "project"}
        for lab in self.governance.labs_with_decisions():
            left_out.update(oid for oid, kind in self.unlisted(lab).items() if kind == "project")
        return max(0, total - len(left_out))

    def label_fixes(self) -> tuple[dict[str, int], set[tuple[str, bytes]]]:
        """What the store's label counts (distinct objects tagged with each label) count
        that lists do not: (label -> amount to add, a negative number; the (label, target)
        pairs to leave out). A target counts for a label when it is listed and a listed tag
        on it carries the label (as a project's view shows its `tags`): a hidden or others'
        queued target, and a tag hidden or queued (its author muted or suspended...), count
        nothing. Only targets of such objects are read again."""
        if self._label_fixes is not None:
            return self._label_fixes
        targets: set[bytes] = set()
        if not self.show_hidden:
            held = [h for lab in self.governance.labs_with_decisions()
                    for h in self.governance.held(lab) if not self._keeps(h)]  # fmt: skip
            targets.update(h.target if h.target is not None else h.id for h in held)
            for o in self.hidden_anywhere():
                target = o.body.get("target") if o.kind == "tag" else None
                targets.add(target if isinstance(target, bytes) else o.id)
        delta: dict[str, int] = {}
        dropped: set[tuple[str, bytes]] = set()
        store = self.governance.store
        with store.read() as txn:
            for t in sorted(targets):
                tseq = store.seq_of(txn, t)
                obj = object_of(store, txn, tseq) if tseq is not None else None
                target_listed = obj is None or self.listed(obj)  # not here: as the counter
                counted: set[str] = set()
                kept: set[str] = set()
                for key, value in prefix_items(txn, store.db["by_target"], t):
                    tag = object_of(store, txn, bytes(key[-8:])) if value[:4] == b"tag\0" else None
                    if tag is not None:
                        counted.update(tag.body["labels"])
                        if target_listed and self.listed(tag):
                            kept.update(tag.body["labels"])
                for label in counted - kept:
                    delta[label] = delta.get(label, 0) - 1
                    dropped.add((label, t))
        self._label_fixes = (delta, dropped)
        return self._label_fixes

    @staticmethod
    def fields(v: Verdict) -> dict[str, Any]:
        out: dict[str, Any] = {"moderation": v.status}
        if v.status == HIDDEN:
            out["hidden_by"], out["hidden_reason"] = v.by, v.reason
        return out

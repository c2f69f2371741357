"""The visible state of a living project: a pure, deterministic replay of its revisions
(docs/protocol.md §3.3, "Revisions"; rules 1-5 below are quoted there).

`ProjectHistory` holds one project and the revisions that target it, added in any order,
and answers `state()` (the fields a node shows) and `history()` (every revision with what it
changed and whether it took effect). The answer is a function of the *set* of revisions (and
the ids known withdrawn or foreign) alone: every node holding the same objects shows the same
project, whatever order they arrived in. Who a revision speaks for (its member) is an input,
computed by the node with protocols/attribution.py; the replay never looks at keys.

1. Nodes: the project P and every revision R with R.target == P. Links: R.supersedes. A link
   to P or to a revision of P held here is met; to an id known withdrawn ("gone") is met (its
   effect is gone, its children stand); to an id held that is not P or a revision of P is
   forged (R has no effect); to an id not held: R waits (no effect until it arrives), and so
   does everything that supersedes R.
2. Order: Kahn's topological order of the met links, always taking the ready node with the
   smallest (ts, id).
3. Replay from P's fields: R has effect iff R.lab == P.lab, its links are not forged, and
   R.member is an author at that point (the creator or a current co-author). An applied R sets
   each field of its `set` (whole values: per-field last-writer-wins in replay order). The
   creator is never a co-author (ignored in the list) and cannot be removed.
4. Removal fence: a revision by M concurrent with (neither ancestor nor descendant of) an
   applied revision removing M from the co-authors has no effect; replay again without the
   fenced revisions until no new one is fenced.
5. Fast path: a new R whose links are all met by placed nodes, on which nothing waits, whose
   (ts, id) is above every node's, whose member was never removed and which removes nobody is
   appended in O(|changes|); anything else marks the history for a full replay, done lazily.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any, Final

from protocols import project_dag as dag
from protocols.living import REVISABLE, project_fields, revisable_changes
from protocols.objects import SignedObject

APPLIED: Final = "applied"
NOT_AUTHOR: Final = "not_author"
REMOVED_CONCURRENTLY: Final = "removed_concurrently"
FORGED_LINK: Final = "forged_link"
WRONG_LAB: Final = "wrong_lab"
WAITING: Final = "waiting"
EFFECTS = (APPLIED, NOT_AUTHOR, REMOVED_CONCURRENTLY, FORGED_LINK, WRONG_LAB, WAITING)
_REVISABLE = frozenset(REVISABLE)
_COAUTHORS = "coauthors"


@dataclass(frozen=True, slots=True)
class RevisionRecord:
    """What the replay needs of one stored, visible revision."""

    id: bytes
    ts: int
    member: bytes | None  # the member it is attributed to (None: speaks for nobody)
    lab: bytes | None
    target: bytes
    supersedes: tuple[bytes, ...]
    changes: Mapping[str, Any]  # known revisable fields only, values as on the wire
    note: str = ""

    @classmethod
    def of(cls, obj: SignedObject, member: bytes | None) -> RevisionRecord:
        """The record of a visible `revision` object attributed to `member`."""
        body = obj.body
        return cls(
            id=obj.id,
            ts=obj.ts,
            member=member,
            lab=body.get("lab"),
            target=body["target"],
            supersedes=tuple(body["supersedes"]),
            changes=revisable_changes(body),
            note=body.get("note", ""),
        )


@dataclass(frozen=True)
class ProjectState:
    fields: Mapping[str, Any]  # title, summary, body, stage, needs, licence, coauthors, derives
    creator: bytes | None  # member of the project object
    authors: frozenset[bytes]  # creator + coauthors
    heads: tuple[bytes, ...]  # applied tips of the DAG (what a new revision supersedes), sorted
    applied: int  # revisions with effect
    revised_ts: int | None  # the highest ts of an applied revision


@dataclass(frozen=True)
class HistoryEntry:
    id: bytes
    ts: int
    member: bytes | None
    supersedes: tuple[bytes, ...]
    # field -> (value before, value after) at its place in the replay; for a revision without
    # effect, (the value at that point, the value it proposed); for a waiting one, (the current
    # value, the value it proposes).
    changes: Mapping[str, tuple[Any, Any]]
    note: str
    effect: str  # one of EFFECTS


class ProjectHistory:
    """One project's revision DAG, with its state cached and kept incrementally when it can."""

    def __init__(self, project_id: bytes, creator: bytes | None, lab: bytes,
                 base: Mapping[str, Any]) -> None:  # fmt: skip
        self.project_id = project_id
        self.creator = creator
        self.lab = lab
        self._base = self._normal(project_fields(base))
        self._recs: dict[bytes, RevisionRecord] = {}
        self._linked: dict[bytes, list[bytes]] = {}  # link id -> revisions naming it
        self._by_member: dict[bytes, list[bytes]] = {}  # member -> their revisions held
        self._gone: set[bytes] = set()
        self._foreign: set[bytes] = set()
        self._max_key: tuple[int, bytes] | None = None
        self._dirty = True
        # The replay's results (valid when not dirty).
        self._order: list[bytes] = []
        self._effect: dict[bytes, str] = {}
        self._waiting: set[bytes] = set()
        self._fields: dict[str, Any] = {}
        self._coauthors: set[bytes] = set()
        self._heads: set[bytes] = set()
        self._applied = 0
        self._revised_ts: int | None = None
        # Every removal of any replay pass, as bits: removed member -> the removals removing
        # them, placed revision -> the removals that are it or its ancestors (rules 4-5).
        self._removed_by: dict[bytes, int] = {}
        self._above: dict[bytes, int] = {}
        self._depth: dict[bytes, int] = {}  # placed revision -> 1 + its deepest parent's
        self._missed: list[bytes] = []  # placed revisions without effect (of the last pass)
        self._state: ProjectState | None = None
        self._waiting_sorted: list[bytes] | None = None  # by (ts, id), made when asked

    # ---- input -------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._recs)

    def __contains__(self, rid: object) -> bool:
        return rid in self._recs

    def add(self, rec: RevisionRecord) -> None:
        """File a revision of this project (idempotent; a withdrawn id stays withdrawn)."""
        if rec.target != self.project_id:
            raise ValueError(
                f"revision {rec.id.hex()} targets {rec.target.hex()}, not {self.project_id.hex()}"
            )
        rid = rec.id
        if rid in self._recs or rid in self._gone:
            return
        if not _REVISABLE.issuperset(rec.changes):
            rec = replace(rec, changes={k: v for k, v in rec.changes.items() if k in _REVISABLE})
        fast = not self._dirty and self._can_append(rec)
        self._recs[rid] = rec
        for link in rec.supersedes:
            self._linked.setdefault(link, []).append(rid)
        if rec.member is not None:
            self._by_member.setdefault(rec.member, []).append(rid)
        key = (rec.ts, rid)
        if self._max_key is None or key > self._max_key:
            self._max_key = key
        if fast:
            self._append(rec)
        else:
            self._invalidate()

    def remove(self, rid: bytes) -> None:
        """A revision retracted (or withdrawn): its effect is gone, links to it stay met."""
        self._gone.add(rid)
        self._foreign.discard(rid)
        rec = self._recs.pop(rid, None)
        if rec is None:
            if rid in self._linked:
                self._invalidate()
            return
        for link in rec.supersedes:
            children = self._linked[link]
            children.remove(rid)
            if not children:
                del self._linked[link]
        if rec.member is not None:
            mine = self._by_member[rec.member]
            mine.remove(rid)
            if not mine:
                del self._by_member[rec.member]
        if self._max_key is not None and self._max_key[1] == rid:
            self._max_key = max(((r.ts, i) for i, r in self._recs.items()), default=None)
        self._invalidate()

    def mark_gone(self, ids: Iterable[bytes]) -> None:
        """Ids known withdrawn (retracted): links to them are met; held ones are removed."""
        for rid in ids:
            if rid not in self._gone or rid in self._recs:
                self.remove(rid)

    def mark_foreign(self, ids: Iterable[bytes]) -> None:
        """Ids held here that are not revisions of this project: links to them are forged."""
        for oid in ids:
            if oid in self._foreign or oid in self._recs or oid in self._gone:
                continue
            if oid == self.project_id:
                continue
            self._foreign.add(oid)
            if oid in self._linked:
                self._invalidate()

    # ---- queries -----------------------------------------------------------------------

    def unresolved(self) -> set[bytes]:
        """Superseded ids neither here, withdrawn nor foreign: what the history waits for."""
        p, recs, gone, foreign = self.project_id, self._recs, self._gone, self._foreign
        return {
            link
            for link in self._linked
            if link != p and link not in recs and link not in gone and link not in foreign
        }

    def state(self) -> ProjectState:
        if self._dirty:
            self._replay()
        if self._state is None:
            creator = self.creator
            authors = set(self._coauthors)
            if creator is not None:
                authors.add(creator)
            self._state = ProjectState(
                fields=MappingProxyType(dict(self._fields)),
                creator=creator,
                authors=frozenset(authors),
                heads=tuple(sorted(self._heads)) if self._heads else (self.project_id,),
                applied=self._applied,
                revised_ts=self._revised_ts,
            )
        return self._state

    def effect(self, rid: bytes) -> str | None:
        """The effect of a held revision (None if not held)."""
        if rid not in self._recs:
            return None
        if self._dirty:
            self._replay()
        return self._effect[rid]

    def history(self) -> list[HistoryEntry]:
        """Every held revision in replay order (oldest first), then the waiting ones by
        (ts, id)."""
        return self.history_slice(0, None)

    def history_len(self) -> int:
        """len(history()), without building it."""
        if self._dirty:
            self._replay()
        return len(self._order) + len(self._waiting)

    def history_slice(self, start: int, end: int | None = None) -> list[HistoryEntry]:
        """history()[start:end], built alone (a page): O(end - start), plus a look back for
        the values before `start` of the fields the page changes (to the newest applied
        revision setting each, or P's fields)."""
        if self._dirty:
            self._replay()
        recs, effect, creator, order = self._recs, self._effect, self.creator, self._order
        placed = len(order)
        start, end, _ = slice(start, end).indices(placed + len(self._waiting))
        out: list[HistoryEntry] = []
        if start < min(end, placed):
            page = order[start:end]
            fields = self._fields_before(start, {n for rid in page for n in recs[rid].changes})
            for rid in page:
                rec = recs[rid]
                e = effect[rid]
                out.append(entry := _entry(rec, fields, e, creator))
                if e == APPLIED:
                    for name, (_, new) in entry.changes.items():
                        fields[name] = new
        if end > placed:
            if self._waiting_sorted is None:
                self._waiting_sorted = sorted(self._waiting, key=lambda r: (recs[r].ts, r))
            final = self._fields
            for rid in self._waiting_sorted[max(start - placed, 0) : end - placed]:
                out.append(_entry(recs[rid], final, WAITING, creator))
        return out

    def _fields_before(self, pos: int, names: set[str]) -> dict[str, Any]:
        """The values of `names` when the replay reaches order[pos]."""
        recs, effect, order, creator = self._recs, self._effect, self._order, self.creator
        fields: dict[str, Any] = {}
        want = set(names)
        while want and pos > 0:
            pos -= 1
            rid = order[pos]
            if effect[rid] != APPLIED:
                continue
            for name, value in recs[rid].changes.items():
                if name in want:
                    want.discard(name)
                    fields[name] = _normal_value(name, value, creator)
        for name in want:
            fields[name] = self._base[name]
        return fields

    # ---- the fast path (rule 5) --------------------------------------------------------

    def _can_append(self, rec: RevisionRecord) -> bool:
        rid = rec.id
        if self._max_key is not None and (rec.ts, rid) <= self._max_key:
            return False
        if rid in self._linked or rid in self._foreign:  # something waits on it
            return False
        p, recs, waiting, gone = self.project_id, self._recs, self._waiting, self._gone
        for link in rec.supersedes:
            if not (link == p or (link in recs and link not in waiting) or link in gone):
                return False
        need = self._removed_by.get(rec.member, 0) if rec.member is not None else 0
        if need:  # its member was removed: only below every such removal
            above = self._above
            mask = 0
            for link in rec.supersedes:
                mask |= above.get(link, 0)
            if need & ~mask:
                return False
        if _COAUTHORS in rec.changes:
            new = set(rec.changes[_COAUTHORS])
            if not self._coauthors <= new:
                return False
        return True

    def _append(self, rec: RevisionRecord) -> None:
        rid = rec.id
        effect = self._judge(rec, False, False, self._authors())
        self._order.append(rid)
        self._effect[rid] = effect
        if effect == APPLIED:
            self._apply_changes(rec, self._fields)
            self._applied += 1
            if self._revised_ts is None or rec.ts > self._revised_ts:
                self._revised_ts = rec.ts
            links = set(rec.supersedes)
            recs, depth = self._recs, self._depth
            self._heads = {
                h
                for h in self._heads
                if h not in links and not dag.is_ancestor(h, rec, recs, depth)
            }
            self._heads.add(rid)
        self._depth[rid] = dag.depth_of(rec, self._depth)
        if self._removed_by:
            mask = 0
            for link in rec.supersedes:
                mask |= self._above.get(link, 0)
            self._above[rid] = mask
        self._state = None

    # ---- the full replay (rules 1-4) ---------------------------------------------------

    def _invalidate(self) -> None:
        self._dirty = True
        self._state = None

    def _authors(self) -> set[bytes]:
        authors = set(self._coauthors)
        if self.creator is not None:
            authors.add(self.creator)
        return authors

    def _normal(self, fields: dict[str, Any]) -> dict[str, Any]:
        co = fields.get(_COAUTHORS)
        if co and self.creator is not None and self.creator in co:
            fields[_COAUTHORS] = [m for m in co if m != self.creator]
        return fields

    def _judge(self, rec: RevisionRecord, forged: bool, fenced: bool,
               authors: set[bytes]) -> str:  # fmt: skip
        if rec.lab != self.lab:
            return WRONG_LAB
        if forged:
            return FORGED_LINK
        if fenced:
            return REMOVED_CONCURRENTLY
        if rec.member is None or rec.member not in authors:
            return NOT_AUTHOR
        return APPLIED

    def _apply_changes(self, rec: RevisionRecord, fields: dict[str, Any]) -> set[bytes]:
        """Set the record's fields; returns the co-authors it removed."""
        removed: set[bytes] = set()
        for name, value in rec.changes.items():
            if name == _COAUTHORS:
                if self.creator is not None and self.creator in value:
                    value = [m for m in value if m != self.creator]
                new = set(value)
                removed = self._coauthors - new
                self._coauthors = new
            fields[name] = value
        return removed

    def _pass(self, order: list[bytes], forged: set[bytes],
              fenced: set[bytes]) -> dag.Removals:  # fmt: skip
        """Rule 3: one replay from P's fields; returns the applied removals (and leaves the
        revisions without effect in self._missed)."""
        recs, lab = self._recs, self.lab
        self._fields = fields = dict(self._base)
        self._coauthors = set(fields[_COAUTHORS])
        authors = self._authors()
        effect = self._effect = dict.fromkeys(order, APPLIED)  # then the exceptions
        missed: list[bytes] = []
        removals: dag.Removals = []
        revised: int | None = None
        for rid in order:  # _judge, inlined: the hot loop of a full replay
            rec = recs[rid]
            if rec.lab != lab:
                effect[rid] = WRONG_LAB
            elif rid in forged:
                effect[rid] = FORGED_LINK
            elif rid in fenced:
                effect[rid] = REMOVED_CONCURRENTLY
            elif rec.member not in authors:  # None never is
                effect[rid] = NOT_AUTHOR
            else:
                if revised is None or rec.ts > revised:
                    revised = rec.ts
                changes = rec.changes
                if _COAUTHORS in changes:
                    removed = self._apply_changes(rec, fields)
                    authors = self._authors()
                    if removed:
                        removals.append((rid, removed))
                else:
                    fields.update(changes)
                continue
            missed.append(rid)
        self._applied, self._revised_ts = len(order) - len(missed), revised
        self._missed = missed
        return removals

    def _replay(self) -> None:
        recs = self._recs
        placement = dag.place(self.project_id, recs, self._linked, self._gone, self._foreign)
        order, waiting, forged = placement.order, placement.waiting, placement.forged
        fenced: set[bytes] = set()
        every: dict[bytes, set[bytes]] = {}  # the removals of every pass
        last: tuple[dag.Removals, dag.Masks] | None = None  # the last fence's input and masks
        while True:
            removals = self._pass(order, forged, fenced)
            for x, members in removals:
                every.setdefault(x, set()).update(members)
            if not removals or (last is not None and last[0] == removals):
                break  # no fence, or the same fence as the last pass: nothing new fenced
            placed, by_member = placement.depth, self._by_member
            candidates = [rid for _, members in removals for m in members
                          for rid in by_member.get(m, ()) if rid in placed]  # fmt: skip
            new, masks = dag.fenced(order, recs, self._linked, removals, candidates)
            last = (removals, masks)
            new -= fenced
            if not new:
                break
            fenced |= new
        for rid in waiting:
            self._effect[rid] = WAITING
        self._order, self._waiting = order, waiting
        self._waiting_sorted = None
        if not every:
            self._above, self._removed_by = {}, {}
        elif last is not None and last[0] == list(every.items()):
            self._above, self._removed_by = last[1]  # the usual case: one set of removals
        else:
            self._above, self._removed_by = dag.removal_masks(order, recs, list(every.items()))
        self._depth = placement.depth
        applied = set(order)
        applied.difference_update(self._missed)
        self._heads = dag.tips(order, recs, applied)
        self._dirty = False
        self._state = None


def _entry(rec: RevisionRecord, fields: Mapping[str, Any], effect: str,
           creator: bytes | None) -> HistoryEntry:  # fmt: skip
    changes: dict[str, tuple[Any, Any]] = {}
    for name, value in rec.changes.items():
        if name in _REVISABLE:
            changes[name] = (fields[name], _normal_value(name, value, creator))
    return HistoryEntry(rec.id, rec.ts, rec.member, rec.supersedes, changes, rec.note, effect)


def _normal_value(name: str, value: Any, creator: bytes | None) -> Any:
    """A field's value as the replay sets it: the creator is never listed as a co-author."""
    if name == _COAUTHORS and creator is not None and creator in value:
        return [m for m in value if m != creator]
    return value

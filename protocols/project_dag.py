"""The graph half of a project's replay (protocols/project_history.py): placing revisions
(docs/protocol.md §3.3, rules 1-2) and the ancestry questions of rules 4-5. Pure functions
over the revisions held (`recs`: id -> node with `id`, `ts`, `supersedes`, `member`) and
the reverse links (`linked`: link id -> ids of the revisions naming it)."""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass
from itertools import compress, islice
from operator import attrgetter, eq
from typing import Protocol


class Node(Protocol):
    @property
    def id(self) -> bytes: ...

    @property
    def ts(self) -> int: ...

    @property
    def supersedes(self) -> tuple[bytes, ...]: ...

    @property
    def member(self) -> bytes | None: ...


Recs = Mapping[bytes, Node]  # id -> node
_TS, _ID = attrgetter("ts"), attrgetter("id")
Linked = Mapping[bytes, list[bytes]]


@dataclass(frozen=True)
class Placement:
    order: list[bytes]  # the placed revisions, in replay order
    waiting: set[bytes]  # not placed: a link not held (or below one that is not)
    forged: set[bytes]  # placed, with a link to an object that is not a revision of P
    depth: dict[bytes, int]  # placed revision -> 1 + its deepest placed parent's


def place(project: bytes, recs: Recs, linked: Linked, gone: Set[bytes],
          foreign: Set[bytes]) -> Placement:  # fmt: skip
    """Rules 1-2: which revisions wait, which are forged, and Kahn's topological order of the
    others, always taking the ready revision with the smallest (ts, id).

    When the (ts, id) order is itself topological (every revision newer than what it
    supersedes: the usual case), it *is* that order (Kahn's always finds the smallest node
    ready, and the smallest left is ready): one sort and one sweep. Otherwise, Kahn's."""
    placement = _sweep(project, recs, gone, foreign, by_key(recs))
    return placement if placement is not None else kahn(project, recs, linked, gone, foreign)


def by_key(recs: Recs) -> list[Node]:
    """The nodes sorted by (ts, id): by ts (no tuple per node), then each run of equal ts by
    id."""
    nodes = sorted(recs.values(), key=_TS)
    ts = list(map(_TS, nodes))
    # i where ts[i] == ts[i - 1], all found in C.
    ties = compress(range(1, len(ts)), map(eq, ts, islice(ts, 1, None)))
    start = end = -1  # the run of equal ts being gathered: nodes[start:end]
    for i in ties:
        if i != end:
            if end - start > 1:
                nodes[start:end] = sorted(nodes[start:end], key=_ID)
            start = i - 1
        end = i + 1
    if end - start > 1:
        nodes[start:end] = sorted(nodes[start:end], key=_ID)
    return nodes


def _sweep(project: bytes, recs: Recs, gone: Set[bytes], foreign: Set[bytes],
           nodes: list[Node]) -> Placement | None:  # fmt: skip
    """`place` over the revisions in (ts, id) order; None if one supersedes a later one."""
    waiting: set[bytes] = set()
    forged: set[bytes] = set()
    order: list[bytes] = []
    depth: dict[bytes, int] = {}  # also: the placed revisions
    for node in nodes:
        rid = node.id
        d = 1
        for link in node.supersedes:
            if link in recs:
                up = depth.get(link)
                if up is None:
                    if link in waiting:  # below a waiting revision
                        waiting.add(rid)
                        break
                    return None  # a link to a later revision: not this order
                if up >= d:
                    d = up + 1
            elif link == project or link in gone:
                continue
            elif link in foreign:
                forged.add(rid)
            else:
                waiting.add(rid)
                break
        else:
            order.append(rid)
            depth[rid] = d
    forged -= waiting
    return Placement(order, waiting, forged, depth)


def kahn(project: bytes, recs: Recs, linked: Linked, gone: Set[bytes],
         foreign: Set[bytes]) -> Placement:  # fmt: skip
    """`place` by Kahn's algorithm, whatever the timestamps."""
    waiting: set[bytes] = set()
    forged: set[bytes] = set()
    indegree: dict[bytes, int] = {}
    heap: list[tuple[int, bytes]] = []
    for rid, rec in recs.items():
        parents = 0
        for link in rec.supersedes:
            if link in recs:
                parents += 1
            elif link == project or link in gone:
                continue
            elif link in foreign:
                forged.add(rid)
            else:
                waiting.add(rid)
                break
        if parents:
            indegree[rid] = parents
        else:
            heap.append((rec.ts, rid))
    if waiting:
        stack = list(waiting)
        while stack:
            for child in linked.get(stack.pop(), ()):
                if child not in waiting:
                    waiting.add(child)
                    stack.append(child)
        heap = [item for item in heap if item[1] not in waiting]
    heapq.heapify(heap)
    order: list[bytes] = []
    depth: dict[bytes, int] = {}
    pop, push = heapq.heappop, heapq.heappush
    while heap:
        rid = pop(heap)[1]
        order.append(rid)
        d = depth.setdefault(rid, 1) + 1
        for child in linked.get(rid, ()):
            left = indegree.get(child)
            if left is None or child in waiting:
                continue
            if depth.get(child, 0) < d:
                depth[child] = d
            if left == 1:
                del indegree[child]
                push(heap, (recs[child].ts, child))
            else:
                indegree[child] = left - 1
    # What is left never became ready: below a waiting revision, or in a cycle (which needs a
    # SHA-256 preimage): never placed.
    waiting.update(indegree)
    if waiting:
        forged -= waiting
        depth = {rid: depth[rid] for rid in order}
    return Placement(order, waiting, forged, depth)


def depth_of(rec: Node, depth: Mapping[bytes, int]) -> int:
    return 1 + max((depth[link] for link in rec.supersedes if link in depth), default=0)


def is_ancestor(head: bytes, rec: Node, recs: Recs, depth: Mapping[bytes, int]) -> bool:
    """Whether the placed revision `head` is an ancestor of `rec`. Depths prune the walk: a
    revision no deeper than `head` cannot have it as an ancestor."""
    links = rec.supersedes
    if head in links:
        return True
    floor = depth[head]
    seen: set[bytes] = set()
    stack = [link for link in links if depth.get(link, 0) > floor]
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        for link in recs[node].supersedes:
            if link == head:
                return True
            if depth.get(link, 0) > floor:
                stack.append(link)
    return False


Removals = list[tuple[bytes, set[bytes]]]  # (revision X, the members X removes)
Masks = tuple[dict[bytes, int], dict[bytes, int]]  # (above, removed_by): see removal_masks


def removal_masks(order: list[bytes], recs: Recs, removals: Removals) -> Masks:
    """One bit per removal: for each placed revision, the removals that are it or its
    ancestors ("above"; a revision with none is left out: read it with .get(rid, 0)), and for
    each removed member, the removals that remove them. The removals are placed revisions."""
    bit = {x: 1 << i for i, (x, _) in enumerate(removals)}
    removed_by: dict[bytes, int] = {}
    for x, members in removals:
        for m in members:
            removed_by[m] = removed_by.get(m, 0) | bit[x]
    above: dict[bytes, int] = {}
    if not bit:
        return above, removed_by
    first = min(order.index(x) for x in bit)  # nothing before it has a removal above
    get = above.get
    for rid in order[first:]:
        mask = bit.get(rid, 0)
        for link in recs[rid].supersedes:
            mask |= get(link, 0)
        if mask:
            above[rid] = mask
    return above, removed_by


def fenced(order: list[bytes], recs: Recs, linked: Linked, removals: Removals,
           candidates: Iterable[bytes] | None = None) -> tuple[set[bytes], Masks]:  # fmt: skip
    """Rule 4: the placed revisions by a member that a removal X removes and that are neither
    ancestors nor descendants of X (nor X), with the removal masks. The removal bits carried
    down the order (above) and up it (below): O(revisions + links) whatever the number of
    removals. `candidates`: the placed revisions by a member removed (None: read them all).
    """
    masks = removal_masks(order, recs, removals)
    above, removed_by = masks
    out: set[bytes] = set()
    if not removed_by:
        return out, masks
    bit = {x: 1 << i for i, (x, _) in enumerate(removals)}
    last = max(order.index(x) for x in bit)  # nothing after it has a removal below
    below: dict[bytes, int] = {}  # removals that are this revision or its descendants
    get = below.get
    for rid in reversed(order[: last + 1]):
        mask = bit.get(rid, 0)
        for child in linked.get(rid, ()):
            mask |= get(child, 0)
        if mask:
            below[rid] = mask
    for rid in order if candidates is None else candidates:
        who = recs[rid].member
        if who is None or who not in removed_by:
            continue
        if removed_by[who] & ~(above.get(rid, 0) | get(rid, 0)):
            out.add(rid)
    return out, masks


def tips(order: list[bytes], recs: Recs, keep: Set[bytes]) -> set[bytes]:
    """The revisions of `keep` (the applied ones) with no descendant in `keep`: a walk of the
    replay order backwards, children before parents."""
    below: set[bytes] = set()  # revisions with a kept descendant
    out: set[bytes] = set()
    for rid in reversed(order):
        if rid in below:
            below.update(recs[rid].supersedes)
        elif rid in keep:
            out.add(rid)
            below.update(recs[rid].supersedes)
    return out

"""The graph half of a project's replay (protocols/project_history.py): placing revisions
(docs/protocol.md §3.3, rules 1-2) and the ancestry questions of rules 4-5. Pure functions
over the revisions held (`recs`: id -> node with `ts` and `supersedes`) and the reverse links
(`linked`: link id -> ids of the revisions naming it)."""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Set
from dataclasses import dataclass
from typing import Protocol


class Node(Protocol):
    @property
    def ts(self) -> int: ...

    @property
    def supersedes(self) -> tuple[bytes, ...]: ...


Recs = Mapping[bytes, Node]
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
    others, always taking the ready revision with the smallest (ts, id)."""
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


def removal_masks(order: list[bytes], recs: Recs,
                  removals: Removals) -> tuple[dict[bytes, int], dict[bytes, int]]:  # fmt: skip
    """One bit per removal: for each placed revision, the removals that are it or its
    ancestors ("above"), and for each removed member, the removals that remove them."""
    bit = {x: 1 << i for i, (x, _) in enumerate(removals)}
    removed_by: dict[bytes, int] = {}
    for x, members in removals:
        for m in members:
            removed_by[m] = removed_by.get(m, 0) | bit[x]
    above: dict[bytes, int] = {}
    for rid in order:
        mask = bit.get(rid, 0)
        for link in recs[rid].supersedes:
            mask |= above.get(link, 0)
        above[rid] = mask
    return above, removed_by


def fenced(order: list[bytes], recs: Recs, linked: Linked, removals: Removals,
           member: Mapping[bytes, bytes | None]) -> set[bytes]:  # fmt: skip
    """Rule 4: the placed revisions by a member that a removal X removes and that are neither
    ancestors nor descendants of X (nor X). The removal bits carried down the order (above)
    and up it (below): O(revisions + links) whatever the number of removals."""
    above, removed_by = removal_masks(order, recs, removals)
    bit = {x: 1 << i for i, (x, _) in enumerate(removals)}
    below: dict[bytes, int] = {}  # removals that are this revision or its descendants
    for rid in reversed(order):
        mask = bit.get(rid, 0)
        for child in linked.get(rid, ()):
            mask |= below.get(child, 0)
        below[rid] = mask
    out: set[bytes] = set()
    for rid in order:
        who = member[rid]
        mask = removed_by.get(who, 0) if who is not None else 0
        if mask & ~(above[rid] | below[rid]):
            out.add(rid)
    return out


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

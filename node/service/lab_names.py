"""Lab names that look alike (protocols/names.py `skeleton`): which known labs clash, and the
labs a typed name may mean (node/service/queries.py `resolve_lab`).

The index is built from the store's `by_kind` index of labs and kept per store, keyed by the
number of labs and of retractions stored (a new lab or a withdrawn one changes it): a rebuild
decodes only the labs it has not seen (labs are never edited), so after the first build of
10,000 labs a new one costs a scan of the keys (milliseconds).
"""

from __future__ import annotations

import logging
import threading
import unicodedata
import weakref
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from node.store.read import U64, prefix_keys
from node.store.store import Store
from protocols.names import skeleton
from protocols.objects import decode_checked, object_id

log = logging.getLogger(__name__)

_LAB_KEYS = b"lab\0"


@dataclass(frozen=True)
class LabName:
    id: bytes
    name: str
    place: str
    skeleton: str
    fold: str  # the name as resolve_lab compares it exactly: casefolded, NFKC


def fold(name: str) -> str:
    """A name as typed, compared "exactly but for case"."""
    return " ".join(unicodedata.normalize("NFKC", name).casefold().split())


@dataclass(frozen=True)
class NameIndex:
    by_skeleton: dict[str, tuple[LabName, ...]]
    by_fold: dict[str, tuple[LabName, ...]]
    clashes: frozenset[bytes]  # labs sharing a skeleton or a folded name with another


class _Cache:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.key: tuple[int, int] | None = None
        self.index: NameIndex | None = None
        self.by_seq: dict[bytes, LabName] = {}


_CACHES: weakref.WeakKeyDictionary[Store, _Cache] = weakref.WeakKeyDictionary()
_CACHES_LOCK = threading.Lock()


def _counter(store: Store, txn: Any, name: str) -> int:
    raw = txn.get(name.encode(), db=store.db["meta"])
    return int(U64.unpack(raw)[0]) if raw else 0


def _load(store: Store, txn: Any, seq: bytes) -> LabName | None:
    raw = txn.get(seq, db=store.db["objects"])
    if not raw or txn.get(seq, db=store.db["unindexed"]) is not None:
        return None
    obj = decode_checked(raw, object_id(raw))
    name = obj.body["name"]
    return LabName(obj.id, name, obj.body.get("place", ""), skeleton(name), fold(name))


def _build(
    store: Store, txn: Any, old: dict[bytes, LabName]
) -> tuple[NameIndex, dict[bytes, LabName]]:
    by_seq: dict[bytes, LabName] = {}
    for key in prefix_keys(txn, store.db["by_kind"], _LAB_KEYS):
        seq = bytes(key[-8:])
        lab = old.get(seq) or _load(store, txn, seq)
        if lab is not None:
            by_seq[seq] = lab
    skel: defaultdict[str, list[LabName]] = defaultdict(list)
    folded: defaultdict[str, list[LabName]] = defaultdict(list)
    for lab in by_seq.values():
        skel[lab.skeleton].append(lab)
        folded[lab.fold].append(lab)
    clashes = {
        lab.id for group in (*skel.values(), *folded.values()) if len(group) > 1 for lab in group
    }
    index = NameIndex(
        {k: tuple(v) for k, v in skel.items()},
        {k: tuple(v) for k, v in folded.items()},
        frozenset(clashes),
    )
    return index, by_seq


def index(store: Store, txn: Any) -> NameIndex:
    """The name index of the labs `txn` sees (rebuilt when labs were added or withdrawn)."""
    with _CACHES_LOCK:
        cache = _CACHES.get(store)
        if cache is None:
            cache = _CACHES[store] = _Cache()
    key = (_counter(store, txn, "count:lab"), _counter(store, txn, "count:retraction"))
    with cache.lock:
        if cache.index is None or cache.key != key:
            cache.index, cache.by_seq = _build(store, txn, cache.by_seq)
            cache.key = key
        return cache.index


def clashes(store: Store, txn: Any) -> frozenset[bytes]:
    """Known labs whose name is the same as, or confusable with, another known lab's (UIs
    show them as `name (short_id)`)."""
    return index(store, txn).clashes


def candidates(
    store: Store, txn: Any, name: str
) -> tuple[tuple[LabName, ...], tuple[LabName, ...]]:
    """(labs named `name` exactly but for case, labs whose name looks like it)."""
    idx = index(store, txn)
    return idx.by_fold.get(fold(name), ()), idx.by_skeleton.get(skeleton(name), ())

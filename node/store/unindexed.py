"""The one-off review of stored objects when the release changes what it understands.

Run by `Store` when it opens, before anything else writes (docs/protocol.md §3.2):

* Objects stored **opaque** (a kind or envelope version the release that stored them did not
  know) or **hidden** (their kind's schema refused them) are read again against this
  release's kinds. Those it now understands are indexed as if they had just arrived; those it
  still cannot show keep their mark, with the current reason. Nothing is fetched again.
* A kind whose `KindSpec.version` differs from the one recorded in the store (a release that
  added rules to a kind), and every kind when `RULES_REVISION` changed (a release that changed
  rules shared by all kinds, e.g. text), has its visible objects checked again; those that
  break the new rules become hidden (removed from the views, kept in the store and the
  reconciled set).

The store records each kind's version once done (`meta` "schema:<kind>") and a stamp of the
rules it was reviewed by, so a later open with the same release reads one key and stops.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any, Protocol

from node.store.read import U64, prefix_keys, u64
from protocols import kinds, validity
from protocols.objects import VERSION, SignedObject, decode


class Store(Protocol):
    """What the review needs of node/store/store.py's Store: its reads and its batch writes
    (a Protocol, so this module does not import the one that runs it at open)."""

    env: Any
    db: dict[str, Any]
    readonly: bool

    def read(self) -> Any: ...

    def _begin_batch(self, txn: Any) -> None: ...

    def _end_batch(self, txn: Any) -> None: ...

    def _flush(self, txn: Any) -> None: ...

    def _index(
        self, txn: Any, o: SignedObject, spec: kinds.KindSpec, seq: bytes, add: bool
    ) -> None: ...

    def _count(self, obj: SignedObject, spec: kinds.KindSpec, delta: int) -> None: ...

    def _add_unindexed(self, obj: SignedObject, seq: bytes, code: str) -> None: ...

    def _remove_unindexed(self, txn: Any, obj: SignedObject, seq: bytes, code: str) -> None: ...

log = logging.getLogger(__name__)

# Objects reviewed per write transaction (keeps one transaction's dirty pages bounded).
REVIEW_BATCH = 4096
# Bumped by a release that changes a validation rule of the envelope or of the text fields
# without a kind's version (e.g. 2: issue 20's text and label rules): every open store then
# reads its opaque and hidden objects once more against the new rules.
RULES_REVISION = 2
_SCHEMA_PREFIX = "schema:"
_STAMP_KEY = b"review:stamp"
_RULES_KEY = b"review:rules"


def rules_stamp() -> bytes:
    """What this process understands: the envelope version, every registered kind with its
    version, and the release's rule revision. The review runs only when it changes."""
    parts = [f"v{VERSION}", f"rules{RULES_REVISION}"]
    parts += sorted(f"{n}:{kinds.kind_spec(n).version}" for n in kinds.registered_kinds())
    return hashlib.sha256("\n".join(parts).encode()).digest()


def review(store: Store) -> None:
    stamp = rules_stamp()
    with store.read() as txn:
        if txn.get(_STAMP_KEY, db=store.db["meta"]) == stamp:
            return  # reviewed by this very set of rules already: nothing to read
    if store.readonly:  # the views stay as the last writer left them: all still readable
        log.info("store open read-only: not reviewing its objects against this release's rules")
        return
    with store.read() as txn:
        marks = [(bytes(k), bytes(v).decode()) for k, v in txn.cursor(db=store.db["unindexed"])]
        recorded = {
            name: _recorded_version(store, txn, name) for name in kinds.registered_kinds()
        }
        raw_rules = txn.get(_RULES_KEY, db=store.db["meta"])
    rules_changed = raw_rules is None or U64.unpack(raw_rules)[0] != RULES_REVISION
    bumped = [
        name for name, version in recorded.items()
        if rules_changed or version != kinds.kind_spec(name).version
    ]  # fmt: skip
    if marks:
        _review_marked(store, marks)
    for name in bumped:
        _review_kind(store, name)
    with store.env.begin(write=True) as txn:
        for name in recorded:
            key = (_SCHEMA_PREFIX + name).encode()
            txn.put(key, u64(kinds.kind_spec(name).version), db=store.db["meta"])
        txn.put(_RULES_KEY, u64(RULES_REVISION), db=store.db["meta"])
        txn.put(_STAMP_KEY, stamp, db=store.db["meta"])


def _recorded_version(store: Store, txn: Any, name: str) -> int | None:
    """The kind's version the store was last reviewed for; None if never recorded (a new
    store, or one older than this review: its objects were checked by older rules)."""
    raw = txn.get((_SCHEMA_PREFIX + name).encode(), db=store.db["meta"])
    if raw is not None:
        return int(U64.unpack(raw)[0])
    return None


def _review_marked(store: Store, marks: list[tuple[bytes, str]]) -> None:
    promoted = recoded = 0
    for start in range(0, len(marks), REVIEW_BATCH):
        with store.env.begin(write=True) as txn:
            store._begin_batch(txn)
            for seq, code in marks[start : start + REVIEW_BATCH]:
                raw = txn.get(seq, db=store.db["objects"])
                if not raw:  # withdrawn meanwhile (a retraction removes the mark too)
                    continue
                obj = decode(raw)
                verdict = validity.understood(obj)
                if verdict.code == code:
                    continue
                store._remove_unindexed(txn, obj, seq, code)
                if verdict.spec is not None:
                    store._index(txn, obj, verdict.spec, seq, add=True)
                    store._count(obj, verdict.spec, 1)
                    promoted += 1
                else:
                    assert verdict.code is not None
                    store._flush(txn)  # the sync key deleted above, before it is re-added
                    store._add_unindexed(obj, seq, verdict.code)
                    recoded += 1
            store._end_batch(txn)
    if promoted or recoded:
        log.info(
            "review of stored objects: %d now shown, %d with a new reason", promoted, recoded
        )


def _review_kind(store: Store, name: str) -> None:
    """Check the visible objects of a kind whose rules changed; hide those that break them."""
    with store.read() as txn:
        seqs = [bytes(k[-8:]) for k in prefix_keys(txn, store.db["by_kind"], name.encode() + b"\0")]
    if not seqs:
        return
    hidden = 0
    for start in range(0, len(seqs), REVIEW_BATCH):
        with store.env.begin(write=True) as txn:
            store._begin_batch(txn)
            for seq in seqs[start : start + REVIEW_BATCH]:
                raw = txn.get(seq, db=store.db["objects"])
                if not raw:
                    continue
                obj = decode(raw)
                verdict = validity.understood(obj)
                if verdict.code is None:
                    continue
                spec = kinds.kind_spec(name)
                store._index(txn, obj, spec, seq, add=False)
                store._count(obj, spec, -1)
                store._add_unindexed(obj, seq, verdict.code)
                hidden += 1
            store._end_batch(txn)
    log.info("kind %s has new rules: %d of %d stored objects now hidden", name, hidden, len(seqs))

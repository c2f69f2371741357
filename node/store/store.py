"""The object store on LMDB: signed objects by append sequence, plus the indexes.

Layout (one LMDB environment, named databases; all keys big-endian so byte order is
numeric order):

    objects   seq(8)                         -> signed bytes ("" once retracted)
    ids       id(32)                         -> seq(8)              every id but the newest
    ids_new   id(32)                         -> seq(8)              the newest ids (see below)
    tomb      id(32)                         -> retraction id(32)   withdrawn objects
    pending   target id(32) + retraction id  -> ""                  retraction came first
    by_kind   kind + 0 + ts(8) + seq(8)      -> ""
    by_author author(32) + ts(8) + seq(8)    -> ""
    by_lab    lab(32) + kind + 0 + ts + seq  -> ""
    by_target target(32) + ts(8) + seq(8)    -> kind + 0 + scope(32)  (counts, activity); every
                                                                    kind with a target but
    revisions project(32) + ts(8) + seq(8)   -> scope(32)           revisions, apart: a view of
                                                                    a project reads its comments
                                                                    without its 10,000 revisions
    by_label  label + 0 + ts(8) + target(32) -> ""                  newest-tagged first
    label_target label + 0 + target(32)      -> tags(8) + first ts(8)   one row per tagged object
    active    lab(32) + ts(8) + project(32) + seq(8) -> ""          activity log: a project
                                                                    and each comment, tag,
                                                                    revision, pledge on it
    labels    label                          -> count(8)
    profiles  author(32)                     -> seq(8) of the newest profile
    words     word + 0 + last seq(8)     -> project seqs            search index: a project's
                                                                    words, and those a revision
                                                                    sets (node/store/word_index.py)
    tagwords  label + 0 + project seq + tag seq -> ""              a tag's labels as words
    orphan_tags target id(32) + tag seq(8)   -> ""                  live tags whose target is
                                                                    not a live project here
    derives   origin id(32) + seq(8)         -> ""                  a project, or a revision,
                                                                    whose `derives` names origin
    decisions lab(32) + ts(8) + id(32)       -> seq(8)              a lab's decisions, in
                                                                    replay order (issue 24)
    sync      scope(32) + ts(8) + id(32)     -> ""                  reconciliation keys
    sync_agg  scope + level + bucket         -> count + id sum      node/store/sync_index.py
    unindexed seq(8)                         -> verdict code        stored, reconciled, not
                                                                    shown: opaque or hidden
    meta      name                           -> value              counters, follows, peers

An object this release does not understand (an unknown kind or envelope version: "opaque"),
or one that breaks its known kind's schema ("hidden"), is stored and reconciled like any other
(`objects`, the id tiers, `sync`) but has no other index entry: no view finds it. A release that
understands it indexes it when the store opens (`_review_unindexed`), with no re-fetch.

Every object and all its index entries are written in one durable transaction per batch,
so a crash leaves either all of a batch or none of it (DESIGN.md: never writemap+nosync).
Reads (objects by id or sequence, counters, local state) are in node/store/read.py, the
errors in errors.py, the data file's checks before mapping in datafile.py.
"""

from __future__ import annotations

import itertools
import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path
from typing import Any

import lmdb

from node.store import unindexed as store_unindexed
from node.store import word_index
from node.store.datafile import check_data_file
from node.store.errors import (
    _NO_ACCESS,
    DATA_FILE,
    RESTORE_ADVICE,
    StoreDamaged,
    StoreError,
    StoreReadOnly,
    _errno_of,
    store_error,
)
from node.store.indexes import IndexWriter
from node.store.read import U64, lab_counter, u64
from node.store.sync_index import BucketDeltas, ensure_built
from node.store.word_index import WordBlocks
from protocols import errors, kinds
from protocols.objects import SignedObject, decode

log = logging.getLogger(__name__)

# Address space reserved for the map; the file only grows as data is written.
MAP_SIZE = 64 * 1024**3
MAX_DBS = 24
_DB_NAMES = (
    "objects", "ids", "tomb", "pending", "by_kind", "by_author", "by_lab", "by_target",
    "by_label", "label_target", "active", "labels", "profiles", "words", "tagwords", "sync",
    "sync_agg", "meta", "orphan_tags", "ids_new", "unindexed", "derives", "revisions",
    "decisions",
)  # fmt: skip
# Meta counters of unindexed objects, by layer ("~" never occurs in a kind name).
UNINDEXED_COUNTERS = {"opaque": "count:~opaque", "hidden": "count:~hidden"}
# New ids go to the small `ids_new` tree and move to `ids` in sorted runs once it holds
# IDS_MERGE_AT of them. Ids are hashes: put straight into a large `ids`, nearly every new id
# dirtied a leaf page of its own, written again at each commit (at 1M stored, ~15k of the
# ~46k pages of a 32000-object transaction, by the tree sizes). A merge run dirties each page
# once per IDS_MERGE_CHUNK ids (a run stays well under LMDB's ~128k dirty pages up to ~7M
# ids). Measured at 1M stored, 9 transactions of 32000 with one merge, bytes the commits
# wrote (strace): 6.32 -> 4.93 KiB an object (docs/ingest.md). The price: the write that
# crosses IDS_MERGE_AT also merges, a few seconds at 1M stored, once per 262k objects.
IDS_MERGE_AT = 262_144
IDS_MERGE_CHUNK = 131_072




@dataclass(frozen=True)
class Stored:
    """An object that a batch stored. `visible`: indexed for views (not opaque or hidden)."""

    obj: SignedObject
    seq: int
    visible: bool = True


class Store(IndexWriter):
    """The store at `path` (a directory). `readonly`: open it for reading only (a directory
    or file this process may not write); every write then raises StoreReadOnly, and a store
    that would need a one-off upgrade at open (an index to build) is refused with a
    StoreReadOnly that says so."""

    def __init__(self, path: Path, *, map_size: int = MAP_SIZE, readonly: bool = False) -> None:
        self.path = path
        self.readonly = readonly
        if readonly:
            if not (path / DATA_FILE).is_file():
                raise StoreError(f"there is no store at {path} (no {DATA_FILE})")
        else:
            try:
                path.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"cannot create the store directory {path}: {exc}") from exc
        # LMDB maps the file and trusts it: a page it reads beyond the end of a truncated
        # file kills the process with SIGBUS. So the header is checked first, with reads.
        check_data_file(path / DATA_FILE)
        env = _open_env(path, map_size, readonly)
        try:
            super().__init__(env, self._open_dbs(env), path, readonly=readonly)
            # Index entries of the batch, per database: bare keys (value b"") or (key, value).
            self._deferred: defaultdict[str, list[Any]] = defaultdict(list)
            self._sync_deltas = BucketDeltas()  # fingerprint buckets, applied in _flush
            self._words = WordBlocks()  # the batch's search-word blocks, written in _flush
            self._counts: dict[str, int] = {}  # meta counter deltas of the batch
            # orphan_tags may hold entries (read per batch): most stores have none, and then
            # a new project needs no lookup for tags that came before it (see _adopt_tags).
            self._orphans_any = True
            self._pending_any = True  # the pending database may hold entries (set per batch)
            # The first reads (and the one-off upgrades) touch the file's pages: a corrupt
            # page shows here as an lmdb.Error, or a stored object that no longer decodes.
            ensure_built(self)
            word_index.ensure_built(self)
            self._ensure_orphan_tags()
            self._ensure_derives()
            self._ensure_decisions()
            self._review_unindexed()
        except lmdb.Error as exc:
            env.close()
            raise store_error(exc, path, "open it", opening=True) from exc
        except errors.ObjectError as exc:  # stored bytes were checked: they changed on disk
            env.close()
            raise StoreDamaged(
                f"{path / DATA_FILE} is damaged (a stored object no longer decodes: {exc}): "
                + RESTORE_ADVICE
            ) from exc
        except BaseException:
            env.close()
            raise

    def _open_dbs(self, env: Any) -> dict[str, Any]:
        if not self.readonly:
            return {name: env.open_db(name.encode()) for name in _DB_NAMES}
        dbs, missing = {}, []
        for name in _DB_NAMES:
            try:
                dbs[name] = env.open_db(name.encode(), create=False)
            except lmdb.NotFoundError:
                missing.append(name)
        if missing:
            self.require_writable("to create its databases " + ", ".join(missing))
        return dbs

    def close(self) -> None:
        self.env.close()

    @contextmanager
    def _writing(self, doing: str) -> Iterator[None]:
        """A write transaction's errors as StoreErrors (disk full, map full, damage): once
        per transaction, never per object."""
        if self.readonly:
            raise StoreReadOnly(f"the store at {self.path} is open read-only: cannot {doing}")
        try:
            yield
        except lmdb.Error as exc:
            raise store_error(exc, self.path, doing) from exc

    # ---- writes ------------------------------------------------------------------------

    def _begin_batch(self, txn: Any) -> None:
        # Reset the batch state only once this thread holds LMDB's write lock: ingest
        # runs in several threads at once (gossip validators, sync fetches, RPC), and a
        # reset before `begin` would wipe another thread's batch in progress.
        self._deferred, self._counts = defaultdict(list), {}
        self._sync_deltas.clear()
        self._words = WordBlocks()
        # Most batches meet no early retraction: skip the per-object lookup then.
        self._pending_any = txn.stat(self.db["pending"])["entries"] > 0
        self._orphans_any = txn.stat(self.db["orphan_tags"])["entries"] > 0

    def _end_batch(self, txn: Any) -> None:
        self._flush(txn)
        for name, n in self._counts.items():
            self._bump(txn, name, n)

    def write_batch(
        self, objs: Iterable[tuple[SignedObject, kinds.KindSpec | str]]
    ) -> list[Stored]:
        """Store checked (decoded, verified) objects and index them, in one durable
        transaction. Each comes with its kind's spec, or with the verdict code that keeps it
        from view (opaque or hidden: stored and reconciled, not indexed for views).

        Objects already known (by id) are skipped. Returns the objects newly stored, in the
        order given, each with the very object it was given (node/ingest/writer.py relies on
        both to hand each request its own).
        """
        with self._writing("store objects"):
            stored, merge = self._write_batch(objs)
        if merge:
            try:
                self.merge_ids()
            except StoreError as exc:  # the batch is durable: its caller gets it
                log.warning("stored, but the id tiers were not merged (next write): %s", exc)
        return stored

    def _write_batch(
        self, objs: Iterable[tuple[SignedObject, kinds.KindSpec | str]]
    ) -> tuple[list[Stored], bool]:
        """write_batch's transaction: the objects newly stored, and whether to merge ids."""
        stored: list[Stored] = []
        with self.env.begin(write=True) as txn:
            self._begin_batch(txn)
            ids_new, objects_db = self._ids_new, self.db["objects"]
            cur = txn.cursor(db=objects_db)
            seq = U64.unpack(cur.key())[0] + 1 if cur.last() else 1
            ids = self._ids
            for obj, spec in objs:
                key = u64(seq)
                # Known (stored by an earlier batch or another thread)? The put into the new
                # tier is its own lookup there: one descent, where a get and a put were two.
                if not txn.put(obj.id, key, db=ids_new, overwrite=False):
                    continue
                if txn.get(obj.id, db=ids) is not None:
                    txn.delete(obj.id, db=ids_new)
                    continue
                txn.put(key, obj.raw, db=objects_db, append=True)
                kind = obj.kind
                if isinstance(spec, str):
                    rid = self._pending_retraction(txn, obj) if self._pending_any else None
                    if rid is not None:
                        txn.put(key, b"", db=objects_db)
                        txn.put(obj.id, rid, db=self.db["tomb"])
                    else:
                        self._add_unindexed(obj, key, spec)
                    stored.append(Stored(obj, seq, visible=False))
                    seq += 1
                    continue
                if kind == "retraction":
                    self._flush(txn)  # retractions read and delete: settle the batch first
                    if not self._retraction_allowed(txn, obj):
                        # Stored but not applied or indexed; still reconciled, as on a node
                        # that got it before its target (where it is indexed as pending):
                        # every node reconciles the same set, whatever the arrival order.
                        sync_key = kinds.scope_of(obj.body) + U64.pack(obj.ts) + obj.id
                        self._deferred["sync"].append(sync_key)
                        self._sync_deltas.note(sync_key, True)
                        seq += 1
                        continue
                rid = self._pending_retraction(txn, obj) if self._pending_any else None
                if rid is not None:  # its author withdrew it before it reached us
                    txn.put(key, b"", db=objects_db)
                    txn.put(obj.id, rid, db=self.db["tomb"])
                else:
                    self._index(txn, obj, spec, key, add=True)
                    self._count(obj, spec, 1)
                stored.append(Stored(obj, seq))
                seq += 1
            self._end_batch(txn)
            merge = txn.stat(self._ids_new)["entries"] >= IDS_MERGE_AT
        return stored, merge

    def merge_ids(self) -> None:
        """Move every id from `ids_new` to `ids`, in sorted runs of IDS_MERGE_CHUNK, each run
        one transaction (an id is in exactly one of the two trees at every commit)."""
        with self._writing("merge the id tiers"):
            self._merge_ids()

    def _merge_ids(self) -> None:
        while True:
            with self.env.begin(write=True) as txn:
                cur = txn.cursor(db=self._ids_new)
                run = list(itertools.islice(cur.iternext(), IDS_MERGE_CHUNK))
                if not run:
                    return
                txn.cursor(db=self._ids).putmulti(run, dupdata=False, overwrite=False)
                if len(run) == txn.stat(self._ids_new)["entries"]:
                    txn.drop(self._ids_new, delete=False)
                    return
                cur.first()
                for _ in run:  # the run is the tree's first keys: delete from the front
                    cur.delete()

    def _count(self, obj: SignedObject, spec: kinds.KindSpec, delta: int) -> None:
        """Add `delta` to the meta counters of one live object (applied once per batch)."""
        counts = self._counts
        for name in ("count:*", "count:" + obj.kind):
            counts[name] = counts.get(name, 0) + delta
        if obj.kind == "project":
            name = lab_counter(spec.scope(obj.body))
            counts[name] = counts.get(name, 0) + delta

    def _flush(self, txn: Any) -> None:
        """Write the batch's deferred index entries: sorted, one putmulti per database
        (far fewer page visits than one put per entry in arrival order)."""
        for name, items in self._deferred.items():
            if not items:
                continue
            items.sort()  # bare keys sort ~3x faster than (key, value) pairs
            pairs = zip(items, repeat(b"")) if type(items[0]) is bytes else items
            txn.cursor(db=self.db[name]).putmulti(pairs, dupdata=False, overwrite=True)
        self._deferred = defaultdict(list)
        self._words.flush(txn, self.db["words"])
        self._sync_deltas.apply(txn, self.db["sync_agg"])

    def _bump(self, txn: Any, name: str, delta: int) -> None:
        key = name.encode()
        raw = txn.get(key, db=self.db["meta"])
        txn.put(key, u64((U64.unpack(raw)[0] if raw else 0) + delta), db=self.db["meta"])

    def _retraction_allowed(self, txn: Any, r: SignedObject) -> bool:
        target = r.body["target"]
        tseq = self.seq_of(txn, target)
        if tseq is None:
            txn.put(target + r.id, b"", db=self.db["pending"])
            self._pending_any = True
            return True
        raw = txn.get(tseq, db=self.db["objects"])
        if not raw:
            return True  # already withdrawn
        tobj = decode(raw, oid=target)
        if tobj.author != r.author or tobj.kind == "retraction":
            log.info("ignoring retraction %s: not the author's own object", r.id.hex()[:12])
            return False
        self._withdraw(txn, tobj, tseq, r.id)
        return True

    def _pending_retraction(self, txn: Any, obj: SignedObject) -> bytes | None:
        """The id of a retraction of `obj` by its own author that arrived before it."""
        cur = txn.cursor(db=self.db["pending"])
        if not cur.set_range(obj.id):
            return None
        for key, _ in cur:
            if not key.startswith(obj.id):
                break
            rid = key[32:]
            rraw = self.get_raw(txn, rid)
            if rraw is not None and decode(rraw, oid=rid).author == obj.author:
                return bytes(rid)
        return None

    def _withdraw(self, txn: Any, obj: SignedObject, seq: bytes, rid: bytes) -> None:
        code = txn.get(seq, db=self.db["unindexed"])
        if code is not None:  # opaque or hidden: only its sync entry and the mark to remove
            self._flush(txn)
            self._remove_unindexed(txn, obj, seq, code.decode())
        else:
            spec = kinds.kind_spec(obj.kind)
            self._index(txn, obj, spec, seq, add=False)
            self._count(obj, spec, -1)
        txn.put(seq, b"", db=self.db["objects"])
        txn.put(obj.id, rid, db=self.db["tomb"])

    # ---- objects stored but not shown (node/store/unindexed.py has the review) -----------

    def _add_unindexed(self, obj: SignedObject, seq: bytes, code: str) -> None:
        """Store-side entries of an opaque or hidden object: its reconciliation key and the
        mark that keeps it out of every view (deferred to the batch's flush)."""
        sync_key = kinds.scope_of(obj.body) + U64.pack(obj.ts) + obj.id
        self._deferred["sync"].append(sync_key)
        self._sync_deltas.note(sync_key, True)
        self._deferred["unindexed"].append((seq, code.encode()))
        name = UNINDEXED_COUNTERS[errors.layer_of(code).value]
        self._counts[name] = self._counts.get(name, 0) + 1

    def _remove_unindexed(self, txn: Any, obj: SignedObject, seq: bytes, code: str) -> None:
        sync_key = kinds.scope_of(obj.body) + U64.pack(obj.ts) + obj.id
        if txn.delete(sync_key, db=self.db["sync"]):
            self._sync_deltas.note(sync_key, False)
        txn.delete(seq, db=self.db["unindexed"])
        name = UNINDEXED_COUNTERS[errors.layer_of(code).value]
        self._counts[name] = self._counts.get(name, 0) - 1

    def _review_unindexed(self) -> None:
        """Index what this release understands now (store_unindexed.review)."""
        store_unindexed.review(self)

    # ---- local state (not replicated) -------------------------------------------------

    def meta_put(self, name: str, value: bytes | None) -> None:
        with self._writing("save local state"), self.env.begin(write=True) as txn:
            if value is None:
                txn.delete(name.encode(), db=self.db["meta"])
            else:
                txn.put(name.encode(), value, db=self.db["meta"])


# ---- opening ---------------------------------------------------------------------------


def _open_env(path: Path, map_size: int, readonly: bool) -> Any:
    opts: dict[str, Any] = {
        "map_size": map_size, "max_dbs": MAX_DBS, "subdir": True, "readonly": readonly,
        "sync": True, "metasync": True, "writemap": False, "readahead": False,
    }  # fmt: skip
    try:
        try:
            return lmdb.open(str(path), **opts)
        except lmdb.Error as exc:
            # A read-only directory: LMDB cannot create (or open for writing) its lock file.
            # Without it writers do not see this reader: one running meanwhile (as a user
            # who may write here) could reuse pages a long read still reads.
            if not (readonly and _errno_of(exc) in _NO_ACCESS):
                raise
            log.info("opening %s without its lock file (%s)", path, exc)
            return lmdb.open(str(path), lock=False, **opts)
    except lmdb.Error as exc:
        raise store_error(exc, path, "open it", opening=True) from exc


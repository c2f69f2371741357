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
    by_target target(32) + ts(8) + seq(8)    -> kind + 0 + scope(32)  (counts, activity)
    by_label  label + 0 + ts(8) + target(32) -> ""                  newest-tagged first
    label_target label + 0 + target(32)      -> tags(8) + first ts(8)   one row per tagged object
    active    lab(32) + ts(8) + project(32) + seq(8) -> ""          activity log: a project
                                                                    and each comment/tag on it
    labels    label                          -> count(8)
    profiles  author(32)                     -> seq(8) of the newest profile
    words     word + 0 + last seq(8)     -> project seqs            search index: a project's
                                                                    words (node/word_index.py)
    tagwords  label + 0 + project seq + tag seq -> ""              a tag's labels as words
    orphan_tags target id(32) + tag seq(8)   -> ""                  live tags whose target is
                                                                    not a live project here
    sync      scope(32) + ts(8) + id(32)     -> ""                  reconciliation keys
    sync_agg  scope + level + bucket         -> count + id sum      node/sync_index.py
    unindexed seq(8)                         -> verdict code        stored, reconciled, not
                                                                    shown: opaque or hidden
    meta      name                           -> value              counters, follows, peers

An object this release does not understand (an unknown kind or envelope version: "opaque"),
or one that breaks its known kind's schema ("hidden"), is stored and reconciled like any other
(`objects`, the id tiers, `sync`) but has no other index entry: no view finds it. A release that
understands it indexes it when the store opens (`_review_unindexed`), with no re-fetch.

Every object and all its index entries are written in one durable transaction per batch,
so a crash leaves either all of a batch or none of it (DESIGN.md: never writemap+nosync).
Reads (objects by id or sequence, counters, local state) are in node/store_read.py.
"""

from __future__ import annotations

import errno
import importlib
import itertools
import logging
import os
import struct
import sys
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path
from typing import Any, NamedTuple

import lmdb

from node import store_unindexed, word_index
from node.store_read import U64, StoreReader, lab_counter, prefix_keys, u64
from node.sync_index import BucketDeltas, ensure_built
from node.word_index import PROJECT_KIND_BYTES, WordBlocks, project_words
from protocols import errors, kinds
from protocols.objects import SignedObject, decode

log = logging.getLogger(__name__)

# Address space reserved for the map; the file only grows as data is written.
MAP_SIZE = 64 * 1024**3
MAX_DBS = 24
_DB_NAMES = (
    "objects", "ids", "tomb", "pending", "by_kind", "by_author", "by_lab", "by_target",
    "by_label", "label_target", "active", "labels", "profiles", "words", "tagwords", "sync",
    "sync_agg", "meta", "orphan_tags", "ids_new", "unindexed",
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


# The LMDB data file in the store's directory (LMDB's own name for it).
DATA_FILE = "data.mdb"
# What to do about a damaged data file: the objects are replicated, so a peer has them.
RESTORE_ADVICE = (
    "restore it from a backup, or move it away and fetch the objects again from a peer "
    "(let the node sync, or `percolab export` there and `percolab import` here)"
)
# A generic write error (EIO) with less than this free on the disk is a full disk: LMDB
# reports a short write of its pages as EIO, and the short write itself used the space up.
LOW_DISK_BYTES = 64 * 1024**2


class StoreError(RuntimeError):
    """The store cannot be opened or is inconsistent."""


class StoreDamaged(StoreError):
    """The data file is damaged: truncated, not an LMDB file, or a corrupt page."""


class StoreFull(StoreError):
    """A write failed for lack of space (the disk, or the map). What was stored before it
    is kept and can be read."""


class StoreReadOnly(StoreError):
    """A write (or a one-off upgrade that writes) on a store opened read-only."""


@dataclass(frozen=True)
class Stored:
    """An object that a batch stored. `visible`: indexed for views (not opaque or hidden)."""

    obj: SignedObject
    seq: int
    visible: bool = True


class Store(StoreReader):
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
            super().__init__(env, self._open_dbs(env))
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

    def require_writable(self, why: str) -> None:
        """Refuse, with one clear error, a one-off upgrade at open on a read-only store."""
        if self.readonly:
            raise StoreReadOnly(
                f"the store at {self.path} needs a one-off upgrade {why}, which writes, but "
                "it is open read-only: open it once with write access (any percolab command "
                "run by its owner) and it can be read read-only again"
            )

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
        order given, each with the very object it was given (node/ingest_writer.py relies on
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

    # ---- objects stored but not shown (node/store_unindexed.py has the review) -----------

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

    def _index(
        self, txn: Any, o: SignedObject, spec: kinds.KindSpec, seq: bytes, add: bool
    ) -> None:
        entries, words, tseq = self._entries(txn, o, spec, seq, add)
        if add:
            deferred = self._deferred
            for db, key, value in entries:
                deferred[db].append((key, value) if value else key)
            if words:
                self._words.add(words, seq)
            self._sync_deltas.note(entries[2][1], True)
        else:
            self._flush(txn)
            for db, key, _ in entries:
                if txn.delete(key, db=self.db[db]) and db == "sync":
                    self._sync_deltas.note(key, False)
            for w in words:
                word_index.remove(txn, self.db["words"], w + b"\0", seq)
            if o.kind == "project":
                self._unword_tags(txn, o.id, seq)
            elif o.kind == "tag" and isinstance(target := o.body.get("target"), bytes):
                txn.delete(target + seq, db=self.db["orphan_tags"])  # if it was one
            elif o.kind == "profile" and txn.get(o.author, db=self.db["profiles"]) == seq:
                self._repoint_profile(txn, o.author)
        if o.kind == "profile" and add:
            old = txn.get(o.author, db=self.db["profiles"])
            if old is None or self._ts_of(txn, old) <= o.ts:
                txn.put(o.author, seq, db=self.db["profiles"])
        elif o.kind == "project" and add:
            self._adopt_tags(txn, o.id, seq)
        elif o.kind == "tag" and add and tseq is None:
            target = o.body.get("target")
            if isinstance(target, bytes):  # its project may come later: _adopt_tags
                txn.put(target + seq, b"", db=self.db["orphan_tags"])
                self._orphans_any = True

    def _entries(
        self, txn: Any, o: SignedObject, spec: kinds.KindSpec, seq: bytes, add: bool
    ) -> tuple[list[tuple[str, bytes, bytes]], set[bytes], bytes | None]:
        """The index entries of one object: (db, key, value) triples (the third is always
        the ``sync`` key), a project's search words, and for a tag its live project's seq."""
        ts = U64.pack(o.ts)
        kind = _kind_key(o.kind)
        scope = spec.scope(o.body)
        entries = [
            ("by_kind", kind + ts + seq, b""),
            ("by_author", o.author + ts + seq, b""),
            ("sync", scope + ts + o.id, b""),
        ]
        if spec.lab_field is not None:
            entries.append(("by_lab", scope + kind + ts + seq, b""))
        target = o.body.get(spec.target_field) if spec.target_field else None
        if isinstance(target, bytes):
            entries.append(("by_target", target + ts + seq, kind + scope))
        words: set[bytes] = set()
        tseq = None
        if o.kind == "project":
            entries.append(("active", scope + ts + o.id + seq, b""))
            words = project_words(o.body["title"], o.body["summary"])
        elif o.kind in ("comment", "tag") and isinstance(target, bytes):
            # Append-only activity log: "most active" needs no read-modify-write per comment.
            entries.append(("active", scope + ts + target + seq, b""))
            if o.kind == "tag":
                # Labels are search words of the project they tag, while both are live (a
                # project that comes later adopts them: _adopt_tags).
                tseq = self._project_seq(txn, target)
                for label in o.body["labels"]:
                    entries += self._label_target(txn, label, target, o.ts, add)
                    if tseq is not None:
                        entries.append(("tagwords", label.encode() + b"\0" + tseq + seq, b""))
        return entries, words, tseq

    def _project_seq(self, txn: Any, oid: bytes) -> bytes | None:
        """The sequence of `oid` if it is a live project stored here (this batch included)."""
        seq = self.seq_of(txn, oid)
        if seq is None:
            return None
        raw = txn.get(seq, db=self.db["objects"])
        # Canonical bytes: 0x96, v=1, then kind as fixstr: "project" is a7 70 72 6f 6a 65 63 74.
        return bytes(seq) if raw is not None and raw[2:10] == PROJECT_KIND_BYTES else None

    def _label_target(
        self, txn: Any, label: str, target: bytes, ts: int, add: bool
    ) -> list[tuple[str, bytes, bytes]]:
        """Count tag objects per (label, target); the by_label entry and the label's count
        of tagged objects change only when the first tag comes or the last one goes."""
        key = label.encode() + b"\0" + target
        raw = txn.get(key, db=self.db["label_target"])
        n, first = (U64.unpack(raw[:8])[0], raw[8:]) if raw else (0, u64(ts))
        n += 1 if add else -1
        if n > 0:
            txn.put(key, u64(n) + first, db=self.db["label_target"])
        else:
            txn.delete(key, db=self.db["label_target"])
        if (add and n == 1) or (not add and n == 0):
            self._bump_label(txn, label, 1 if add else -1)
            return [("by_label", label.encode() + b"\0" + first + target, b"")]
        return []

    def _adopt_tags(self, txn: Any, pid: bytes, seq: bytes) -> None:
        """Tags that arrived before their project (sync fetches in any order): their labels
        become search words of it now. Looked up in orphan_tags, not by_target: a by_target
        lookup per project cost ~7% of write_batch at 1M stored (a random B-tree descent)."""
        if not self._orphans_any:
            return
        orphans = self.db["orphan_tags"]
        for key in list(prefix_keys(txn, orphans, pid)):  # deleted while we go
            txn.delete(key, db=orphans)
            tag_seq = key[32:]
            tag = self.get_seq(txn, tag_seq)
            if tag is not None:
                for label in tag.body["labels"]:
                    self._deferred["tagwords"].append(label.encode() + b"\0" + seq + tag_seq)

    def _unword_tags(self, txn: Any, pid: bytes, seq: bytes) -> None:
        """A withdrawn project's tags stop making it a search result."""
        for tag, tag_seq in self._tags_on(txn, pid):
            for label in tag.body["labels"]:
                txn.delete(label.encode() + b"\0" + seq + tag_seq, db=self.db["tagwords"])

    def _tags_on(self, txn: Any, target: bytes) -> list[tuple[SignedObject, bytes]]:
        """Live tags of `target` in the database (not this batch's deferred entries)."""
        out = []
        cur = txn.cursor(db=self.db["by_target"])
        if cur.set_range(target):
            for key, value in cur:
                if not key.startswith(target):
                    break
                if value.startswith(b"tag\0"):
                    tag = self.get_seq(txn, key[-8:])
                    if tag is not None:
                        out.append((tag, bytes(key[-8:])))
        return out

    def _ensure_orphan_tags(self) -> None:
        """Fill orphan_tags for a store made before it existed (once): every live tag whose
        target is not a live project."""
        marker = b"orphan_tags:v1"
        with self.read() as txn:
            if txn.get(marker, db=self.db["meta"]) is not None:
                return
        self.require_writable("to list its tags that came before their project")
        with self.env.begin(write=True) as txn:
            for key in list(prefix_keys(txn, self.db["by_kind"], _kind_key("tag"))):
                tag_seq = bytes(key[-8:])
                tag = self.get_seq(txn, tag_seq)
                target = tag.body.get("target") if tag is not None else None
                if isinstance(target, bytes) and self._project_seq(txn, target) is None:
                    txn.put(target + tag_seq, b"", db=self.db["orphan_tags"])
            txn.put(marker, b"1", db=self.db["meta"])

    def _repoint_profile(self, txn: Any, author: bytes) -> None:
        """The author's current profile went (withdrawn or hidden): the newest one left."""
        for key in prefix_keys(txn, self.db["by_author"], author, reverse=True):
            raw = txn.get(key[-8:], db=self.db["objects"])
            if raw and raw[2:10] == _PROFILE_KIND_BYTES:
                txn.put(author, key[-8:], db=self.db["profiles"])
                return
        txn.delete(author, db=self.db["profiles"])

    def _ts_of(self, txn: Any, seq: bytes) -> int:
        raw = txn.get(seq, db=self.db["objects"])
        return decode(raw).ts if raw else -1

    def _bump_label(self, txn: Any, label: str, delta: int) -> None:
        key = label.encode()
        raw = txn.get(key, db=self.db["labels"])
        n = (U64.unpack(raw)[0] if raw else 0) + delta
        if n > 0:
            txn.put(key, u64(n), db=self.db["labels"])
        else:
            txn.delete(key, db=self.db["labels"])

    # ---- local state (not replicated) -------------------------------------------------

    def meta_put(self, name: str, value: bytes | None) -> None:
        with self._writing("save local state"), self.env.begin(write=True) as txn:
            if value is None:
                txn.delete(name.encode(), db=self.db["meta"])
            else:
                txn.put(name.encode(), value, db=self.db["meta"])


# Canonical bytes: 0x96, v=1, then the kind as fixstr: "profile" is a7 70 72 6f 66 69 6c 65.
_PROFILE_KIND_BYTES = b"\xa7profile"
_KIND_KEYS: dict[str, bytes] = {}


def _kind_key(kind: str) -> bytes:
    """`kind + 0`, the kind part of index keys (cached: kinds are few)."""
    key = _KIND_KEYS.get(kind)
    if key is None:
        key = _KIND_KEYS[kind] = kind.encode() + b"\0"
    return key


# ---- opening, and the errors of the file -------------------------------------------------


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


_NO_ACCESS = (errno.EACCES, errno.EPERM, errno.EROFS)
# lmdb.Error for the LMDB codes that mean the file's bytes are not what LMDB wrote.
_DAMAGE_ERRORS = (
    lmdb.CorruptedError,
    lmdb.PageNotFoundError,
    lmdb.InvalidError,
    lmdb.VersionMismatchError,
)


def _errno_of(exc: BaseException) -> int | None:
    """The errno of an lmdb.Error (py-lmdb 3 has `code`; older ones only the message)."""
    code = getattr(exc, "code", None)
    if isinstance(code, int) and code > 0:
        return code
    if isinstance(exc, lmdb.ReadonlyError):
        return errno.EACCES
    if isinstance(exc, lmdb.DiskError):
        return errno.ENOSPC
    text = str(exc)
    for known in (errno.EIO, errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EROFS):
        if os.strerror(known) in text:
            return known
    return None


def _free_bytes(path: Path) -> int | None:
    try:
        st = os.statvfs(path)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


def store_error(exc: BaseException, path: Path, doing: str, *, opening: bool = False) -> StoreError:
    """The StoreError that says what an lmdb.Error from the store at `path` means, and what
    to do about it. A failed write transaction stored nothing: say so. `opening`: raised
    while the store opened, where a transaction gone bad (MDB_BAD_TXN) can only come from a
    corrupt page that an earlier call of it met."""
    code = _errno_of(exc)
    if isinstance(exc, lmdb.MapFullError):
        return StoreFull(
            f"the store at {path} is full (it reached its map size) and could not {doing}: "
            "nothing of that write was stored, what was stored before is kept"
        )
    free = _free_bytes(path)
    if code in (errno.ENOSPC, errno.EDQUOT) or (
        code == errno.EIO and free is not None and free < LOW_DISK_BYTES
    ):
        room = f", {free // 1024**2} MiB free" if free is not None else ""
        return StoreFull(
            f"the disk holding {path} is full{room}: could not {doing}; nothing of that write "
            "was stored, what was stored before is kept and can still be read. Free some "
            "space on that disk and try again"
        )
    if isinstance(exc, _DAMAGE_ERRORS) or (opening and isinstance(exc, lmdb.BadTxnError)):
        return StoreDamaged(f"{path / DATA_FILE} is damaged ({exc}): {RESTORE_ADVICE}")
    if code in _NO_ACCESS:
        return StoreReadOnly(
            f"no write access to the store at {path}: could not {doing} ({os.strerror(code)})"
        )
    return StoreError(f"the store at {path}: could not {doing}: {exc}")


# The data file's layout, read before LMDB maps it (LMDB's mdb.c: MDB_meta, MDB_page,
# MDB_node; 64-bit, native byte order). Two meta pages open the file; each records the page
# size, the last page in use (mm_last_pg) and the transaction that wrote it, and LMDB uses
# the one with the higher transaction id.
_MDB_MAGIC = 0xBEEFC0DE
_E = "<" if sys.byteorder == "little" else ">"
# magic, version, address, mapsize, free db (48), main db (48), last page, txnid
_META = struct.Struct(_E + "IIQQ48s48sQQ")
# md_pad (the page size, in the free db), flags, depth, branch/leaf/overflow pages,
# entries, root page
_DB = struct.Struct(_E + "IHHQQQQQ")
_U16 = struct.Struct(_E + "H")
_U64 = struct.Struct(_E + "Q")
_NODE = struct.Struct(_E + "HHHH")  # lo, hi (data size or child page), flags, key size
_P_BRANCH, _P_LEAF, _P_OVERFLOW, _P_META = 0x01, 0x02, 0x04, 0x08
_F_BIGDATA = 0x01
_P_INVALID = 2**64 - 1
_NUM_METAS = 2
_MAX_DEPTH = 32  # LMDB's cursor stack: no tree is deeper
_MIN_PAGE = 256
_CHECK_TRIES = 3  # a writer may commit while the header is read: read it again


class _Layout(NamedTuple):
    """A data format: its page header size, where node offsets start, its version."""

    header: int
    base: int
    version: int
    max_page: int
    even_keys: bool  # 1.0 pads a leaf node's key to an even length


# By the offset of the magic in the first page: LMDB 0.9 (py-lmdb's default) and 1.0.
_LAYOUTS = {
    16: _Layout(16, 0, 1, 0x8000, False),
    24: _Layout(24, 24, 3, 0x10000, True),
}


class _Meta(NamedTuple):
    flags: int
    magic: int
    version: int
    page_size: int
    free_root: int
    last_page: int
    txnid: int


def check_data_file(data: Path) -> None:
    """Refuse, before LMDB maps it, a data file that would fault: one too short for the
    pages its header says are in use (LMDB reads them through the map, and a page beyond
    the end of the file is SIGBUS), or whose header pages are not LMDB's. Raises
    StoreDamaged naming the file; a missing file is a new store."""
    try:
        fd = os.open(data, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise StoreError(f"cannot read {data}: {exc.strerror}") from exc
    try:
        problem, txnid = _checked_once(fd)
        for _ in range(_CHECK_TRIES):
            if problem is None or txnid is None:
                break
            # A verdict on a header that a writer replaced meanwhile is no verdict.
            again, newer = _checked_once(fd)
            if newer == txnid:
                break
            problem, txnid = again, newer
    finally:
        os.close(fd)
    if problem is not None:
        raise StoreDamaged(f"{data} is damaged ({problem}): {RESTORE_ADVICE}")


def verify_data_file(data: Path) -> list[str] | None:
    """Every structural problem of the data file, found by reading each page it uses with
    plain reads, never through a map: what `check_data_file` cannot see at open (a corrupt
    page, which LMDB may still meet with SIGBUS, SIGSEGV or an abort). Seconds per GB: for a
    process that died of a signal, or a check on request, not for every open. None when
    this py-lmdb has no offline verifier (it came with py-lmdb 3)."""
    try:
        verify: Any = importlib.import_module("lmdb.verify")  # py-lmdb >= 3
    except ImportError:
        return None
    try:
        problems: list[str] = verify.verify(str(data), subdir=False)
    except verify.VerifyError as exc:
        return [str(exc)]
    except OSError as exc:
        return [f"unreadable: {exc.strerror}"]
    return problems


def _data_file_problem(fd: int) -> tuple[str | None, int | None]:
    """What is wrong with the data file (None if nothing seen), and the transaction id of
    the header that was checked."""
    head = os.pread(fd, _META.size + 64, 0)
    if not head:
        return "empty: 0 bytes", None
    layout = next(
        (lay for off, lay in _LAYOUTS.items() if head[off : off + 4] == _magic_bytes()), None
    )
    if layout is None:
        if len(head) < _META.size + 16:
            return f"truncated: {len(head)} bytes, shorter than its header", None
        return "not an LMDB data file: its first page has no LMDB magic number", None
    if len(head) < layout.header + _META.size:
        return f"truncated: {len(head)} bytes, shorter than its header", None
    first = _meta(head, layout)
    psize = first.page_size
    if psize & (psize - 1) or not _MIN_PAGE <= psize <= layout.max_page:
        return f"its header page 0 is corrupt: page size {psize}", None
    second_raw = os.pread(fd, layout.header + _META.size, psize)
    if len(second_raw) < layout.header + _META.size:
        return f"truncated: shorter than its two header pages ({2 * psize} bytes)", None
    metas = (first, _meta(second_raw, layout))
    for i, m in enumerate(metas):
        if m.magic != _MDB_MAGIC or not m.flags & _P_META:
            return f"its header page {i} is corrupt: no LMDB magic number", None
        if m.version != layout.version:
            return f"its header page {i} is corrupt: unknown format version {m.version}", None
        if m.page_size != psize:
            return f"its header pages disagree on the page size ({psize}, {m.page_size})", None
    meta = max(metas, key=lambda m: m.txnid)
    # The size is read after the header: a writer writes its pages before the header that
    # points at them, so a concurrent commit cannot make a sound file look short.
    size = os.fstat(fd).st_size
    if size < _NUM_METAS * psize:
        return f"truncated: {size} bytes, shorter than its two header pages", meta.txnid
    pages = meta.last_page + 1
    if pages * psize <= size:
        return None, meta.txnid
    # The file may end before the last page when the final pages are free (pages that a
    # transaction took and gave back are never written: LMDB's mdb.c, MDB_meta.mm_last_pg).
    in_file = size // psize
    free = _free_pages(fd, layout, psize, meta.free_root, in_file, pages)
    if free is not None and len(free) == pages - in_file:
        return None, meta.txnid
    return f"truncated: {size} bytes, but its last page ends at byte {pages * psize}", meta.txnid


def _magic_bytes() -> bytes:
    return struct.pack(_E + "I", _MDB_MAGIC)


def _meta(raw: bytes, layout: _Layout) -> _Meta:
    flags = _U16.unpack_from(raw, layout.header - 6)[0]
    magic, version, _, _, free_db, _, last, txnid = _META.unpack_from(raw, layout.header)
    pad, _, _, _, _, _, _, root = _DB.unpack(free_db)
    return _Meta(flags, magic, version, pad, root, last, txnid)


def _checked_once(fd: int) -> tuple[str | None, int | None]:
    try:
        return _data_file_problem(fd)
    except OSError as exc:  # an I/O error reading the header
        return f"unreadable: {exc.strerror}", None


def _free_pages(
    fd: int, layout: _Layout, psize: int, root: int, lo: int, hi: int
) -> set[int] | None:
    """The pages in [lo, hi) that the free-page database lists, read with pread (each page
    it is made of must lie in the file). None if it cannot be read: a page of it beyond the
    end of the file, or one that is not a B-tree page."""
    found: set[int] = set()
    if root == _P_INVALID:
        return found
    in_file = os.fstat(fd).st_size // psize
    todo = [(root, 0)]
    visited = 0
    while todo:
        pgno, depth = todo.pop()
        visited += 1
        if not _NUM_METAS <= pgno < in_file or depth > _MAX_DEPTH or visited > in_file:
            return None
        page = os.pread(fd, psize, pgno * psize)
        flags = _U16.unpack_from(page, layout.header - 6)[0]
        lower = _U16.unpack_from(page, layout.header - 4)[0]
        n = (lower - (layout.header - layout.base)) >> 1
        if n < 0 or layout.header + 2 * n > psize:
            return None
        for i in range(n):
            node = _U16.unpack_from(page, layout.header + 2 * i)[0] + layout.base
            if node + _NODE.size > psize:
                return None
            lo16, hi16, nflags, ksize = _NODE.unpack_from(page, node)
            if flags & _P_BRANCH:
                todo.append((lo16 | hi16 << 16 | nflags << 32, depth + 1))
                continue
            if not flags & _P_LEAF:
                return None
            dsize = lo16 | hi16 << 16
            doff = node + _NODE.size + (ksize + (ksize & 1) if layout.even_keys else ksize)
            if nflags & _F_BIGDATA:
                if doff + 8 > psize:
                    return None
                ov = _U64.unpack_from(page, doff)[0]
                npages = (layout.header - 1 + dsize) // psize + 1
                if ov < _NUM_METAS or ov + npages > in_file:
                    return None
                ovpage = os.pread(fd, npages * psize, ov * psize)
                if not _U16.unpack_from(ovpage, layout.header - 6)[0] & _P_OVERFLOW:
                    return None
                ids = ovpage[layout.header : layout.header + dsize]
            elif doff + dsize <= psize:
                ids = page[doff : doff + dsize]
            else:
                return None
            # An ID list: its count, then page numbers (the count may be less than the room).
            if len(ids) < 8:
                return None
            count = min(_U64.unpack_from(ids)[0], len(ids) // 8 - 1)
            for k in range(1, count + 1):
                p = _U64.unpack_from(ids, 8 * k)[0]
                if lo <= p < hi:
                    found.add(p)
    return found

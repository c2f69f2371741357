"""The search index of project words, as posting blocks in LMDB.

    words     word + 0 + last seq(8)  -> project seqs(8 each, ascending)   a project's own
                                                                           title/summary words
    tagwords  label + 0 + project seq(8) + tag seq(8) -> ""               a tag's labels as
                                                                           words of its project

A write batch adds one block per distinct word (its projects of that batch) instead of one
entry per (word, project): measured on bench/ingest.py's mix, ~20 entries per project cost
~1.5 us each (key bytes, sort, B-tree insert, commit pages), ~40% of the store's work.
Blocks of one word hold disjoint, increasing seq ranges, since seqs only grow: a block's key
is an upper bound of its seqs and above every seq of the blocks before it. So the one block
that can hold seq S is the first at or after `word + 0 + S`, and a reverse scan of a word's
blocks yields its projects newest first. Withdrawing a project rewrites its words' blocks
(rare). Tag labels keep one entry each: they name older projects, out of block order.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from node.store.read import StoreReader
from protocols.objects import decode
from protocols.search import word_keys_of

log = logging.getLogger(__name__)

SEQ_BYTES = 8
WORDS_DB = "words"
TAGWORDS_DB = "tagwords"
BUILT_MARKER = "words:v2"  # meta key: the word index is in the block layout
# Bytes 2..10 of every project's canonical encoding: 0x96, v=1, then "project" as fixstr.
PROJECT_KIND_BYTES = b"\xa7project"


def project_words(title: str, summary: str) -> set[bytes]:
    """A project's search words, UTF-8 encoded (index keys are `word + 0 + ...`)."""
    return word_keys_of(title + "\n" + summary)


class WordBlocks:
    """The blocks of one write batch: word -> its projects' seqs, in append order."""

    def __init__(self) -> None:
        self._seqs: defaultdict[bytes, list[bytes]] = defaultdict(list)

    def add(self, words: set[bytes], seq: bytes) -> None:
        for w in words:
            self._seqs[w].append(seq)

    def flush(self, txn: Any, db: Any) -> None:
        if self._seqs:
            blocks = sorted(
                (w + b"\0" + seqs[-1], b"".join(seqs)) for w, seqs in self._seqs.items()
            )
            txn.cursor(db=db).putmulti(blocks, dupdata=False, overwrite=True)
            self._seqs = defaultdict(list)


def _find(block: bytes, seq: bytes) -> int:
    """Offset of `seq` in an ascending block, or -1 (binary search over 8-byte items)."""
    lo, hi = 0, len(block) // SEQ_BYTES
    while lo < hi:
        mid = (lo + hi) // 2
        item = block[mid * SEQ_BYTES : (mid + 1) * SEQ_BYTES]
        if item < seq:
            lo = mid + 1
        elif item > seq:
            hi = mid
        else:
            return mid * SEQ_BYTES
    return -1


def has(cur: Any, word0: bytes, seq: bytes) -> bool:
    """True if the project at `seq` has the word (`word0` = word + 0) in the blocks."""
    if not cur.set_range(word0 + seq) or not cur.key().startswith(word0):
        return False
    return _find(cur.value(), seq) >= 0


def remove(txn: Any, db: Any, word0: bytes, seq: bytes) -> None:
    cur = txn.cursor(db=db)
    if not cur.set_range(word0 + seq) or not cur.key().startswith(word0):
        return
    block = cur.value()
    at = _find(block, seq)
    if at < 0:
        return
    rest = block[:at] + block[at + SEQ_BYTES :]
    if rest:
        cur.put(cur.key(), rest)  # the key stays a valid upper bound
    else:
        cur.delete()


def newest_first(txn: Any, db: Any, word0: bytes) -> Iterator[bytes]:
    """The seqs of the word's projects, newest first (one reverse scan of its blocks)."""
    cur = txn.cursor(db=db)
    if not cur.set_range(word0 + b"\xff" * SEQ_BYTES):
        if not cur.last():
            return
    elif not cur.key().startswith(word0) and not cur.prev():
        return
    while cur.key().startswith(word0):
        block = cur.value()
        for at in range(len(block) - SEQ_BYTES, -1, -SEQ_BYTES):
            yield block[at : at + SEQ_BYTES]
        if not cur.prev():
            return


def ensure_built(store: StoreReader) -> None:
    """Move a store from the one-entry-per-word layout to blocks (once; lossless: the index
    is rebuilt from the stored objects)."""
    meta = store.db["meta"]
    with store.read() as txn:
        if txn.get(BUILT_MARKER.encode(), db=meta) is not None:
            return
        fresh = txn.stat(store.db["objects"])["entries"] == 0
    store.require_writable("to build its search index")
    with store.env.begin(write=True) as txn:
        if not fresh:
            _rebuild(store, txn)
        txn.put(BUILT_MARKER.encode(), b"1", db=meta)


def _rebuild(store: StoreReader, txn: Any) -> None:
    log.info("rebuilding the search index in the block layout")
    txn.drop(store.db[WORDS_DB], delete=False)
    txn.drop(store.db[TAGWORDS_DB], delete=False)
    blocks, tagwords = WordBlocks(), []
    objects = store.db["objects"]
    for seq, raw in txn.cursor(db=objects):
        if not raw:
            continue
        obj = decode(raw)
        if obj.kind == "project":
            blocks.add(project_words(obj.body["title"], obj.body["summary"]), bytes(seq))
        elif obj.kind == "tag" and isinstance(obj.body.get("target"), bytes):
            tseq = store.seq_of(txn, obj.body["target"])
            traw = txn.get(tseq, db=objects) if tseq is not None else None
            if traw and traw[2:10] == PROJECT_KIND_BYTES:
                for label in obj.body["labels"]:
                    tagwords.append((label.encode() + b"\0" + tseq + bytes(seq), b""))
    blocks.flush(txn, store.db[WORDS_DB])
    tagwords.sort()
    txn.cursor(db=store.db[TAGWORDS_DB]).putmulti(tagwords, dupdata=False, overwrite=True)

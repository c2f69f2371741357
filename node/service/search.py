"""Search of projects by their *current* text (title, summary, tag labels).

The word index (node/store/word_index.py) lists, under each word, the seqs of the projects
whose own title or summary holds it and of the revisions whose new title or summary does.
Candidates stream newest first from the words the last (prefix) query word begins; a project
nobody revised is checked for the other words by point lookups and decoded only when it is a
result (the common case, as before revisions). A candidate that is a revision, or a project
that has revisions, stands for its project, which is kept only if its current text (replayed,
node/service/living.py) holds every query word: a word an old revision set, or one the
original had before an edit removed it, finds nothing.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from typing import Any

from node.service import living_views
from node.service.queries import MAX_PAGE, Views
from node.store import word_index
from node.store.read import prefix_keys
from node.store.store import Store
from protocols.objects import SignedObject, decode_checked, object_id
from protocols.search import query_words, word_keys_of

# Search scans at most this many index entries per query word (prefix matches included).
MAX_SEARCH_SCAN = 20_000
# A one-letter prefix matches most of the index: wait for the second letter.
MIN_PREFIX_CHARS = 2
# Distinct indexed words a one-word query's prefix may expand to.
MAX_PREFIX_WORDS = 64
# Bytes 2..11 of a revision's canonical encoding: 0x96, v=1, then "revision" as fixstr.
REVISION_KIND_BYTES = b"\xa8revision"


def search(store: Store, views: Views, query: str, limit: int) -> list[dict[str, Any]]:
    """Projects whose current title, summary or tags contain every query word (the last as
    prefix), most recently stored (or revised) first; those the viewer's moderation leaves out
    of lists are left out (node/service/governance.py)."""
    words = query_words(query)
    if not words or len(words[-1]) < MIN_PREFIX_CHARS:
        return []
    limit = max(1, min(limit, MAX_PAGE))
    txn = views.txn
    others = [w.encode() + b"\0" for w in words[:-1]]
    in_blocks, in_tags = txn.cursor(db=store.db["words"]), txn.cursor(db=store.db["tagwords"])
    objects, unindexed = store.db["objects"], store.db["unindexed"]

    def has_word(word: bytes, seq: bytes) -> bool:
        if word_index.has(in_blocks, word, seq):
            return True
        return bool(in_tags.set_range(word + seq)) and in_tags.key().startswith(word + seq)

    out: list[dict[str, Any]] = []
    seen: set[bytes] = set()
    for n, seq in enumerate(_newest_first(store, txn, words[-1].encode())):
        if n >= MAX_SEARCH_SCAN:
            break
        raw = txn.get(seq, db=objects)
        if not raw or txn.get(seq, db=unindexed) is not None:
            continue
        project: SignedObject | None
        if raw[2:10] == word_index.PROJECT_KIND_BYTES:
            pid = object_id(raw)
            if pid in seen:
                continue
            revised = living_views.has_revisions(views, pid)
            if not revised and not all(has_word(w, seq) for w in others):
                continue
            project = decode_checked(raw, pid)
            if revised and not _matches(views, project, words):
                continue
        elif raw[2:11] == REVISION_KIND_BYTES:
            target = decode_checked(raw, object_id(raw)).body["target"]
            if target in seen:
                continue
            project = views.get(target)
            if project is None or project.kind != "project":
                continue
            if not _matches(views, project, words):
                continue
        else:
            continue
        seen.add(project.id)
        if not views.listed(project):  # hidden, or another's queued post (governance)
            continue
        out.append(views.view(project))
        if len(out) >= limit:
            break
    return out


def _matches(views: Views, project: SignedObject, words: list[str]) -> bool:
    """Whether the project's current title, summary and tag labels hold every word of the
    query (the last as a prefix)."""
    fields = living_views.current(views, project)[0]
    have = word_keys_of(fields["title"] + "\n" + fields["summary"])
    have |= {label.encode() for label in views.labels_of(project.id)}
    *full, last = [w.encode() for w in words]
    return all(w in have for w in full) and any(h.startswith(last) for h in have)


def _newest_first(store: Store, txn: Any, prefix: bytes) -> Iterator[bytes]:
    """Distinct project and revision seqs of every indexed word starting with `prefix` (at
    most MAX_PREFIX_WORDS words), newest first: per word, a reverse scan of its blocks and of
    its tag entries, all merged."""
    blocks, tags = store.db["words"], store.db["tagwords"]
    words = sorted(_words_under(txn, blocks, prefix) | _words_under(txn, tags, prefix))
    streams: list[Iterator[bytes]] = []
    for word in words[:MAX_PREFIX_WORDS]:
        streams.append(word_index.newest_first(txn, blocks, word + b"\0"))
        keys = prefix_keys(txn, tags, word + b"\0", reverse=True)
        streams.append(key[-16:-8] for key in keys)  # label + 0 + project seq + tag seq
    last = None
    for seq in heapq.merge(*streams, reverse=True):
        if seq != last:
            last = seq
            yield seq


def _words_under(txn: Any, db: Any, prefix: bytes) -> set[bytes]:
    """The distinct words (keys up to their 0 byte) starting with `prefix`, at most
    MAX_PREFIX_WORDS of them."""
    found: set[bytes] = set()
    cur = txn.cursor(db=db)
    ok = cur.set_range(prefix)
    while ok and cur.key().startswith(prefix) and len(found) < MAX_PREFIX_WORDS:
        word = bytes(cur.key()).partition(b"\0")[0]
        found.add(word)
        ok = cur.set_range(word + b"\x01")  # the next word after this one
    return found

"""The search index as posting blocks (node/store/word_index.py): against a model, and the
move of an older store's one-entry-per-word layout to blocks."""

from __future__ import annotations

from pathlib import Path

import lmdb
from hypothesis import given, settings
from hypothesis import strategies as st

from node.ingest.pipeline import Ingest
from node.service import queries, search
from node.store import word_index
from node.store.read import u64
from node.store.store import Store

from .helpers import NOW, check_consistency, member

WORDS = ["kiln", "solar", "sol", "bike"]

# A run: batches of (word set) per new project, then some projects withdrawn.
runs = st.tuples(
    st.lists(st.lists(st.sets(st.sampled_from(WORDS)), max_size=8), min_size=1, max_size=6),
    st.sets(st.integers(1, 48)),
)


@settings(max_examples=60, deadline=None)
@given(runs)
def test_blocks_answer_like_a_set_of_word_project_pairs(tmp_path_factory, run) -> None:  # type: ignore[no-untyped-def]
    batches, withdrawn = run
    env = lmdb.open(str(tmp_path_factory.mktemp("w")), map_size=1 << 26, max_dbs=2)
    db = env.open_db(b"words")
    model: set[tuple[str, int]] = set()
    seq = 0
    with env.begin(write=True) as txn:
        for batch in batches:
            blocks = word_index.WordBlocks()
            for words in batch:
                seq += 1
                blocks.add({w.encode() for w in words}, u64(seq))
                model |= {(w, seq) for w in words}
            blocks.flush(txn, db)
        for s in withdrawn:
            for w in WORDS:
                word_index.remove(txn, db, w.encode() + b"\0", u64(s))
            model = {(w, x) for w, x in model if x != s}
    with env.begin() as txn:
        cur = txn.cursor(db=db)
        for w in WORDS:
            w0 = w.encode() + b"\0"
            expected = sorted((x for ww, x in model if ww == w), reverse=True)
            assert [int.from_bytes(s) for s in word_index.newest_first(txn, db, w0)] == expected
            for s in range(1, seq + 2):
                assert word_index.has(cur, w0, u64(s)) == ((w, s) in model)
    env.close()


def test_an_old_layout_store_is_rebuilt_into_blocks(tmp_path: Path) -> None:
    ada, bob = member("ada"), member("bob")
    lab = ada.lab()
    oven = ada.project(lab, "Solar oven", "cooks with sun")
    kiln = bob.project(lab, "Wood kiln")
    tag = bob.tag(kiln, "ceramics")
    store = Store(tmp_path / "store", map_size=1 << 30)
    ing = Ingest(store)
    ing.ingest([lab.raw, oven.raw, kiln.raw, tag.raw], now=NOW)
    ing.close()
    # What an older version left: one entry per (word, project, source), no marker.
    with store.env.begin(write=True) as txn:
        txn.drop(store.db["words"], delete=False)
        txn.drop(store.db["tagwords"], delete=False)
        txn.put(b"solar\0" + u64(2) + u64(2), b"", db=store.db["words"])
        txn.delete(word_index.BUILT_MARKER.encode(), db=store.db["meta"])
    store.close()

    store = Store(tmp_path / "store", map_size=1 << 30)
    try:
        assert check_consistency(store) == []
        with store.read() as txn:
            views = queries.Views(store, txn)

            def titles(q: str) -> list[str]:
                return [v["title"] for v in search.search(store, views, q, 10)]

            assert titles("solar") == ["Solar oven"]
            assert titles("ceram") == ["Wood kiln"]  # a tag's label
            assert titles("wood ceramics") == ["Wood kiln"]
    finally:
        store.close()

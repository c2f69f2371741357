"""The LMDB ItemStore (hierarchical fingerprint buckets) answers exactly like SortedItems,
stays in step with inserts, retractions and rebuilds, and reconciles with an in-memory side."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node.ingest.pipeline import Ingest
from node.store import sync_index
from node.store.store import Store
from node.store.sync_index import LmdbItems
from protocols import kinds
from protocols.reconcile import Initiator, Responder, SortedItems
from protocols.reconcile_store import INFINITY, MIN_BOUND, Aggregate, Bound, Key, minimal_bound
from tests.node.helpers import check_consistency, member

T0 = 1_767_225_600_000


def put_keys(store: Store, scope: bytes, keys: list[Key], add: bool = True) -> None:
    """Write sync entries the way Store._index does (deferred puts, deltas in _flush)."""
    store._deferred, store._moves = {}, {}
    store._sync_deltas.clear()
    with store.env.begin(write=True) as txn:
        for ts, oid in keys:
            key = scope + ts.to_bytes(8, "big") + oid
            if add:
                store._deferred.setdefault("sync", []).append((key, b""))
                store._sync_deltas.note(key, True)
            elif txn.delete(key, db=store.db["sync"]):
                store._sync_deltas.note(key, False)
        store._flush(txn)


@pytest.fixture
def lmdb_store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "s", map_size=1 << 30)
    yield s
    s.close()


def random_keys(rng: random.Random, n: int, dense: bool) -> list[Key]:
    keys = []
    ts = T0
    for _ in range(n):
        if dense:
            ts += rng.choice([0, 0, 1, 1, 2, 5, 17])
        else:
            ts += rng.randint(0, 2_000_000)
        keys.append((ts, rng.randbytes(32)))
    return keys


def random_bounds(rng: random.Random, keys: list[Key]) -> tuple[Bound, Bound]:
    def one() -> Bound:
        r = rng.random()
        if r < 0.05 or not keys:
            return MIN_BOUND
        if r < 0.1:
            return INFINITY
        k = rng.choice(keys)
        if r < 0.4:
            return (k[0], b"")
        if r < 0.6:
            return (k[0] + rng.randint(-40_000, 40_000), b"")
        cut = rng.randint(1, 32)
        prefix = k[1][:cut].rstrip(b"\0")
        return (k[0], prefix)

    a, b = one(), one()
    a = (max(0, a[0]), a[1] if a[0] >= 0 else b"")
    b = (max(0, b[0]), b[1] if b[0] >= 0 else b"")
    return (a, b) if a <= b else (b, a)


def check_same(lm: LmdbItems, mem: SortedItems, rng: random.Random, keys: list[Key]) -> None:
    assert lm.count_and_sum(MIN_BOUND, INFINITY) == mem.count_and_sum(MIN_BOUND, INFINITY)
    for _ in range(60):
        lo, hi = random_bounds(rng, keys)
        assert lm.count_and_sum(lo, hi) == mem.count_and_sum(lo, hi), (lo, hi)
        assert list(lm.iter_keys(lo, hi, 70)) == list(mem.iter_keys(lo, hi, 70))
        points = lm.split_points(lo, hi, 16)
        assert len(points) <= 15
        if lo == hi:
            assert not points
            continue
        edges = [lo, *points, hi]
        assert all(a < b for a, b in itertools.pairwise(edges))
        total = mem.count_and_sum(lo, hi)
        parts = [mem.count_and_sum(a, b) for a, b in itertools.pairwise(edges)]
        summed = Aggregate()
        for p in parts:
            summed = summed + p
        assert summed == total
        if total.count >= 64:
            assert points, "a range of 64+ items must be split"
            assert max(p.count for p in parts) <= total.count // 2 + 1


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(seed=st.integers(0, 2**32), n=st.integers(0, 400), dense=st.booleans())
def test_lmdb_items_match_sorted_items(tmp_path: Path, seed: int, n: int, dense: bool) -> None:
    rng = random.Random(seed)
    scope = rng.choice([bytes(32), rng.randbytes(32)])
    other = rng.randbytes(32)  # items of another scope must never leak in
    path = tmp_path / f"s{seed}-{n}-{dense}"
    store = Store(path, map_size=1 << 28)
    try:
        keys = random_keys(rng, n, dense)
        put_keys(store, other, random_keys(rng, 50, dense))
        for start in range(0, len(keys), 97):
            put_keys(store, scope, keys[start : start + 97])
        mem = SortedItems(keys)
        lm = LmdbItems(store, scope)
        check_same(lm, mem, rng, keys)
        # Remove a random subset (as retractions do), in a few batches.
        gone = rng.sample(keys, len(keys) // 3)
        for start in range(0, len(gone), 50):
            put_keys(store, scope, gone[start : start + 50], add=False)
        put_keys(store, scope, gone[:3], add=False)  # deleting again changes nothing
        left = sorted(set(keys) - set(gone))
        mem = SortedItems(left)
        check_same(lm, mem, rng, left)
        # A rebuild from the sync index gives the same buckets.
        with store.read() as txn:
            before = list(txn.cursor(db=store.db["sync_agg"]))
        sync_index.rebuild(store)
        with store.read() as txn:
            assert list(txn.cursor(db=store.db["sync_agg"])) == before
            totals = sync_index.scope_totals(store, txn)
        assert totals.get(scope, Aggregate()) == mem.count_and_sum(MIN_BOUND, INFINITY)
    finally:
        store.close()


def test_split_inside_one_millisecond(lmdb_store: Store) -> None:
    rng = random.Random(5)
    keys = [(T0, rng.randbytes(32)) for _ in range(500)]
    put_keys(lmdb_store, bytes(32), keys)
    lm = LmdbItems(lmdb_store, bytes(32))
    points = lm.split_points(MIN_BOUND, INFINITY, 16)
    assert len(points) == 15
    keys.sort()
    assert points[0] == minimal_bound(keys[31], keys[32]) or points[0][0] == T0


@settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(seed=st.integers(0, 2**32))
def test_reconcile_lmdb_with_memory(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    keys = random_keys(rng, rng.randint(0, 3000), rng.random() < 0.5)
    a_keys = [k for k in keys if rng.random() < 0.9]
    b_keys = [k for k in keys if rng.random() < 0.9]
    store = Store(tmp_path / f"r{seed}", map_size=1 << 28)
    try:
        for start in range(0, len(a_keys), 500):
            put_keys(store, bytes(32), a_keys[start : start + 500])
        a = LmdbItems(store, bytes(32))
        b = SortedItems(b_keys)
        init, resp = Initiator(a), Responder(b)
        if rng.random() < 0.5:
            init, resp = Initiator(b), Responder(a)
        msg: bytes | None = init.start()
        while msg is not None:
            msg = resp.receive(msg)
            if msg is None:
                break
            msg = init.receive(msg)
        assert init.done and resp.done
        ia = {k[1] for k in a_keys}
        ib = {k[1] for k in b_keys}
        if isinstance(init._store, LmdbItems):
            assert set(init.have) == ia - ib and set(init.need) == ib - ia
        else:
            assert set(init.have) == ib - ia and set(init.need) == ia - ib
        assert set(resp.have) == set(init.need) and set(resp.need) == set(init.have)
    finally:
        store.close()


def test_store_keeps_buckets_with_real_objects(tmp_path: Path) -> None:
    store = Store(tmp_path / "real", map_size=1 << 28)
    ing = Ingest(store)
    try:
        alice, bob = member("alice"), member("bob")
        lab = alice.lab("Lab")
        proj = alice.project(lab, "Solar dryer")
        comments = [bob.comment(proj, f"c{i}") for i in range(30)]
        ing.ingest([lab.raw, proj.raw] + [c.raw for c in comments])
        ing.ingest([bob.retract(c).raw for c in comments[:10]])
        ing.ingest([alice.retract(proj).raw])
        assert not [p for p in check_consistency(store) if "sync" in p]
        with store.read() as txn:
            live = [bytes(k) for k in txn.cursor(db=store.db["sync"]).iternext(values=False)]
        by_scope: dict[bytes, list[Key]] = {}
        for k in live:
            by_scope.setdefault(k[:32], []).append((int.from_bytes(k[32:40], "big"), k[40:]))
        with store.read() as txn:
            totals = sync_index.scope_totals(store, txn)
        assert set(totals) == set(by_scope)
        for scope, ks in by_scope.items():
            assert totals[scope] == Aggregate.of_ids(k[1] for k in ks)
            assert LmdbItems(store, scope).count_and_sum(MIN_BOUND, INFINITY) == totals[scope]
        assert kinds.PUBLIC_SCOPE in totals
    finally:
        ing.close()
        store.close()


def test_concurrent_ingest_keeps_sync_index(tmp_path: Path) -> None:
    """Several threads ingest at once (gossip validators + sync fetches do): every object
    ends up in the sync index and its buckets."""
    import threading

    store = Store(tmp_path / "conc", map_size=1 << 28)
    ing = Ingest(store)
    try:
        alice = member("alice")
        lab = alice.lab("Lab")
        ing.ingest([lab.raw])
        proj = alice.project(lab, "Kiln")
        ing.ingest([proj.raw])
        batches = [[alice.comment(proj, f"t{t} c{i}").raw for i in range(150)] for t in range(4)]
        threads = [threading.Thread(target=ing.ingest, args=(b,)) for b in batches]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        with store.read() as txn:
            n_sync = sum(1 for _ in txn.cursor(db=store.db["sync"]).iternext(values=False))
            count, _ = sync_index.digest(store, txn)
        assert n_sync == count
        assert count >= 2 + 4 * 150
        assert not [p for p in check_consistency(store) if "sync" in p]
    finally:
        ing.close()
        store.close()

"""The ingest pipeline: idempotence, mixed batches with bad objects, typed rejection codes."""

from __future__ import annotations

import gc
import threading
import uuid
from typing import Any

import msgpack
import pytest

from node.ingest import pipeline as ingest_mod
from node.ingest.pipeline import Ingest
from node.store.store import Store
from protocols import errors, kinds, objects
from protocols.fields import Integer, ObjectRef
from protocols.limits import MAX_FUTURE_SKEW_MS, MAX_OBJECT_BYTES

from .helpers import NOW, check_consistency, member

# Verdicts that store the object (not shown): docs/protocol.md §4.
STORED_LAYERS = (errors.Layer.OPAQUE, errors.Layer.HIDE)


def signed_with_version(key: Any, v: int, kind: str, ts: int, body: dict[str, Any]) -> bytes:
    """An object with envelope version `v`, signed the way every version signs."""
    author = objects.public_key_bytes(key)
    sig = key.sign(objects.SIGN_DOMAIN + msgpack.packb([v, kind, author, ts, body]))
    return bytes(msgpack.packb([v, kind, author, ts, body, sig]))


def _world():
    ada, bob = member("ada"), member("bob")
    lab = ada.lab()
    p1 = ada.project(lab, "Solar oven", "cooks with sun")
    p2 = bob.project(lab, "Bike generator")
    c1 = bob.comment(p1, "nice")
    c2 = ada.comment(p1, "thanks", parent=c1)
    t1 = bob.tag(p1, "solar", "food")
    return [lab, p1, p2, c1, c2, t1]


def _resign_envelope(obj, **changes) -> bytes:
    env = {"v": obj.v, "kind": obj.kind, "author": obj.author, "ts": obj.ts,
           "body": dict(obj.body), "sig": obj.sig} | changes  # fmt: skip
    return msgpack.packb([env[k] for k in ("v", "kind", "author", "ts", "body", "sig")],
                         use_bin_type=True)  # fmt: skip


def test_ingest_stores_and_reingest_is_a_no_op(store: Store, ingest: Ingest) -> None:
    objs = _world()
    raws = [o.raw for o in objs]
    first = ingest.ingest(raws, now=NOW)
    assert [s.obj.id for s in first.stored] == [o.id for o in objs]
    assert first.known == 0 and first.rejected == []
    assert check_consistency(store) == []
    with store.read() as txn:
        before = (store.count(txn), dict(txn.cursor(db=store.db["objects"])))
    again = ingest.ingest(raws, now=NOW)
    assert again.stored == [] and again.rejected == [] and again.known == len(raws)
    with store.read() as txn:
        assert (store.count(txn), dict(txn.cursor(db=store.db["objects"]))) == before
    assert check_consistency(store) == []


def test_duplicates_inside_one_batch_count_as_known(store: Store, ingest: Ingest) -> None:
    objs = _world()
    raws = [o.raw for o in objs]
    result = ingest.ingest(raws + raws[::-1] + raws[:2], now=NOW)
    assert len(result.stored) == len(objs)
    assert result.known == len(objs) + 2 and result.rejected == []
    with store.read() as txn:
        assert store.count(txn) == len(objs)
    assert check_consistency(store) == []


def test_listeners_see_newly_stored_objects_only(store: Store, ingest: Ingest) -> None:
    seen: list[bytes] = []
    ingest.listeners.append(lambda stored: seen.extend(s.obj.id for s in stored))
    objs = _world()
    ingest.ingest([o.raw for o in objs[:3]], now=NOW)
    ingest.ingest([o.raw for o in objs], now=NOW)
    assert seen == [o.id for o in objs]


def _bad_objects(good):
    """(raw, expected code) for each kind of bad object a peer might send."""
    ada = member("ada")
    lab, p1 = good[0], good[1]
    flipped = bytearray(p1.raw)
    flipped[-5] ^= 0x01  # inside the signature
    stolen = _resign_envelope(good[3], author=objects.public_key_bytes(member("eve").key))
    no_title = objects.sign(ada.key, "project", p1.ts, {k: v for k, v in p1.body.items()
                                                        if k != "title"})  # fmt: skip
    wrong_type = objects.sign(ada.key, "lab", lab.ts, dict(lab.body) | {"name": 5})
    unknown = objects.sign(ada.key, "no-such-kind", lab.ts, {})
    future = objects.sign(ada.key, "lab", NOW + MAX_FUTURE_SKEW_MS + 1, dict(lab.body))
    long_title = objects.sign(ada.key, "project", p1.ts, dict(p1.body) | {"title": "t" * 141})
    bad_label = objects.sign(ada.key, "tag", p1.ts,
                             {"lab": None, "target": p1.id, "labels": ["Not OK"]})  # fmt: skip
    non_canonical = b"\x96\xcc\x01" + lab.raw[2:]
    return [
        (bytes(flipped), errors.BadSignature.code),
        (stolen, errors.BadSignature.code),
        (no_title.raw, errors.MissingField.code),
        (wrong_type.raw, errors.BadFieldType.code),
        (unknown.raw, errors.UnknownKind.code),
        (future.raw, errors.FutureTimestamp.code),
        (long_title.raw, errors.StringTooLong.code),
        (bad_label.raw, errors.BadLabel.code),
        (b"\x00" * (MAX_OBJECT_BYTES + 1), errors.TooLarge.code),
        (b"\xc1garbage", errors.Undecodable.code),
        (b"", errors.Undecodable.code),
        (msgpack.packb([1, 2, 3]), errors.BadEnvelope.code),
        (signed_with_version(ada.key, 2, "lab", lab.ts, {"n": 1}), errors.UnsupportedVersion.code),
        (msgpack.packb([2, "lab", bytes(32), 0, {}, bytes(64)]), errors.BadSignature.code),
        (non_canonical, errors.NonCanonical.code),
    ]


def test_mixed_batch_keeps_good_objects_and_reports_bad_ones(store: Store, ingest: Ingest) -> None:
    good = _world()
    bad = _bad_objects(good)
    batch: list[bytes] = []
    expected: dict[int, str] = {}
    for i, obj in enumerate(good):  # interleave: bad, good, bad, good, ...
        for raw, code in bad[i :: len(good)]:
            expected[len(batch)] = code
            batch.append(raw)
        batch.append(obj.raw)
    result = ingest.ingest(batch, now=NOW)
    kept = {i for i, code in expected.items() if errors.layer_of(code) in STORED_LAYERS}
    assert {s.obj.id for s in result.stored if s.visible} == {o.id for o in good}
    assert {s.obj.raw for s in result.stored if not s.visible} == {batch[i] for i in kept}
    assert {r.index: r.code for r in result.rejected} == {
        i: c for i, c in expected.items() if i not in kept
    }
    # Opaque (unknown kind, newer version) and hidden (schema) verdicts: stored, not shown.
    assert {r.index: r.code for r in result.unindexed} == {i: expected[i] for i in kept}
    assert all(r.reason for r in result.rejected + result.unindexed)
    assert check_consistency(store) == []
    with store.read() as txn:
        assert store.count(txn) == len(good)
        assert store.count(txn, "project") == 2
        stored_raws = {raw for _, raw in store.iter_objects(txn)}
    assert stored_raws == {o.raw for o in good} | {batch[i] for i in kept}
    # The rejected ones were not remembered as known: a corrected re-send is judged afresh.
    again = ingest.ingest([raw for raw, _ in bad], now=NOW)
    assert again.known == len(kept) and len(again.rejected) == len(bad) - len(kept)


def test_large_batches_across_the_commit_and_thread_boundaries(
    store: Store, ingest: Ingest, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingest_mod, "BATCH_OBJECTS", 100)
    ada = member("ada")
    lab = ada.lab()
    objs = [lab] + [ada.project(lab, f"Project {i}", f"summary {i}") for i in range(329)]
    raws = [o.raw for o in objs]
    bad_at = {5, 99, 100, 101, 250, 329}
    for i in bad_at:
        b = bytearray(raws[i])
        b[-1] ^= 0x80
        raws[i] = bytes(b)
    result = ingest.ingest(raws, now=NOW)
    assert sorted(r.index for r in result.rejected) == sorted(bad_at)
    assert {r.code for r in result.rejected} == {errors.BadSignature.code}
    assert len(result.stored) == len(objs) - len(bad_at)
    assert [s.seq for s in result.stored] == list(range(1, len(result.stored) + 1))
    assert check_consistency(store) == []
    with store.read() as txn:
        assert store.count(txn, "project") == 329 - len(bad_at - {0})


def test_extension_kind_objects_are_ingested_and_indexed(store: Store, ingest: Ingest) -> None:
    name = f"test-ext-{uuid.uuid4().hex[:8]}"
    kinds.register_kind(kinds.KindSpec(
        name, {"lab": ObjectRef(nullable=True), "on": ObjectRef(), "score": Integer(0, 5)},
        lab_field="lab", target_field="on", refs=("on",),
    ))  # fmt: skip
    ada = member("ada")
    lab = ada.lab()
    p = ada.project(lab, "Solar oven")
    review = ada.make(name, {"lab": lab.id, "on": p.id, "score": 5})
    bad = objects.sign(ada.key, name, review.ts, {"lab": lab.id, "on": p.id, "score": 6})
    result = ingest.ingest([lab.raw, p.raw, review.raw, bad.raw], now=NOW)
    assert [s.visible for s in result.stored] == [True, True, True, False]
    assert [r.code for r in result.unindexed] == [errors.IntOutOfRange.code]
    with store.read() as txn:
        assert store.count(txn, name) == 1
        assert store.unindexed_code(txn, bad.id) == errors.IntOutOfRange.code
    assert check_consistency(store) == []


def test_repeated_bad_object_in_one_batch_is_never_known(store: Store, ingest: Ingest) -> None:
    lab = member("ada").lab()
    bad = bytearray(lab.raw)
    bad[-1] ^= 0x01
    result = ingest.ingest([bytes(bad), bytes(bad)], now=NOW)
    assert result.stored == []
    assert result.known == 0
    assert [r.index for r in result.rejected] == [0, 1]


def test_a_large_call_commits_in_write_batches_with_the_gc_paused(
    store: Store, ingest: Ingest, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingest_mod, "BATCH_OBJECTS", 100)
    monkeypatch.setattr(ingest_mod, "WRITE_BATCH_OBJECTS", 250)  # two check batches a commit
    monkeypatch.setattr(ingest_mod, "MAX_WRITE_BATCH_OBJECTS", 250)  # and never more
    ada = member("ada")
    lab = ada.lab()
    raws = [lab.raw] + [ada.project(lab, f"Project {i}").raw for i in range(529)]
    parts: list[tuple[list[int], bool]] = []
    ingest.listeners.append(lambda part: parts.append(([s.seq for s in part], gc.isenabled())))
    assert gc.isenabled()
    result = ingest.ingest(raws, now=NOW)
    assert len(result.stored) == 530 and not result.rejected
    assert [len(seqs) for seqs, _ in parts] == [200, 200, 130]  # one listener call a commit
    assert [seq for seqs, _ in parts for seq in seqs] == list(range(1, 531))
    assert [enabled for _, enabled in parts] == [False, False, False]
    assert gc.isenabled()  # back on once the call is over
    assert check_consistency(store) == []


def test_a_busy_writer_makes_the_next_transaction_grow(
    store: Store, ingest: Ingest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Group commit: while the first transaction is being written, the check batches that
    come meanwhile go into one larger transaction, up to MAX_WRITE_BATCH_OBJECTS."""
    monkeypatch.setattr(ingest_mod, "BATCH_OBJECTS", 100)
    monkeypatch.setattr(ingest_mod, "WRITE_BATCH_OBJECTS", 100)
    monkeypatch.setattr(ingest_mod, "MAX_WRITE_BATCH_OBJECTS", 400)
    prepared = threading.Semaphore(0)
    prepare, write_batch = ingest._prepare, store.write_batch

    def counting_prepare(*args: Any) -> Any:
        out = prepare(*args)
        prepared.release()
        return out

    first = [True]

    def slow_first_write(objs: Any) -> Any:
        if first[0]:  # hold the first transaction until four more batches are checked
            first[0] = False
            for _ in range(ingest_mod.CHECKS_AHEAD + 5):
                assert prepared.acquire(timeout=30)
        return write_batch(objs)

    monkeypatch.setattr(ingest, "_prepare", counting_prepare)
    monkeypatch.setattr(store, "write_batch", slow_first_write)
    ada = member("ada")
    lab = ada.lab()
    raws = [lab.raw] + [ada.project(lab, f"Project {i}").raw for i in range(999)]
    parts: list[int] = []
    ingest.listeners.append(lambda part: parts.append(len(part)))
    result = ingest.ingest(raws, now=NOW)
    assert len(result.stored) == 1000 and not result.rejected
    assert parts[:2] == [100, 400] and sum(parts) == 1000 and max(parts) <= 400
    assert [s.seq for s in result.stored] == list(range(1, 1001))
    assert check_consistency(store) == []


def test_the_gc_comes_back_when_a_large_call_fails(
    store: Store, ingest: Ingest, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingest_mod, "BATCH_OBJECTS", 100)

    def boom(part: object) -> None:
        raise RuntimeError("listener failed")

    ingest.listeners.append(boom)
    ada = member("ada")
    lab = ada.lab()
    with pytest.raises(RuntimeError):
        ingest.ingest([lab.raw] + [ada.project(lab, f"P{i}").raw for i in range(250)], now=NOW)
    assert gc.isenabled()
    # Nested pauses (several ingest threads) share one: the first to leave does not resume it.
    with ingest_mod.cyclic_gc_paused():
        with ingest_mod.cyclic_gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()


def test_an_early_object_is_deferred_then_taken_once_its_time_has_come(
    store: Store, ingest: Ingest
) -> None:
    """docs/protocol.md §4: a timestamp more than 15 min ahead of the receiver's clock is not
    stored yet, not remembered as known and blames nobody; the same bytes offered again once
    the clock has caught up (by a later sync session) are stored."""
    ada = member("ada")
    early = ada.make("profile", {"name": "Early", "about": ""}, ts=NOW + MAX_FUTURE_SKEW_MS + 1)
    first = ingest.ingest([early.raw], now=NOW)
    assert [(r.code, r.blames_peer) for r in first.rejected] == [
        (errors.FutureTimestamp.code, False)
    ]
    assert first.stored == [] and not store.has(early.id)
    later = ingest.ingest([early.raw], now=NOW + 2)
    assert [s.obj.id for s in later.stored] == [early.id] and later.rejected == []

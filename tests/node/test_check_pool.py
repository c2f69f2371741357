"""Object checks in worker processes (node/ingest/check_pool.py): the same verdicts as
inline, extension kinds, copies across batches, and a worker that dies mid-call."""

from __future__ import annotations

import logging
import signal
import uuid
from pathlib import Path

import pytest

from node.ingest import pipeline as ingest_mod
from node.ingest.check_pool import CheckPool
from node.ingest.pipeline import Ingest, IngestResult
from node.store.store import Store
from protocols import errors, kinds, objects
from protocols.errors import Layer
from protocols.fields import Integer, ObjectRef

from .helpers import NOW, check_consistency, member
from .test_ingest import _bad_objects, _world


def _mixed_batch(copies: int) -> list[bytes]:
    """Good and bad objects interleaved, `copies` rounds (later rounds are re-deliveries)."""
    good = _world()
    ada = member("ada")
    extra = [ada.project(good[0], f"Idea {i}", "a summary") for i in range(80)]
    bad = [raw for raw, _ in _bad_objects(good)]
    one = [o.raw for o in good + extra]
    for i, raw in enumerate(bad):
        one.insert(3 * i + 1, raw)
    return one * copies


def _run(tmp_path: Path, name: str, workers: int, raws: list[bytes]) -> IngestResult:
    store = Store(tmp_path / name, map_size=1 << 30)
    ing = Ingest(store, check_workers=workers)
    try:
        result = ing.ingest(raws, now=NOW)
        assert check_consistency(store) == []
        return result
    finally:
        ing.close()
        store.close()


def _summary(
    result: IngestResult,
) -> tuple[list[bytes], int, list[tuple[int, str]], list[tuple[int, str]]]:
    return (
        [s.obj.id for s in result.stored],
        result.known,
        [(r.index, r.code) for r in result.rejected],
        [(r.index, r.code) for r in result.unindexed],
    )


def test_workers_give_the_inline_verdicts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingest_mod, "BATCH_OBJECTS", 50)  # several batches, pipelined
    raws = _mixed_batch(copies=2)
    pooled = _run(tmp_path, "pooled", 2, raws)
    inline = _run(tmp_path, "inline", 0, raws)
    assert _summary(pooled) == _summary(inline)
    stored, known, rejected, unindexed = _summary(pooled)
    bad_codes = [code for _, code in _bad_objects(_world())]
    n_kept = sum(1 for c in bad_codes if errors.layer_of(c) in (Layer.OPAQUE, Layer.HIDE))
    assert len(stored) == 86 + n_kept and known == 86 + n_kept  # the second round is known
    assert len(unindexed) == n_kept
    assert len(rejected) == 2 * (len(bad_codes) - n_kept)  # a bad copy stays bad
    assert {code for _, code in rejected} >= {
        errors.BadSignature.code, errors.NonCanonical.code, errors.FutureTimestamp.code,
    }  # fmt: skip
    assert {code for _, code in unindexed} >= {
        errors.MissingField.code, errors.UnknownKind.code, errors.UnsupportedVersion.code,
    }  # fmt: skip


def test_extension_kinds_are_checked_by_the_node_itself(tmp_path: Path) -> None:
    name = f"test-ext-{uuid.uuid4().hex[:8]}"  # registered here only: workers don't know it
    kinds.register_kind(kinds.KindSpec(
        name, {"lab": ObjectRef(nullable=True), "on": ObjectRef(), "score": Integer(0, 5)},
        lab_field="lab", target_field="on", refs=("on",),
    ))  # fmt: skip
    ada = member("ada")
    lab = ada.lab()
    p = ada.project(lab, "Solar oven")
    reviews = [ada.make(name, {"lab": lab.id, "on": p.id, "score": i % 6}) for i in range(100)]
    bad = objects.sign(ada.key, name, p.ts, {"lab": lab.id, "on": p.id, "score": 6})
    raws = [lab.raw, p.raw, *[r.raw for r in reviews], bad.raw]
    result = _run(tmp_path, "ext", 2, raws)
    assert sum(s.visible for s in result.stored) == 102 and result.rejected == []
    assert [(r.index, r.code) for r in result.unindexed] == [(102, errors.IntOutOfRange.code)]


def test_a_dead_worker_means_inline_checks_not_lost_objects(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(ingest_mod, "BATCH_OBJECTS", 100)
    ada = member("ada")
    lab = ada.lab()
    objs = [lab] + [ada.project(lab, f"Project {i}", "summary") for i in range(399)]
    store = Store(tmp_path / "store", map_size=1 << 30)
    ing = Ingest(store, check_workers=2)
    pool: CheckPool = ing._pool
    try:
        first = ing.ingest([o.raw for o in objs[:100]], now=NOW)
        assert len(first.stored) == 100 and pool._workers
        for worker in pool._workers:  # both die before the next call
            worker.proc.kill()
            worker.proc.wait()
        with caplog.at_level(logging.WARNING, logger="node.ingest.check_pool"):
            rest = ing.ingest([o.raw for o in objs[100:]], now=NOW)
        assert len(rest.stored) == 300 and not rest.rejected
        assert any("check worker" in r.getMessage() for r in caplog.records)
        assert check_consistency(store) == []
    finally:
        ing.close()
        store.close()


def test_workers_start_only_for_large_batches(store: Store, ingest: Ingest) -> None:
    ingest.ingest([o.raw for o in _world()], now=NOW)
    assert ingest._pool._workers == []


def test_signals_during_a_send_do_not_cut_frames(caplog: pytest.LogCaptureFixture) -> None:
    """A signal that interrupts a blocked pipe write leaves it short: every frame must still
    arrive whole (a cut frame once killed a worker, so its batches were checked inline)."""
    ada = member("ada")
    lab = ada.lab()
    objs = [ada.project(lab, f"Project {i}", "a summary", body="x" * 900) for i in range(2000)]
    raws = [o.raw for o in objs]
    pool = CheckPool(1)
    ticks = 0

    def tick(signum: int, frame: object) -> None:
        nonlocal ticks
        ticks += 1

    old = signal.signal(signal.SIGALRM, tick)
    assert pool.acquire()
    try:
        with caplog.at_level(logging.WARNING, logger="node.ingest.check_pool"):
            signal.setitimer(signal.ITIMER_REAL, 0.0005, 0.0005)
            # ~2 MB a request against a 1 MiB pipe: each write waits for the worker.
            pending = [pool.submit(NOW, raws) for _ in range(6)]
            verdicts = [pool.collect(p) for p in pending]
            signal.setitimer(signal.ITIMER_REAL, 0, 0)
        assert ticks > 10  # the signals did come while frames were being sent
        assert not [r.getMessage() for r in caplog.records]
        assert all(v == [None] * len(raws) for v in verdicts)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0, 0)
        signal.signal(signal.SIGALRM, old)
        pool.release()
        pool.close()

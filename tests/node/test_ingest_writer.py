"""Group commit across ingest calls (node/ingest/writer.py), and bulk calls in flight at once."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from node.ingest import pipeline as ingest_mod
from node.ingest.pipeline import BATCH_OBJECTS, Ingest
from node.ingest.writer import IngestWriter, WriterClosed
from node.store.store import Store
from protocols import kinds
from protocols.objects import decode

from .helpers import NOW, check_consistency, member

WAIT_S = 30.0


def _checked(raws: list[bytes]) -> list[Any]:
    return [(o, kinds.kind_spec(o.kind)) for o in map(decode, raws)]


def _wait(pred: Any, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


def test_requests_queued_behind_a_transaction_share_the_next_one(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    ada = member("ada")
    lab = ada.lab()
    projects = [ada.project(lab, f"Project {i}").raw for i in range(30)]
    batches: list[int] = []
    write_batch = store.write_batch

    def counted(objs: Any) -> Any:
        batches.append(len(objs))
        return write_batch(objs)

    monkeypatch.setattr(store, "write_batch", counted)
    writer = IngestWriter(store, most_objects=1000)
    try:
        # Hold LMDB's write lock, so the first request waits inside its transaction while
        # the next ones queue.
        txn = store.env.begin(write=True)
        first = writer.submit(_checked([lab.raw]))
        _wait(lambda: batches == [1], "the writer to take the first request")
        second = writer.submit(_checked(projects[:20]))
        third = writer.submit(_checked(projects[10:]))  # ten objects in both
        txn.abort()
        assert len(first.result(WAIT_S)) == 1
        stored_2, stored_3 = second.result(WAIT_S), third.result(WAIT_S)
    finally:
        writer.close()
    assert batches == [1, 40]  # the two queued requests: one transaction
    assert [s.obj.raw for s in stored_2] == projects[:20]
    assert [s.obj.raw for s in stored_3] == projects[20:]  # the shared ten: known to it
    assert check_consistency(store) == []
    with pytest.raises(WriterClosed):
        writer.submit(_checked(projects[:1]))


def test_a_transaction_takes_no_more_than_its_limit(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    ada = member("ada")
    lab = ada.lab()
    projects = [ada.project(lab, f"Project {i}").raw for i in range(25)]
    batches: list[int] = []
    write_batch = store.write_batch

    def counted(objs: Any) -> Any:
        batches.append(len(objs))
        return write_batch(objs)

    monkeypatch.setattr(store, "write_batch", counted)
    writer = IngestWriter(store, most_objects=20)
    try:
        txn = store.env.begin(write=True)
        first = writer.submit(_checked([lab.raw]))
        _wait(lambda: batches == [1], "the writer to take the first request")
        futs = [writer.submit(_checked(projects[i : i + 5])) for i in range(0, 25, 5)]
        txn.abort()
        assert [len(f.result(WAIT_S)) for f in [first, *futs]] == [1, 5, 5, 5, 5, 5]
    finally:
        writer.close()
    assert batches == [1, 20, 5]


def test_a_failed_write_fails_every_request_of_its_group_and_the_writer_goes_on(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    ada = member("ada")
    lab = ada.lab()
    write_batch = store.write_batch
    calls = [0]

    def fails_once(objs: Any) -> Any:
        calls[0] += 1
        if calls[0] == 1:
            raise OSError("disk on fire")
        return write_batch(objs)

    monkeypatch.setattr(store, "write_batch", fails_once)
    writer = IngestWriter(store, most_objects=100)
    try:
        with pytest.raises(OSError, match="disk on fire"):
            writer.submit(_checked([lab.raw])).result(WAIT_S)
        assert len(writer.submit(_checked([lab.raw])).result(WAIT_S)) == 1
    finally:
        writer.close()


def test_bulk_calls_from_two_threads_store_everything_once(store: Store) -> None:
    """Two sync fetches (or import chunks) in flight at once, overlapping in part: every
    object stored once, each call's result adds up, the store consistent."""
    ing = Ingest(store)
    ada, bob = member("ada"), member("bob")
    lab = ada.lab()
    size = BATCH_OBJECTS + 500  # large calls: the pipeline, not the inline path
    a = [lab.raw] + [ada.project(lab, f"A {i}").raw for i in range(3 * size)]
    b = [bob.project(lab, f"B {i}").raw for i in range(3 * size)] + a[-300:]
    results: dict[str, list[Any]] = {"a": [], "b": []}
    errors: list[BaseException] = []

    def run(name: str, raws: list[bytes]) -> None:
        try:
            for i in range(0, len(raws), size):
                chunk = raws[i : i + size]
                results[name].append((len(chunk), ing.ingest(chunk, now=NOW)))
        except BaseException as exc:  # reported below, on the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n, r)) for n, r in (("a", a), ("b", b))]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    finally:
        ing.close()
    assert errors == [] and not any(t.is_alive() for t in threads)
    stored = [s.obj.raw for rs in results.values() for _, r in rs for s in r.stored]
    assert sorted(stored) == sorted(set(a) | set(b))  # each object stored exactly once
    for rs in results.values():
        for n, r in rs:
            assert len(r.stored) + r.known == n and r.rejected == []
    assert check_consistency(store) == []


def test_a_large_call_waits_for_the_workers_rather_than_checking_inline(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While another call has the check workers, a large call waits for them (the other one
    lets them go before its last writes) instead of checking on the node's own thread."""
    ing = Ingest(store)
    inline: list[int] = []
    check_inline = ingest_mod.validity.check
    monkeypatch.setattr(
        ingest_mod.validity, "check", lambda *a, **k: inline.append(1) or check_inline(*a, **k)
    )
    asked = threading.Event()
    acquire = ing._pool.acquire

    def noting_acquire(wait_s: float = 0.0) -> bool:
        asked.set()
        return acquire(wait_s)

    ada = member("ada")
    lab = ada.lab()
    raws = [lab.raw] + [ada.project(lab, f"P {i}").raw for i in range(BATCH_OBJECTS + 400)]
    try:
        assert acquire()  # another call has the workers
        monkeypatch.setattr(ing._pool, "acquire", noting_acquire)
        out: list[Any] = []
        done = threading.Event()

        def run() -> None:
            out.append(ing.ingest(raws, now=NOW))
            done.set()

        thread = threading.Thread(target=run)
        thread.start()
        assert asked.wait(WAIT_S)
        assert not done.wait(0.2)  # it cannot finish while the workers are taken
        ing._pool.release()
        assert done.wait(WAIT_S)
        thread.join(WAIT_S)
    finally:
        ing.close()
    assert len(out[0].stored) == len(raws) and inline == []

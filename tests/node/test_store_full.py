"""A full disk (issue 21): a write that does not fit is a clean StoreFull naming the store,
what was committed before stays, reads keep working, and later writes fail the same way
(the ingest writer thread lives on).

A store with a tiny map is the same fault without a mount (LMDB's "map full"); the real
ENOSPC runs on a small tmpfs when the tests run as root.
"""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import lmdb
import pytest

from node.ingest.pipeline import BATCH_OBJECTS, Ingest
from node.ingest.writer import IngestWriter, WriterClosed
from node.service.api import Service
from node.store import Store, StoreError, StoreFull
from node.store import errors as store_mod
from protocols import kinds
from protocols.objects import SignedObject

from .helpers import NOW, member

WAIT_S = 60.0
TINY_MAP = 1 << 20  # an empty store takes ~45 KB; a few thousand objects fill the rest
SMALL_CALL = 20  # objects per ingest call while filling (a failed call loses at most these)
LATER_SMALL_CALL = BATCH_OBJECTS  # a call after "full": still one batch, written inline
MOST_CALLS = 2000  # a store that never fills is a failed test, not an endless loop
TMPFS_SIZE = "2m"

T = TypeVar("T")


def within(fn: Callable[[], T], timeout: float = WAIT_S) -> T:
    """Run `fn` on a thread and wait at most `timeout`: a hung writer fails the test."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(fn).result(timeout=timeout)


def fill(ingest: Ingest, objs: Iterator[SignedObject]) -> tuple[list[SignedObject], StoreFull]:
    """Ingest small calls until the store is full: the objects stored, and the error."""
    stored: list[SignedObject] = []
    for _ in range(MOST_CALLS):
        batch = [next(objs) for _ in range(SMALL_CALL)]
        try:
            result = ingest.ingest([o.raw for o in batch], now=NOW)
        except StoreFull as exc:
            return stored, exc
        assert result.rejected == []
        stored += batch
    raise AssertionError(f"the store took {len(stored)} objects and never filled up")


def projects(seed: str) -> Iterator[SignedObject]:
    m = member(seed)
    lab = m.lab()
    yield lab
    i = 0
    while True:
        yield m.project(lab, f"Project {seed} {i}", "a summary with some words in it")
        i += 1


def assert_still_readable(store: Store, svc: Service, stored: list[SignedObject]) -> None:
    with store.read() as txn:
        assert all(store.has(o.id, txn) for o in stored)
        assert store.count(txn) == len(stored)
        assert store.get(txn, stored[-1].id) == stored[-1]
    listed = svc.call("projects", {"limit": 200})["items"]
    assert listed[0]["id"] == stored[-1].id.hex()
    assert svc.call("status", {})["objects"] == len(stored)


def test_map_full_is_a_clean_store_full(tmp_path: Path) -> None:
    store = Store(tmp_path / "store", map_size=TINY_MAP)
    ingest = Ingest(store, check_workers=0)
    try:
        svc = Service(tmp_path, store, ingest)
        objs = projects("full")
        stored, exc = within(lambda: fill(ingest, objs))
        assert len(stored) > SMALL_CALL
        assert str(tmp_path / "store") in str(exc) and "is full" in str(exc)
        assert_still_readable(store, svc, stored)
        # Later writes fail the same way: a small call (one batch, written inline), and a
        # large one, which goes through the writer thread (twice: the thread is still there).
        # The small call is far more than SMALL_CALL: pages an old read snapshot held when
        # the filling call failed (a listener's read on another thread) are free again once
        # it ends, and may hold a few more objects; "full" is about what does not fit.
        for n in (LATER_SMALL_CALL, BATCH_OBJECTS + 500, BATCH_OBJECTS + 500):
            more = [next(objs) for _ in range(n)]
            try:
                within(lambda more=more: ingest.ingest([o.raw for o in more], now=NOW))
            except StoreFull:
                continue
            pytest.fail(f"a later call of {n} objects was stored in a full store")
        assert_still_readable(store, svc, stored)
    finally:
        ingest.close()
        store.close()
    # What was committed is on disk: a reopen (with room) has all of it.
    again = Store(tmp_path / "store")
    try:
        with again.read() as txn:
            assert again.count(txn) == len(stored)
    finally:
        again.close()


def test_commit_errors_say_disk_full_only_when_it_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """LMDB reports a short write of its pages at commit as EIO: with the disk (nearly)
    full that is a full disk; with room left it is an I/O error, not "disk full"."""
    eio = lmdb.Error(f"mdb_txn_commit: {os.strerror(errno.EIO)}")
    monkeypatch.setattr(store_mod, "_free_bytes", lambda _: 4096)
    full = store_mod.store_error(eio, tmp_path, "store objects")
    assert isinstance(full, StoreFull)
    assert f"the disk holding {tmp_path} is full" in str(full)
    monkeypatch.setattr(store_mod, "_free_bytes", lambda _: 10 * store_mod.LOW_DISK_BYTES)
    other = store_mod.store_error(eio, tmp_path, "store objects")
    assert type(other) is StoreError and os.strerror(errno.EIO) in str(other)
    enospc = lmdb.DiskError(f"mdb_txn_commit: {os.strerror(errno.ENOSPC)}")
    assert isinstance(store_mod.store_error(enospc, tmp_path, "store objects"), StoreFull)


class _Failing:
    """A store whose writes raise what it is given."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    def write_batch(self, objs: Any) -> Any:
        raise self.exc


def _one_checked() -> list[Any]:
    lab = member("w").lab()
    return [(lab, kinds.kind_spec(lab.kind))]


def test_writer_survives_a_failed_write() -> None:
    failing = _Failing(StoreFull("the disk holding /x is full"))
    writer = IngestWriter(failing, most_objects=1000)  # type: ignore[arg-type]
    try:
        for _ in range(3):
            with pytest.raises(StoreFull):
                writer.submit(_one_checked()).result(WAIT_S)
    finally:
        writer.close()


def test_a_writer_that_stops_fails_what_waits_instead_of_hanging() -> None:
    writer = IngestWriter(_Failing(SystemExit(1)), most_objects=1000)  # type: ignore[arg-type]
    with pytest.raises(WriterClosed):
        writer.submit(_one_checked()).result(WAIT_S)
    with pytest.raises(WriterClosed):
        writer.submit(_one_checked())
    writer.close()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mnt = tmp_path / "disk"
    mnt.mkdir()
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE}", "tmpfs", str(mnt)],
        capture_output=True, text=True, timeout=WAIT_S,
    )  # fmt: skip
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=True, timeout=WAIT_S)


def test_disk_full_for_real(small_disk: Path, tmp_path: Path) -> None:
    store = Store(small_disk / "store")
    ingest = Ingest(store, check_workers=0)
    try:
        svc = Service(tmp_path, store, ingest)
        objs = projects("disk")
        stored, exc = within(lambda: fill(ingest, objs))
        assert f"the disk holding {small_disk / 'store'} is full" in str(exc), str(exc)
        assert_still_readable(store, svc, stored)
        more = [next(objs) for _ in range(BATCH_OBJECTS + 500)]
        with pytest.raises(StoreFull):
            within(lambda: ingest.ingest([o.raw for o in more], now=NOW))
        assert_still_readable(store, svc, stored)
    finally:
        ingest.close()
        store.close()

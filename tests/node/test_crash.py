"""Crash safety: SIGKILL a process ingesting into the store at random points, then reopen the
store and check that its indexes are consistent and that nothing reported committed is lost."""

from __future__ import annotations

import itertools
import os
import random
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from node.store.store import Store

from . import crash_child
from .helpers import check_consistency

CHILD = Path(crash_child.__file__)
PYTHON = Path(sys.prefix) / "bin" / "python"
KILLS = 24
BUDGET_S = 60.0


class Child:
    def __init__(self, store_dir: Path, seed: int) -> None:
        self.proc = subprocess.Popen(
            [str(PYTHON), str(CHILD), str(store_dir), str(seed)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=CHILD.parents[2],
        )  # fmt: skip
        assert self.proc.stdout is not None
        os.set_blocking(self.proc.stdout.fileno(), False)
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.proc.stdout, selectors.EVENT_READ)
        self.buf = b""
        self.reported: list[int] = []

    def _read(self, timeout: float) -> bool:
        """Read what is available within `timeout`; False at EOF."""
        if not self.sel.select(timeout):
            return True
        assert self.proc.stdout is not None
        chunk = self.proc.stdout.read()
        if not chunk:
            return False
        self.buf += chunk
        *lines, self.buf = self.buf.split(b"\n")
        self.reported += [int(x) for x in lines]
        return True

    def wait_reports(self, n: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while len(self.reported) < n:
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.poll() is not None else ""
                raise AssertionError(f"child reported {len(self.reported)} < {n} batches {err}")
            self._read(min(left, 0.5))

    def kill_and_drain(self) -> int:
        """SIGKILL, then collect every line the child flushed before dying."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        while self._read(1.0):
            pass
        assert self.proc.returncode == -signal.SIGKILL, self.proc.stderr.read().decode()
        self.sel.close()
        self.proc.stdout.close()  # type: ignore[union-attr]
        self.proc.stderr.close()  # type: ignore[union-attr]
        return self.reported[-1] if self.reported else 0


@pytest.mark.slow
def test_sigkill_during_ingest_loses_nothing_committed(tmp_path: Path) -> None:
    store_dir = tmp_path / "store"
    rng = random.Random(20261123)
    committed_ids: list[bytes] = []
    deadline = time.monotonic() + BUDGET_S
    kills = 0
    for seed in range(KILLS):
        if kills >= KILLS or time.monotonic() > deadline:
            break
        child = Child(store_dir, seed)
        try:
            if rng.random() < 0.2:  # early: while opening the store or in the first batch
                time.sleep(rng.uniform(0.0, 0.4))
            else:
                child.wait_reports(rng.randint(1, 6), timeout=30)
                time.sleep(rng.uniform(0.0, 0.03))  # land anywhere inside the next batch
            count = child.kill_and_drain()
        finally:
            if child.proc.poll() is None:
                child.proc.kill()
                child.proc.wait()
        kills += 1
        # Regenerate exactly the objects the child reported as committed.
        gen = crash_child.batches(seed)
        done: list[bytes] = []
        while len(done) < count:
            done += [o.id for o in next(gen)]
        assert len(done) == count, "a report must fall on a batch boundary"
        committed_ids += done

        store = Store(store_dir, map_size=1 << 30)
        try:
            problems = check_consistency(store)
            assert problems == [], f"after kill {kills} (seed {seed}): {problems[:10]}"
            with store.read() as txn:
                lost = [oid.hex() for oid in committed_ids if not store.has(oid, txn)]
                total = sum(1 for _ in store.iter_objects(txn))
        finally:
            store.close()
        assert lost == [], f"after kill {kills}: {len(lost)} committed objects lost"
        assert total > 0 or not committed_ids
    assert kills >= 20, f"only {kills} kills within {BUDGET_S} s"
    assert len(set(committed_ids)) > 500  # the children really did work between kills
    # The store keeps working after all that.
    store = Store(store_dir, map_size=1 << 30)
    try:
        from node.ingest.pipeline import Ingest

        ing = Ingest(store)
        for batch in itertools.islice(crash_child.batches(1000), 3):
            result = ing.ingest([o.raw for o in batch], now=crash_child.NOW)
            assert result.rejected == [] and len(result.stored) > 0
        ing.close()
        assert check_consistency(store) == []
    finally:
        store.close()


INDEXES_TO_DAMAGE = (
    "by_kind", "by_author", "by_lab", "by_target", "by_label", "sync", "words", "tagwords",
)  # fmt: skip


def test_consistency_checker_notices_damage(tmp_path: Path) -> None:
    """check_consistency must see a missing entry, a stale entry and a lost object."""
    from node.ingest.pipeline import Ingest

    store = Store(tmp_path / "store", map_size=1 << 30)
    try:
        ing = Ingest(store)
        for batch in itertools.islice(crash_child.batches(7), 4):
            ing.ingest([o.raw for o in batch], now=crash_child.NOW)
        ing.close()
        assert check_consistency(store) == []
        for name in INDEXES_TO_DAMAGE:
            with store.env.begin(write=True) as txn:
                cur = txn.cursor(db=store.db[name])
                assert cur.first()
                key, value = cur.item()
                cur.delete()
            assert any("missing" in p for p in check_consistency(store)), name
            with store.env.begin(write=True) as txn:
                txn.put(key, value, db=store.db[name])
                txn.put(key[:-1] + bytes([key[-1] ^ 1]), value, db=store.db[name])
            assert any("stale" in p for p in check_consistency(store)), name
            with store.env.begin(write=True) as txn:
                txn.delete(key[:-1] + bytes([key[-1] ^ 1]), db=store.db[name])
            assert check_consistency(store) == []
        with store.env.begin(write=True) as txn:
            cur = txn.cursor(db=store.db["objects"])
            assert cur.last()
            cur.delete()
        assert check_consistency(store) != []
    finally:
        store.close()

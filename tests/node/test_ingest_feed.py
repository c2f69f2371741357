"""What sync's catch-up needs of ingest: ids the caller hashed, the `checked` callback, no
small tail batch or write, and the session feed that ingests fetched frames in large calls
(node/sync/feed.py)."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import trio
import trio.testing

from node.ingest import pipeline as ingest_mod
from node.ingest.pipeline import Ingest, IngestResult, check_batches
from node.store.store import Store, Stored
from node.sync import feed as feed_mod
from node.sync import fetch as fetch_mod
from node.sync import service as service_mod
from node.sync.feed import IngestFeed
from node.sync.service import SyncService
from protocols import errors
from protocols.objects import decode, object_id
from protocols.reconcile_limits import SYNC_PROTOCOL_IDS
from protocols.sync_messages import FETCH_PROTOCOL_ID
from tests.mem_p2p import FakeP2P

from .helpers import NOW, check_consistency, member

WAIT_S = 30.0


def _projects(n: int) -> list[bytes]:
    ada = member("ada")
    lab = ada.lab()
    return [lab.raw] + [ada.project(lab, f"Project {i}").raw for i in range(n - 1)]


def _ids(raws: list[bytes]) -> list[bytes]:
    return [object_id(r) for r in raws]


def _corrupt(raw: bytes) -> bytes:
    b = bytearray(raw)
    b[-1] ^= 0x80  # the signature no longer verifies
    return bytes(b)


def test_check_batches_fold_a_small_remainder_into_the_last_batch() -> None:
    assert list(check_batches(2048)) == [(0, 1000), (1000, 2048)]
    assert list(check_batches(2064)) == [(0, 1000), (1000, 2000), (2000, 2064)]
    assert list(check_batches(1001)) == [(0, 1001)]
    assert list(check_batches(3000)) == [(0, 1000), (1000, 2000), (2000, 3000)]
    for n in (1, 999, 1063, 1064, 5000, 8192, 16384):
        spans = list(check_batches(n))
        assert spans[0][0] == 0 and spans[-1][1] == n
        assert all(a[1] == b[0] for a, b in itertools.pairwise(spans))
        assert all(end - start >= min(n, ingest_mod.PARALLEL_CHECK_MIN) for start, end in spans)


def test_ids_from_the_caller_give_the_same_result(store: Store, ingest: Ingest) -> None:
    raws = _projects(1500)
    raws[7] = _corrupt(raws[7])
    raws.append(raws[3])  # a copy in the same call
    ids = [object_id(r) for r in raws]
    result = ingest.ingest(raws, now=NOW, ids=ids)
    assert [r.index for r in result.rejected] == [7]
    assert result.rejected[0].code == errors.BadSignature.code
    assert result.rejected[0].oid == ids[7]
    assert [s.obj.id for s in result.stored] == [i for n, i in enumerate(ids[:-1]) if n != 7]
    assert result.known == 1
    assert check_consistency(store) == []
    again = ingest.ingest(raws[:10], now=NOW, ids=ids[:10])
    assert again.known == 9 and [r.index for r in again.rejected] == [7]


@pytest.mark.parametrize("n", [40, 1500])
def test_a_fresh_call_stores_the_same_and_counts_what_was_stored_meanwhile(
    store: Store, ingest: Ingest, n: int
) -> None:
    """`fresh` skips the known-id look-ups; objects stored meanwhile are still not stored
    twice, only counted as known (by the write)."""
    raws = _projects(n)
    raws[5] = _corrupt(raws[5])
    first = ingest.ingest(raws[: n // 2], now=NOW)
    result = ingest.ingest(raws, now=NOW, ids=_ids(raws), fresh=True)
    assert [r.index for r in result.rejected] == [5]
    assert len(first.stored) + len(result.stored) == n - 1
    assert {s.obj.id for s in result.stored} == {object_id(r) for r in raws[n // 2 :]}
    assert result.known == n // 2 - 1
    assert check_consistency(store) == []


def test_ids_of_another_length_are_refused(ingest: Ingest) -> None:
    raws = _projects(3)
    with pytest.raises(ValueError, match="2 ids for 3 objects"):
        ingest.ingest(raws, now=NOW, ids=[object_id(r) for r in raws[:2]])


@pytest.mark.parametrize("n", [10, 1500])
def test_checked_is_called_once_before_the_call_returns(ingest: Ingest, n: int) -> None:
    calls: list[str] = []
    result = ingest.ingest(_projects(n), now=NOW, checked=lambda: calls.append("checked"))
    calls.append("returned")
    assert calls == ["checked", "returned"] and len(result.stored) == n


def test_checked_does_not_wait_for_the_last_write(
    store: Store, ingest: Ingest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The next call may start while this one's last write is still going on: the last write
    here waits for `checked` (it would time out if `checked` waited for it)."""
    monkeypatch.setattr(ingest_mod, "BATCH_OBJECTS", 100)
    monkeypatch.setattr(ingest_mod, "WRITE_BATCH_OBJECTS", 200)
    checked = threading.Event()
    write_batch = store.write_batch
    written: list[tuple[int, bool]] = []

    def write(objs: Any) -> Any:
        last = sum(n for n, _ in written) + len(objs) == 1000
        written.append((len(objs), checked.wait(WAIT_S) if last else checked.is_set()))
        return write_batch(objs)

    monkeypatch.setattr(store, "write_batch", write)
    result = ingest.ingest(_projects(1000), now=NOW, checked=checked.set)
    assert len(result.stored) == 1000
    assert written[0] == (200, False) and written[-1][1] is True


def test_the_rest_of_a_call_joins_its_last_write(
    ingest: Ingest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Less than a write batch left: it joins the current write (within the maximum)."""
    monkeypatch.setattr(ingest_mod, "BATCH_OBJECTS", 100)
    monkeypatch.setattr(ingest_mod, "WRITE_BATCH_OBJECTS", 400)
    monkeypatch.setattr(ingest_mod, "MAX_WRITE_BATCH_OBJECTS", 1000)
    parts: list[int] = []
    ingest.listeners.append(lambda part: parts.append(len(part)))
    result = ingest.ingest(_projects(819), now=NOW)
    assert len(result.stored) == 819
    assert parts == [400, 419]  # not 400, 400 and 19


# ---- the session feed ------------------------------------------------------------------


class _Host:
    """The feed's host over a real Ingest (what node/sync/fetching.py does, minus peers)."""

    def __init__(self, ingest: Ingest) -> None:
        self.ingest = ingest
        self.calls: list[int] = []
        self.checking = 0
        self.most_checking = 0
        self.violations: list[str] = []
        self.passed_on = 0
        self._lock = threading.Lock()

    def _ingest_from(
        self,
        peer_id: str,
        raws: list[bytes],
        oids: list[bytes],
        checked: Callable[[], None] | None = None,
        *,
        fresh: bool = False,
    ) -> IngestResult:
        with self._lock:
            self.calls.append(len(raws))
            self.checking += 1
            self.most_checking = max(self.most_checking, self.checking)

        def done_checking() -> None:
            with self._lock:
                self.checking -= 1
            if checked is not None:
                checked()

        assert oids == [object_id(r) for r in raws]
        assert fresh  # the feed's frames come from fetches of ids found unstored
        return self.ingest.ingest(raws, now=NOW, ids=oids, checked=done_checking, fresh=fresh)

    def _pass_on(self, stored: list[Stored]) -> None:
        self.passed_on += len(stored)

    def _violation(self, peer_id: str, reason: str) -> None:
        self.violations.append(reason)


def test_the_feed_ingests_frames_in_large_calls_one_checking_at_a_time(
    store: Store, ingest: Ingest, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(feed_mod, "FEED_CALL_OBJECTS", 1200)
    raws = _projects(3000)
    bad = {450, 451, 2100}  # two in the second frame, one in the sixth
    for i in bad:
        raws[i] = _corrupt(raws[i])
    frames = [raws[i : i + 400] for i in range(0, len(raws), 400)]
    host = _Host(ingest)
    feed = IngestFeed(host, "peer")
    progress: list[int] = []
    feed.on_progress = lambda: progress.append(feed.stored)
    done: list[int] = []

    async def main() -> None:
        with trio.fail_after(WAIT_S):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(feed.run)
                for n, frame in enumerate(frames):
                    await feed.put(frame, _ids(frame), partial(done.append, n))
                await feed.put([], [], lambda: done.append(-1))  # an end marker alone
                feed.close()

    trio.run(main)
    assert feed.stored == len(raws) - len(bad) == host.passed_on
    assert sum(host.calls) == len(raws) and max(host.calls) <= 1200
    assert len(host.calls) < len(frames)  # frames were put together
    assert host.most_checking == 1
    assert sorted(done) == [-1, *range(len(frames))]
    assert progress and progress[-1] == feed.stored
    # One strike per frame that held invalid objects.
    assert len(host.violations) == 2
    assert "2 invalid objects" in " ".join(host.violations)
    assert check_consistency(store) == []


def test_a_full_feed_makes_the_fetch_wait(
    ingest: Ingest, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(feed_mod, "FEED_MAX_BYTES", 1)
    raws = _projects(40)
    feed = IngestFeed(_Host(ingest), "peer")

    async def main() -> None:
        with trio.fail_after(WAIT_S):
            await feed.put(raws[:20], _ids(raws[:20]))  # over the limit now, nobody ingesting
            with trio.move_on_after(0.2) as waited:
                await feed.put(raws[20:], _ids(raws[20:]))
            assert waited.cancelled_caught
            async with trio.open_nursery() as nursery:
                nursery.start_soon(feed.run)
                await feed.put(raws[20:], _ids(raws[20:]))  # the feed drains: room again
                feed.close()

    trio.run(main)
    assert feed.stored == 40


# ---- a catch-up that takes longer than SESSION_DEADLINE_S ----------------------------------


def _two_nodes(tmp_path: Path, raws: list[bytes]) -> list[Any]:
    lab = decode(raws[0]).id
    sides = []
    for name in ("a", "b"):
        store = Store(tmp_path / name, map_size=1 << 30)
        sides.append(SimpleNamespace(
            store=store, ingest=Ingest(store), p2p=None, extra_status=[],
            service=SimpleNamespace(follows=lambda: {lab}), publish_object=lambda obj: None,
        ))  # fmt: skip
    assert not sides[0].ingest.ingest(raws, now=NOW).rejected
    return sides


async def _catch_up(a: Any, b: Any, lab: bytes, answer_delay_s: float) -> list[dict[str, Any]]:
    """B reconciles the lab's scope with A (resumed as the node does); A answers every
    fetch after `answer_delay_s`. Returns every session's summary."""
    summaries: list[dict[str, Any]] = []
    async with trio.open_nursery() as nursery:
        net: dict[str, FakeP2P] = {}
        a.p2p, b.p2p = FakeP2P("A", net, nursery), FakeP2P("B", net, nursery)
        sa, sb = SyncService(a), SyncService(b)
        for proto in SYNC_PROTOCOL_IDS:
            a.p2p.set_stream_handler(proto, sa._sync_handler(proto))

        async def slow_fetch(stream: Any) -> None:
            await trio.sleep(answer_delay_s)
            await sa._handle_fetch(stream)

        a.p2p.set_stream_handler(FETCH_PROTOCOL_ID, slow_fetch)
        one_session = sb.session

        async def counted(*args: Any) -> dict[str, Any]:
            summaries.append(await one_session(*args))
            return summaries[-1]

        sb.session = counted  # type: ignore[method-assign,assignment]
        with trio.fail_after(WAIT_S):
            await sb.reconcile_scope("A", lab)
        nursery.cancel_scope.cancel()
    return summaries


def test_a_catch_up_that_keeps_storing_outlives_the_session_deadline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SESSION_DEADLINE_S counts from the last progress once fetches store objects: five
    slow fetch answers in a row take over twice the deadline, and the session completes."""
    deadline_s = 2.0
    monkeypatch.setattr(service_mod, "SESSION_DEADLINE_S", deadline_s)
    monkeypatch.setattr(fetch_mod, "FETCH_PARALLEL", 1)
    monkeypatch.setattr(fetch_mod, "FETCH_BATCH", 150)  # five answers, one after the other
    raws = _projects(750)
    a, b = sides = _two_nodes(tmp_path, raws)
    try:
        t = time.monotonic()
        summaries = trio.run(_catch_up, a, b, decode(raws[0]).id, 1.0)
        assert time.monotonic() - t > 2 * deadline_s  # it did outlive the deadline
        (summary,) = summaries
        assert not summary.get("timed_out") and "error" not in summary, summary
        assert summary["fetched"] == summary["need"] == len(raws) - 1  # the lab is public
        assert a.p2p.violations == b.p2p.violations == []
        with b.store.read() as txn:
            assert b.store.count(txn) == len(raws) - 1
    finally:
        for side in sides:
            side.ingest.close()
            side.store.close()


def test_a_catch_up_cut_by_the_responders_deadline_fetches_on_and_reconciles_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The initiator's reconciliation waits while its fetch backlog is full, so a long
    catch-up outlasts the responder's own SESSION_DEADLINE_S (every release has one), which
    resets the sync stream. What was learnt is fetched still, and a new session finds the
    rest: B converges, without a violation."""
    monkeypatch.setattr(service_mod, "SESSION_DEADLINE_S", 1.5)  # A's, as responder, too
    monkeypatch.setattr(fetch_mod, "FETCH_PARALLEL", 1)
    monkeypatch.setattr(fetch_mod, "FETCH_BATCH", 100)
    monkeypatch.setattr(fetch_mod, "MAX_FETCH_BACKLOG", 100)  # reconcile no further meanwhile
    raws = _projects(600)
    a, b = sides = _two_nodes(tmp_path, raws)
    try:
        summaries = trio.run(_catch_up, a, b, decode(raws[0]).id, 0.5)
        assert "cut" in summaries[0] and summaries[0]["fetched"] > 0, summaries[0]
        last = summaries[-1]
        assert "cut" not in last and "error" not in last and not last["timed_out"], last
        assert sum(s["fetched"] for s in summaries) == len(raws) - 1
        assert a.p2p.violations == b.p2p.violations == []
        with a.store.read() as ta, b.store.read() as tb:
            assert b.store.count(tb) == a.store.count(ta) - 1  # all but the public lab
    finally:
        for side in sides:
            side.ingest.close()
            side.store.close()

"""Catch-up benchmark: reconciliation + fetch between two nodes' stores.

In-process: two real LMDB stores in temp dirs, each with its own ingest pipeline and the
real `node.sync.SyncService` session code (initiator, responder, fetch server, transports
and framing of p2p/sync_transport.py), connected by in-memory byte streams instead of
libp2p (no Noise/Yamux CPU cost; bytes are counted at the frame level, headers included).
The empty-node case is compared with bench/ingest.py's rate measured in the same run on the
same objects (`generate(n)` from bench/ingest.py; one lab, so the lab scope holds ~n items).

Cases (B pulls from A; A holds n objects):
  a) B lacks a contiguous 1% (an offline gap)      target: <= 1 s, bytes <= 1.1x missing bytes
  b) B lacks 1% scattered at random                target: bytes <= 2x missing bytes
  c) B lacks one object                            target: <= 3 round trips, <= 4 KB
  d) B is empty                                    target: rate >= 0.8x the ingest rate
Each case also runs "naive": B sends its full id list, A answers with the ids B lacks,
then the same fetch.

    .venv/bin/python bench/sync.py               # 100k objects
    .venv/bin/python bench/sync.py --quick --json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import trio
import trio.testing

import bench.ingest as ingest_bench
from node.ingest.pipeline import Ingest
from node.store.store import Store
from node.sync.service import SyncService
from p2p.framing import read_frame, write_end, write_frame
from p2p.sync_transport import SessionIO
from protocols import kinds
from protocols.objects import decode
from protocols.reconcile_limits import SYNC_PROTOCOL_IDS
from protocols.sync_messages import FETCH_PROTOCOL_ID

NOW = 2**47  # generated objects are dated 2026; never "in the future" here
TARGETS = {"a_seconds": 1.0, "a_bytes_ratio": 1.1, "b_bytes_ratio": 2.0, "c_round_trips": 3,
           "c_bytes": 4096, "d_rate_ratio": 0.8}  # fmt: skip


class MemStream:
    """An in-memory byte stream with the bits of a libp2p stream the sync code uses."""

    def __init__(self, inner: Any, peer_id: str, counter: list[int], protocol: str) -> None:
        self._s = inner
        self._counter = counter
        self.muxed_conn = SimpleNamespace(peer_id=peer_id)
        self._protocol = protocol

    def get_protocol(self) -> str:
        return self._protocol

    async def read(self, n: int | None = None) -> bytes:
        data: bytes = await self._s.receive_some(n)
        return data

    async def write(self, data: bytes) -> None:
        self._counter[0] += len(data)
        await self._s.send_all(data)

    async def close(self) -> None:
        await self._s.send_stream.aclose()

    async def reset(self) -> None:
        await self._s.aclose()


class FakeP2P:
    """Just enough of P2PNode: stream handlers, new_stream to the other fake, counters."""

    def __init__(self, peer_id: str, net: dict[str, FakeP2P], nursery: trio.Nursery) -> None:
        self.peer_id = peer_id
        self.net = net
        self.nursery = nursery
        self.handlers: dict[str, Any] = {}
        self.sent = [0]  # bytes written by this side, all streams
        self.streams = 0
        self.violations: list[str] = []
        net[peer_id] = self

    def set_stream_handler(self, proto: str, handler: Any) -> None:
        self.handlers[proto] = handler

    async def new_stream(self, peer: str, protos: list[str]) -> MemStream:
        other = self.net[peer]
        proto = next(p for p in protos if p in other.handlers)  # multistream-select's choice
        a, b = trio.testing.memory_stream_pair()
        self.streams += 1
        self.nursery.start_soon(
            other.handlers[proto], MemStream(b, self.peer_id, other.sent, proto)
        )
        return MemStream(a, peer, self.sent, proto)

    def connected_peers(self) -> list[dict[str, Any]]:
        return [{"peer_id": p, "addrs": []} for p in self.net if p != self.peer_id]

    def report_invalid(self, peer: str, reason: str) -> None:
        self.violations.append(reason)


def open_side(path: Path, labs: list[bytes]) -> Any:
    store = Store(path)
    ingest = Ingest(store)
    return SimpleNamespace(
        store=store, ingest=ingest, service=SimpleNamespace(follows=lambda: set(labs)),
        p2p=None, extra_status=[],
    )  # fmt: skip


def close_side(side: Any) -> None:
    side.ingest.close()
    side.store.close()


def scopes_of(raws: list[bytes]) -> list[bytes]:
    labs = [decode(r).id for r in raws if decode(r).kind == "lab"]
    return sorted(labs)


async def sync_run(a: Any, b: Any, scopes: list[bytes]) -> dict[str, Any]:
    """B initiates one session per scope with A (real SyncService code)."""
    async with trio.open_nursery() as nursery:
        net: dict[str, FakeP2P] = {}
        a.p2p, b.p2p = FakeP2P("A", net, nursery), FakeP2P("B", net, nursery)
        sa, sb = SyncService(cast(Any, a)), SyncService(cast(Any, b))
        for svc, p2p in ((sa, a.p2p), (sb, b.p2p)):
            for proto in SYNC_PROTOCOL_IDS:  # both versions, as the node serves them
                p2p.set_stream_handler(proto, svc._sync_handler(proto))
            p2p.set_stream_handler(FETCH_PROTOCOL_ID, svc._handle_fetch)
        sessions: list[dict[str, Any]] = []  # every session, resumed ones included
        one_session = sb.session

        async def counted(*args: Any) -> dict[str, Any]:
            summary = await one_session(*args)
            sessions.append(summary)
            return summary

        sb.session = counted  # type: ignore[method-assign]
        start = time.perf_counter()
        # What the node runs per scope: a session, resumed while it ran out of rounds.
        for scope in [kinds.PUBLIC_SCOPE, *scopes]:
            await sb.reconcile_scope("A", scope)
        elapsed = time.perf_counter() - start
        nursery.cancel_scope.cancel()
    errors = [s["error"] for s in sessions if "error" in s]
    assert not errors, errors
    fetches = b.p2p.streams - len(sessions)
    return {
        "seconds": elapsed,
        "sessions": len(sessions),
        "protocols": sorted({s["protocol"] for s in sessions}),
        "resumed": sum(1 for s in sessions if s.get("resumed")),
        "complete": all(s.get("complete") for s in sessions if s.get("resume_from") is None),
        "reconcile_bytes": sum(s.get("reconcile_bytes", 0) for s in sessions),
        "round_trips_max_session": max(s["rounds"] for s in sessions),
        "round_trips": sum(s["rounds"] for s in sessions) + fetches,
        "fetch_requests": fetches,
        "bytes_b_to_a": b.p2p.sent[0],
        "bytes_a_to_b": a.p2p.sent[0],
        "fetched": sum(s["fetched"] for s in sessions),
        "violations": a.p2p.violations + b.p2p.violations,
    }


async def naive_run(a: Any, b: Any, scopes: list[bytes]) -> dict[str, Any]:
    """B sends all its ids per scope; A answers with the ids B lacks; B fetches them with
    the same fetch code."""
    from node.store.sync_index import LmdbItems
    from protocols.reconcile_store import INFINITY, MIN_BOUND

    async with trio.open_nursery() as nursery:
        net: dict[str, FakeP2P] = {}
        a.p2p, b.p2p = FakeP2P("A", net, nursery), FakeP2P("B", net, nursery)
        sa, sb = SyncService(cast(Any, a)), SyncService(cast(Any, b))
        a.p2p.set_stream_handler("/percolab/fetch/1.0.0", sa._handle_fetch)

        async def id_list_handler(stream: Any) -> None:
            scope = await read_frame(stream)
            assert scope is not None
            theirs: set[bytes] = set()
            while (frame := await read_frame(stream)) is not None:
                theirs.update(frame[i : i + 32] for i in range(0, len(frame), 32))
            items = LmdbItems(a.store, scope)
            mine = [k[1] for k in items.iter_keys(MIN_BOUND, INFINITY, 1 << 30)]
            lack = b"".join(oid for oid in mine if oid not in theirs)
            for i in range(0, len(lack), 32 * 100_000):
                await write_frame(stream, lack[i : i + 32 * 100_000])
            await write_end(stream)

        a.p2p.set_stream_handler("naive", id_list_handler)
        start = time.perf_counter()
        rounds = 0
        for scope in [kinds.PUBLIC_SCOPE, *scopes]:
            items = LmdbItems(b.store, scope)
            ids = b"".join(k[1] for k in items.iter_keys(MIN_BOUND, INFINITY, 1 << 30))
            stream = await b.p2p.new_stream("A", ["naive"])
            await write_frame(stream, scope)
            for i in range(0, len(ids), 32 * 100_000):
                await write_frame(stream, ids[i : i + 32 * 100_000])
            await write_end(stream)
            need = bytearray()
            while (frame := await read_frame(stream)) is not None:
                need += frame
            rounds += 1
            want = [bytes(need[i : i + 32]) for i in range(0, len(need), 32)]
            for i in range(0, len(want), 2048):
                await sb.fetch_from("A", want[i : i + 2048], SessionIO())
                rounds += 1
        elapsed = time.perf_counter() - start
        nursery.cancel_scope.cancel()
    return {
        "seconds": elapsed,
        "round_trips": rounds,
        "bytes_b_to_a": b.p2p.sent[0],
        "bytes_a_to_b": a.p2p.sent[0],
    }


def digest(side: Any) -> tuple[int, int]:
    from node.store import sync_index

    with side.store.read() as txn:
        return sync_index.digest(side.store, txn)


def run_case(
    name: str, tmp: Path, full_dir: Path, base_dir: Path | None, extra: list[bytes],
    raws: list[bytes], missing: list[bytes], scopes: list[bytes], naive: bool,
) -> dict[str, Any]:  # fmt: skip
    """Copy A (full) and B (base + extra), run sync (and naive on fresh copies)."""
    out: dict[str, Any] = {"missing": len(missing), "missing_bytes": sum(map(len, missing))}
    for mode in ("sync", "naive") if naive else ("sync",):
        a_dir, b_dir = tmp / f"{name}-{mode}-a", tmp / f"{name}-{mode}-b"
        shutil.copytree(full_dir, a_dir)
        if base_dir is not None:
            shutil.copytree(base_dir, b_dir)
        a, b = open_side(a_dir, scopes), open_side(b_dir, scopes)
        try:
            if extra:
                b.ingest.ingest(extra, now=NOW)
            runner = sync_run if mode == "sync" else naive_run
            fig = trio.run(runner, a, b, scopes)
            assert digest(a) == digest(b), f"{name}/{mode}: B did not converge"
            total = fig["bytes_b_to_a"] + fig["bytes_a_to_b"]
            fig["bytes_total"] = total
            fig["bytes_per_missing_byte"] = round(total / max(1, out["missing_bytes"]), 3)
            fig["seconds"] = round(fig["seconds"], 3)
            if mode == "sync":
                fig["objects_per_s"] = round(len(missing) / fig["seconds"]) if missing else None
            out[mode] = fig
        finally:
            close_side(a)
            close_side(b)
            shutil.rmtree(a_dir, ignore_errors=True)
            shutil.rmtree(b_dir, ignore_errors=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--quick", action="store_true", help="20k objects (under a minute)")
    ap.add_argument("--json", action="store_true", help="figures as JSON on the last line")
    ap.add_argument("--no-naive", action="store_true", help="skip the naive comparison")
    args = ap.parse_args()
    n = 20_000 if args.quick else args.n
    ingest_bench.LABS = 1  # one lab: its scope holds (nearly) all n objects
    t = time.perf_counter()
    raws = ingest_bench.generate(n)
    gen_s = time.perf_counter() - t
    scopes = scopes_of(raws[:1])
    rng = random.Random(7)
    body = list(range(1, n))  # never remove the lab itself (index 0)
    k = max(1, n // 100)
    gap_start = n // 2
    gap = set(range(gap_start, gap_start + k))
    scattered = set(rng.sample([i for i in body if i not in gap], k))
    single = rng.choice([i for i in body if i not in gap and i not in scattered])
    pick = lambda idx: [raws[i] for i in sorted(idx)]  # noqa: E731

    tmp = Path(tempfile.mkdtemp(prefix="percolab-syncbench-"))
    try:
        # A: everything, through the pipeline; that is also the ingest rate of the run.
        full_dir, base_dir = tmp / "full", tmp / "base"
        a = open_side(full_dir, scopes)
        t = time.perf_counter()
        res = a.ingest.ingest(raws, now=NOW)
        ingest_s = time.perf_counter() - t
        assert not res.rejected and len(res.stored) == n
        close_side(a)
        ingest_rate = n / ingest_s
        b = open_side(base_dir, scopes)
        excluded = gap | scattered | {single}
        b.ingest.ingest([r for i, r in enumerate(raws) if i not in excluded], now=NOW)
        close_side(b)
        naive = not args.no_naive
        cases: dict[str, Any] = {}
        cases["a_gap"] = run_case("a", tmp, full_dir, base_dir, pick(scattered | {single}),
                                  raws, pick(gap), scopes, naive)  # fmt: skip
        cases["b_scattered"] = run_case("b", tmp, full_dir, base_dir, pick(gap | {single}),
                                        raws, pick(scattered), scopes, naive)  # fmt: skip
        cases["c_single"] = run_case("c", tmp, full_dir, base_dir, pick(gap | scattered),
                                     raws, pick({single}), scopes, naive)  # fmt: skip
        cases["d_empty"] = run_case("d", tmp, full_dir, None, [], raws, raws, scopes, naive)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    d = cases["d_empty"]["sync"]
    fig: dict[str, Any] = {
        "objects": n,
        "avg_object_bytes": round(sum(map(len, raws)) / n),
        "transport": "in-process, in-memory streams (real LMDB stores, real SyncService)",
        "generate_s": round(gen_s, 1),
        "ingest_per_s": round(ingest_rate),
        "cases": cases,
        "d_rate_ratio": round(d["objects_per_s"] / ingest_rate, 3),
        "targets": TARGETS,
        "cpus": os.cpu_count(),
    }
    a_, b_, c_ = (cases[x]["sync"] for x in ("a_gap", "b_scattered", "c_single"))
    fig["targets_met"] = {
        "a": a_["seconds"] <= TARGETS["a_seconds"]
        and a_["bytes_per_missing_byte"] <= TARGETS["a_bytes_ratio"],
        "b": b_["bytes_per_missing_byte"] <= TARGETS["b_bytes_ratio"],
        "c": c_["round_trips_max_session"] <= TARGETS["c_round_trips"]
        and c_["bytes_total"] <= TARGETS["c_bytes"],
        "d": fig["d_rate_ratio"] >= TARGETS["d_rate_ratio"],
    }
    print(f"objects: {n} (avg {fig['avg_object_bytes']} B), generated in {gen_s:.1f} s; "
          f"{fig['transport']}")  # fmt: skip
    print(f"ingest pipeline (fresh store): {ingest_rate:,.0f} objects/s")
    for name, case in cases.items():
        s = case["sync"]
        print(f"{name}: missing {case['missing']} ({case['missing_bytes']:,} B)")
        print(f"  sync : {s['seconds']:.3f} s, {s['sessions']} sessions "
              f"({'/'.join(s['protocols'])}, {s['resumed']} resumed), round trips "
              f"{s['round_trips_max_session']} (largest session) / {s['round_trips']} "
              f"(all, incl. {s['fetch_requests']} fetches), bytes B->A {s['bytes_b_to_a']:,} "
              f"A->B {s['bytes_a_to_b']:,} = {s['bytes_per_missing_byte']}x missing")  # fmt: skip
        if "naive" in case:
            v = case["naive"]
            print(f"  naive: {v['seconds']:.3f} s, round trips {v['round_trips']}, bytes "
                  f"B->A {v['bytes_b_to_a']:,} A->B {v['bytes_a_to_b']:,} = "
                  f"{v['bytes_per_missing_byte']}x missing")  # fmt: skip
    print(f"d: {d['objects_per_s']:,} objects/s = {fig['d_rate_ratio']}x ingest rate")
    print(f"targets met: {fig['targets_met']}")
    if args.json:
        print(json.dumps(fig))


if __name__ == "__main__":
    main()

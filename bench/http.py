"""HTTP API benchmark: requests/s and latency for a lab's first page and its Atom feed.

Seeds a fresh data directory with signed objects (default 100,000: projects, comments and tags
from 20 members, most in one lab) through the ingest pipeline, starts a real node
(`percolab node --http 127.0.0.1:0`), then drives it from a concurrent keep-alive client on
loopback (threads, one persistent connection each) for a fixed time per target.

Targets: >= 500 requests/s and p99 <= 50 ms for both, **cold**: a distinct URL per request,
so every request renders from the store (real feed readers and API clients ask for many
different URLs). Also printed, and labelled as such: "cached", the same URL again and again,
which measures the response cache after the first request, not the store.

    .venv/bin/python bench/http.py            # full run (100k objects)
    .venv/bin/python bench/http.py --quick    # < 1 min (10k objects, shorter runs)
    .venv/bin/python bench/http.py --json     # figures as one JSON object on the last line
"""

from __future__ import annotations

import sys
from pathlib import Path

# This file is named http.py: keep its directory off sys.path so `import http` is the stdlib.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import argparse  # noqa: E402
import http.client  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Any  # noqa: E402

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402

from node.config import STORE_DIR  # noqa: E402
from node.ingest.pipeline import Ingest, now_ms  # noqa: E402
from node.store.store import Store  # noqa: E402
from protocols import kinds  # noqa: E402
from protocols.objects import SignedObject  # noqa: E402
from tests.http.helpers import percolab, start_node  # noqa: E402

TARGET_RPS = 500.0
TARGET_P99_MS = 50.0
FULL_OBJECTS = 100_000
QUICK_OBJECTS = 10_000
FULL_SECONDS = 10.0
QUICK_SECONDS = 3.0
WARMUP_SECONDS = 1.0
CONCURRENCY = 8
MEMBERS = 20
OTHER_LABS = 4
LABELS = ("solar", "wood", "bikes", "textiles", "electronics", "food", "repair", "kids")
INGEST_CHUNK = 5_000
REQUEST_TIMEOUT_S = 30.0


def seed(data_dir: Path, n: int, rng: random.Random) -> str:
    """Put `n` signed objects into the data directory's store; returns the main lab's id."""
    members = [Ed25519PrivateKey.generate() for _ in range(MEMBERS)]
    t = now_ms() - n * 10 - 60_000
    objs: list[SignedObject] = []

    def make(key: Ed25519PrivateKey, kind: str, body: dict[str, Any]) -> SignedObject:
        nonlocal t
        t += 7
        obj = kinds.create(key, kind, body, t)
        objs.append(obj)
        return obj

    for i, key in enumerate(members):
        make(key, "profile", {"name": f"Member {i}", "about": "benchmark member"})
    labs = [make(members[i], "lab", {"name": f"Lab {i}", "description": "a benchmark lab",
                                     "place": "Loopback", "theme": ""})
            for i in range(1 + OTHER_LABS)]  # fmt: skip
    main = labs[0]
    projects: list[SignedObject] = []
    while len(objs) < n:
        key = rng.choice(members)
        roll = rng.random()
        if roll < 0.6 or not projects:
            lab = main if rng.random() < 0.9 else rng.choice(labs[1:])
            body = {"lab": lab.id, "title": f"Project {len(projects)} {rng.choice(LABELS)}",
                    "summary": "A benchmark project with a short summary of what it is about.",
                    "body": "Some longer text. " * 10, "stage": rng.choice(kinds.STAGES),
                    "needs": ["hands", "space"]}  # fmt: skip
            projects.append(make(key, "project", body))
        elif roll < 0.9:
            target = rng.choice(projects[-2000:])
            make(key, "comment", {"lab": target.body["lab"], "target": target.id,
                                  "parent": None, "body": "A comment on this project."})
        else:
            target = rng.choice(projects[-2000:])
            make(key, "tag", {"lab": target.body["lab"], "target": target.id,
                              "labels": rng.sample(LABELS, 2)})  # fmt: skip
    store = Store(data_dir / STORE_DIR)
    ingest = Ingest(store)
    try:
        for start in range(0, len(objs), INGEST_CHUNK):
            result = ingest.ingest([o.raw for o in objs[start : start + INGEST_CHUNK]])
            assert not result.rejected, result.rejected[:3]
    finally:
        ingest.close()
        store.close()
    percolab(data_dir, "lab", "follow", main.id_hex)
    return main.id_hex


@dataclass
class Figures:
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


def _percentile(sorted_ms: list[float], q: float) -> float:
    if not sorted_ms:
        return float("nan")
    return sorted_ms[min(len(sorted_ms) - 1, int(q * len(sorted_ms)))]


def load(
    host: str, port: int, path_for: Callable[[int], str], seconds: float, concurrency: int
) -> Figures:
    """`concurrency` threads, each on one keep-alive connection, GET `path_for(n)` for
    n = 0, 1, 2, ... (spread over the threads) until `seconds` have passed."""
    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    errors = [0] * concurrency
    start_gate = threading.Barrier(concurrency + 1)
    stop_at = [0.0]

    def worker(i: int) -> None:
        conn = http.client.HTTPConnection(host, port, timeout=REQUEST_TIMEOUT_S)
        n = i
        start_gate.wait()
        while time.perf_counter() < stop_at[0]:
            path = path_for(n)
            n += concurrency
            t0 = time.perf_counter()
            try:
                conn.request("GET", path)
                resp = conn.getresponse()
                resp.read()
                ok = resp.status == 200
            except (OSError, http.client.HTTPException):
                ok = False
                conn.close()
                conn = http.client.HTTPConnection(host, port, timeout=REQUEST_TIMEOUT_S)
            latencies[i].append((time.perf_counter() - t0) * 1000)
            if not ok:
                errors[i] += 1
        conn.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(concurrency)]
    for th in threads:
        th.start()
    began = time.perf_counter()
    stop_at[0] = began + seconds
    start_gate.wait()
    for th in threads:
        th.join()
    elapsed = time.perf_counter() - began
    all_ms = sorted(ms for per in latencies for ms in per)
    return Figures(len(all_ms), round(elapsed, 2), round(len(all_ms) / elapsed, 1),
                   round(_percentile(all_ms, 0.50), 2), round(_percentile(all_ms, 0.99), 2),
                   sum(errors))  # fmt: skip


def _paths(path: str, mode: str, offset: int) -> Callable[[int], str]:
    if mode == "cached":
        return lambda n: path
    return lambda n: f"{path}?limit=50&n={offset + n}"  # a new URL: never a cache hit


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small store, short runs (< 1 min)")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON last")
    ap.add_argument("--objects", type=int, help="objects to seed")
    ap.add_argument("--seconds", type=float, help="measuring time per scenario")
    ap.add_argument("--concurrency", type=int, default=CONCURRENCY)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    n = args.objects or (QUICK_OBJECTS if args.quick else FULL_OBJECTS)
    seconds = args.seconds or (QUICK_SECONDS if args.quick else FULL_SECONDS)
    tmp = Path(tempfile.mkdtemp(prefix="percolab-bench-http-"))
    report: dict[str, Any] = {"objects": n, "concurrency": args.concurrency,
                              "seconds_per_scenario": seconds,
                              "targets": {"rps": TARGET_RPS, "p99_ms": TARGET_P99_MS}}  # fmt: skip
    try:
        percolab(tmp, "init", "--unencrypted-key", "--name", "Bench")
        t0 = time.perf_counter()
        lab = seed(tmp, n, random.Random(args.seed))
        report["seed_seconds"] = round(time.perf_counter() - t0, 1)
        print(f"seeded {n} objects in {report['seed_seconds']} s", flush=True)
        node = start_node(tmp)
        try:
            host, port = node.base.removeprefix("http://").split(":")
            scenarios = {
                "page": f"/api/v1/labs/{lab}/projects",
                "feed": f"/feeds/lab/{lab}.atom",
            }
            results: dict[str, Any] = {}
            for name, path in scenarios.items():
                for mode in ("cold", "cached"):
                    load(host, int(port), _paths(path, mode, 0), WARMUP_SECONDS,
                         args.concurrency)  # fmt: skip
                    fig = load(host, int(port), _paths(path, mode, 10**9), seconds,
                               args.concurrency)  # fmt: skip
                    entry = fig.__dict__ | {
                        "rps_ratio": round(fig.rps / TARGET_RPS, 2),
                        "p99_ratio": round(TARGET_P99_MS / fig.p99_ms, 2) if fig.p99_ms else 0,
                        "meets_targets": fig.rps >= TARGET_RPS and fig.p99_ms <= TARGET_P99_MS,
                    }  # fmt: skip
                    results[f"{name}_{mode}"] = entry
                    label = "cold" if mode == "cold" else "cached (response cache)"
                    print(f"{name:4} {label:23}: {fig.rps:8.1f} req/s "
                          f"({entry['rps_ratio']:.2f}x target), p50 {fig.p50_ms:6.2f} ms, "
                          f"p99 {fig.p99_ms:6.2f} ms ({entry['p99_ratio']:.2f}x headroom), "
                          f"{fig.requests} requests, {fig.errors} errors", flush=True)
            report["results"] = results
        finally:
            node.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())

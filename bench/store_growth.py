"""Store growth benchmark: the store's write cost per object as it grows to N objects.

Writes bench/ingest.py's object mix straight into a fresh store with `Store.write_batch`
(no checks: the objects carry a zero signature, so generating 1M takes seconds), in
transactions of `--batch` objects, and prints the cost per object of each 100k: wall time,
CPU (user, system) and the rate of the last 100k as a fraction of the first (the issue's
"the rate holds at 1M": 1.0 is flat).

    .venv/bin/python bench/store_growth.py              # 1M objects, 4000 a transaction
    .venv/bin/python bench/store_growth.py --batch 16000
    .venv/bin/python bench/store_growth.py --quick --json
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import msgpack
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from ingest import generate

from node.ingest.pipeline import WRITE_BATCH_OBJECTS
from node.store.store import Store
from protocols import kinds, objects

CHUNK = 100_000


class _TimedCommits:
    """Wraps the store's LMDB environment: write transactions add their commit's seconds
    (page writes and fsync, the part that grows with the store) to `seconds`."""

    def __init__(self, env: Any) -> None:
        self.env, self.seconds = env, 0.0

    def begin(self, **kw: Any) -> Any:
        txn = self.env.begin(**kw)
        return _TimedTxn(txn, self) if kw.get("write") else txn

    def __getattr__(self, name: str) -> Any:
        return getattr(self.env, name)


class _TimedTxn:
    def __init__(self, txn: Any, clock: _TimedCommits) -> None:
        self.txn, self.clock = txn, clock

    def __enter__(self) -> Any:
        return self.txn.__enter__()  # the real transaction: no wrapper on the hot path

    def __exit__(self, *exc: Any) -> Any:
        start = time.perf_counter()
        try:
            return self.txn.__exit__(*exc)
        finally:
            self.clock.seconds += time.perf_counter() - start


def unsigned(
    key: Ed25519PrivateKey, kind: str, ts: int, body: dict[str, Any]
) -> objects.SignedObject:
    """An object with the real layout and a zero signature: the store does not verify."""
    author = objects.public_key_bytes(key)
    raw = msgpack.packb(
        [objects.VERSION, kind, author, ts, objects.canonical(body), bytes(64)], use_bin_type=True
    )
    return objects.decode_checked(raw, objects.object_id(raw))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--batch", type=int, default=WRITE_BATCH_OBJECTS)
    ap.add_argument("--quick", action="store_true", help="200k objects (under a minute)")
    ap.add_argument("--json", action="store_true", help="figures as JSON on the last line")
    args = ap.parse_args()
    n = 200_000 if args.quick else args.n
    raws = generate(n, sign=unsigned)
    tmp = Path(tempfile.mkdtemp(prefix="percolab-growth-"))
    chunks: list[dict[str, float]] = []
    gc.disable()  # as during a large ingest call (node.ingest.cyclic_gc_paused)
    try:
        store = Store(tmp / "store")
        commits = _TimedCommits(store.env)
        store.env = commits
        for start in range(0, n, CHUNK):
            r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
            commits.seconds = 0.0
            for b in range(start, min(n, start + CHUNK), args.batch):
                good = []
                for raw in raws[b : min(b + args.batch, start + CHUNK)]:
                    obj = objects.decode_checked(raw, objects.object_id(raw))
                    good.append((obj, kinds.kind_spec(obj.kind)))
                store.write_batch(good)
            r1, wall = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter() - t0
            done = min(n, start + CHUNK) - start
            chunks.append({
                "stored": start + done,
                "wall_us": 1e6 * wall / done,
                "user_us": 1e6 * (r1.ru_utime - r0.ru_utime) / done,
                "sys_us": 1e6 * (r1.ru_stime - r0.ru_stime) / done,
                "commit_us": 1e6 * commits.seconds / done,
            })  # fmt: skip
            c = chunks[-1]
            print(f"{c['stored']:>9,} stored: {c['wall_us']:6.1f} us an object "
                  f"(user {c['user_us']:5.1f}, sys {c['sys_us']:5.1f}; "
                  f"commit {c['commit_us']:5.1f})", flush=True)  # fmt: skip
        store.close()
        disk = sum(f.stat().st_size for f in (tmp / "store").iterdir())
    finally:
        gc.enable()
        shutil.rmtree(tmp, ignore_errors=True)
    held = chunks[0]["wall_us"] / chunks[-1]["wall_us"]
    print(f"{args.batch} objects a transaction; the last 100k's rate is {held:.2f}x the first's "
          f"(1.0: the rate holds); disk {disk / 1e6:,.0f} MB")  # fmt: skip
    if args.json:
        print(json.dumps({"objects": n, "batch": args.batch, "chunks": chunks,
                          "last_over_first_rate": round(held, 3), "disk_bytes": disk}))  # fmt: skip


if __name__ == "__main__":
    main()

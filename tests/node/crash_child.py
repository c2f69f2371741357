"""Child process of test_crash.py: ingests generated signed objects into a store, forever.

    python crash_child.py STORE_DIR SEED

After each `Ingest.ingest` call returns it prints (and flushes) how many generated objects
have been committed so far. `batches(seed)` is deterministic (Ed25519 signatures are), so
the parent regenerates exactly the objects behind any printed count.
"""

from __future__ import annotations

import hashlib
import random
import sys
from collections.abc import Iterator
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from protocols import kinds
from protocols.objects import SignedObject

T0 = 1_700_000_000_000
NOW = T0 + 10**12


def batches(seed: int) -> Iterator[list[SignedObject]]:
    """Batches of valid objects: labs, projects, comments (threaded), tags, retractions
    (own objects, before or after their target, and other members' that hide nothing),
    plus re-deliveries. Retractions never share a batch with their target."""
    rng = random.Random(seed)
    keys = [Ed25519PrivateKey.from_private_bytes(hashlib.sha256(f"{seed}/{i}".encode()).digest())
            for i in range(3)]  # fmt: skip
    clock = [T0 + seed * 10**8]
    n = [0]

    def make(key: Ed25519PrivateKey, kind: str, body: dict) -> SignedObject:
        clock[0] += 1
        return kinds.create(key, kind, body, clock[0])

    labs = [make(keys[0], "lab", {"name": f"Lab {seed}", "description": "", "place": "",
                                  "theme": ""})]  # fmt: skip
    projects: list[SignedObject] = []
    threads: list[tuple[Ed25519PrivateKey, SignedObject]] = []  # (author, comment or tag)
    sent: list[SignedObject] = []
    early: list[tuple[Ed25519PrivateKey, SignedObject]] = []  # to send after their retraction
    pending_first: list[SignedObject] = []
    yield labs
    sent += labs
    while True:
        batch: list[SignedObject] = []
        if pending_first and rng.random() < 0.5:
            batch.append(pending_first.pop(0))  # a target after its (earlier) retraction
        for _ in range(rng.randint(20, 250)):
            n[0] += 1
            roll = rng.random()
            key = rng.choice(keys)
            lab = rng.choice(labs)
            if roll < 0.25 or not projects:
                p = make(key, "project", {
                    "lab": lab.id, "title": f"Project {n[0]} of s{seed}",
                    "summary": rng.choice(["solar heat", "wind power", "open data", ""]),
                    "body": "x" * rng.randint(0, 3000), "stage": "idea", "needs": [],
                })  # fmt: skip
                batch.append(p)
            elif roll < 0.5:
                target = rng.choice(projects)
                parent = rng.choice(threads)[1] if threads and rng.random() < 0.3 else None
                if parent is not None and parent.kind != "comment":
                    parent = None
                c = make(key, "comment", {"lab": target.body["lab"], "target": target.id,
                                          "parent": parent.id if parent else None,
                                          "body": f"comment {n[0]}"})  # fmt: skip
                if rng.random() < 0.05:  # its retraction will arrive first
                    early.append((key, c))
                else:
                    batch.append(c)
                    threads.append((key, c))
            elif roll < 0.75:
                target = rng.choice(projects)
                labels = [f"lbl-{seed}-{n[0]}-{i}" for i in range(rng.randint(1, 3))]
                t = make(key, "tag", {"lab": target.body["lab"], "target": target.id,
                                      "labels": labels})  # fmt: skip
                batch.append(t)
                threads.append((key, t))
            elif roll < 0.85 and threads:
                author, target = threads[rng.randrange(len(threads))]
                if target in batch:
                    continue  # never in the batch of its target
                threads.remove((author, target))
                who = author if rng.random() < 0.8 else rng.choice(keys)  # maybe not theirs
                batch.append(
                    make(who, "retraction", {"lab": target.body["lab"], "target": target.id})
                )
            elif roll < 0.9 and early:
                author, target = early.pop()
                r = make(author, "retraction", {"lab": target.body["lab"], "target": target.id})
                batch.append(r)
                pending_first.append(target)
            elif sent:
                batch.append(rng.choice(sent))  # a re-delivery
        yield batch
        for o in batch:
            if o.kind == "project":
                projects.append(o)
        sent += batch


def main() -> None:
    from node.ingest.pipeline import Ingest
    from node.store import store as store_mod
    from node.store.store import Store

    # Merge the recent ids often and in small runs, so kills land inside merges too.
    store_mod.IDS_MERGE_AT, store_mod.IDS_MERGE_CHUNK = 300, 64
    store = Store(Path(sys.argv[1]), map_size=1 << 30)
    ingest = Ingest(store)
    committed = 0
    for batch in batches(int(sys.argv[2])):
        result = ingest.ingest([o.raw for o in batch], now=NOW)
        if result.rejected:
            raise SystemExit(f"rejected: {result.rejected[:3]}")
        committed += len(batch)
        print(committed, flush=True)


if __name__ == "__main__":
    main()

"""Build time of the node's identity directory (node/service/members.py): N members with 2
devices each (and a revocation each), stored, then `Members.load` timed, and the first query
(which settles every member's view) timed apart.

    python -m bench.members [N]      # default 10000
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from node.ingest.pipeline import Ingest, now_ms
from node.service.members import Members
from node.store.store import Store
from protocols import kinds
from protocols.identity import device_body, revoke_body
from protocols.objects import public_key_bytes


def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "store", map_size=1 << 32)
        ingest = Ingest(store)
        raws: list[bytes] = []
        ts = now_ms() - 10**8
        last = b""
        for i in range(n):
            root = Ed25519PrivateKey.generate()
            last = mid = public_key_bytes(root)
            dev = root
            for d in range(2):
                dev = Ed25519PrivateKey.generate()
                cert = kinds.create(root, "device", device_body(root, mid, dev, f"d{d}"), ts + i)
                raws.append(cert.raw)
            rv = revoke_body(mid, public_key_bytes(dev), ts + i + 1)
            raws.append(kinds.create(root, "revoke", rv, ts + i + 2).raw)
        ingest.ingest(raws)
        t0 = time.perf_counter()
        members = Members()
        members.load(store)
        t1 = time.perf_counter()
        members.status(last)
        t2 = time.perf_counter()
        print(f"{n} members x 2 devices ({len(raws)} identity objects): load {t1 - t0:.2f} s, "
              f"first query (settles every member) {t2 - t1:.2f} s")
        ingest.close()
        store.close()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)

"""Reading the object store (node/store/store.py has the layout and the writes).

`StoreReader` is what queries, services and sync read with: objects by id or sequence, the
two id tiers, counters and local state, in short read transactions. Key helpers shared by
every reader of the indexes live here too.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from node.store.errors import StoreReadOnly
from protocols.objects import SignedObject, decode

U64 = struct.Struct(">Q")


def u64(n: int) -> bytes:
    return U64.pack(n)


class StoreReader:
    """The read side of `node.store.Store` (which opens the environment and writes)."""

    def __init__(
        self, env: Any, db: dict[str, Any], path: Path, *, readonly: bool = False
    ) -> None:
        self.env = env
        self.db = db
        self.path = path  # the store's directory
        self.readonly = readonly  # opened for reading only: every write is refused
        self._ids, self._ids_new = db["ids"], db["ids_new"]

    def require_writable(self, why: str) -> None:
        """Refuse, with one clear error, a one-off upgrade at open on a read-only store."""
        if self.readonly:
            raise StoreReadOnly(
                f"the store at {self.path} needs a one-off upgrade {why}, which writes, but "
                "it is open read-only: open it once with write access (any percolab command "
                "run by its owner) and it can be read read-only again"
            )

    def read(self) -> Any:
        """A short read transaction (use as a context manager)."""
        return self.env.begin(buffers=False)

    def has(self, oid: bytes, txn: Any = None) -> bool:
        if txn is None:
            with self.read() as t:
                return self.seq_of(t, oid) is not None
        return self.seq_of(txn, oid) is not None

    def seq_of(self, txn: Any, oid: bytes) -> bytes | None:
        """The sequence key of a stored object (live or withdrawn), by id."""
        seq: bytes | None = txn.get(oid, db=self._ids_new)
        return seq if seq is not None else txn.get(oid, db=self._ids)

    def ids_with_prefix(self, txn: Any, prefix: bytes) -> Iterator[bytes]:
        """Stored ids starting with `prefix` (from both tiers; each id is in one)."""
        yield from prefix_keys(txn, self._ids_new, prefix)
        yield from prefix_keys(txn, self._ids, prefix)

    def get_raw(self, txn: Any, oid: bytes) -> bytes | None:
        """The bytes of a live object, shown or not (sync, fetch and export serve them all)."""
        seq = self.seq_of(txn, oid)
        if seq is None:
            return None
        raw: bytes | None = txn.get(seq, db=self.db["objects"])
        return raw or None

    def get(self, txn: Any, oid: bytes) -> SignedObject | None:
        """A live object that views may show (None if withdrawn, opaque or hidden)."""
        seq = self.seq_of(txn, oid)
        return self.get_seq(txn, seq, oid=oid) if seq is not None else None

    def get_seq(self, txn: Any, seq: bytes, *, oid: bytes | None = None) -> SignedObject | None:
        """Like `get`, by sequence key."""
        raw = txn.get(seq, db=self.db["objects"])
        if not raw or txn.get(seq, db=self.db["unindexed"]) is not None:
            return None
        return decode(raw, oid=oid)

    def unindexed_code(self, txn: Any, oid: bytes) -> str | None:
        """Why a stored object is not shown (an OPAQUE or HIDE code), None if it is."""
        seq = self.seq_of(txn, oid)
        code = txn.get(seq, db=self.db["unindexed"]) if seq is not None else None
        return bytes(code).decode() if code is not None else None

    def is_retracted(self, txn: Any, oid: bytes) -> bool:
        return txn.get(oid, db=self.db["tomb"]) is not None

    def count(self, txn: Any, kind: str | None = None, lab: bytes | None = None) -> int:
        """Live objects of a kind (all kinds when None); with `lab`, that lab's projects."""
        name = lab_counter(lab) if lab is not None else "count:" + (kind or "*")
        raw = txn.get(name.encode(), db=self.db["meta"])
        return U64.unpack(raw)[0] if raw else 0

    def iter_objects(self, txn: Any, *, after: int = 0) -> Iterator[tuple[int, bytes]]:
        """Every live object as (seq, raw), in append order, from seq `after` + 1 on."""
        cur = txn.cursor(db=self.db["objects"])
        if not cur.set_range(u64(after + 1)):
            return
        for key, raw in cur:
            if raw:
                yield U64.unpack(key)[0], raw

    def meta_prefix(self, prefix: str) -> list[tuple[str, bytes]]:
        p = prefix.encode()
        out = []
        with self.read() as txn:
            cur = txn.cursor(db=self.db["meta"])
            if cur.set_range(p):
                for key, value in cur:
                    if not key.startswith(p):
                        break
                    out.append((key.decode(), value))
        return out


def prefix_keys(
    txn: Any, db: Any, prefix: bytes, *, reverse: bool = False, after: bytes | None = None
) -> Iterator[bytes]:
    """Keys starting with `prefix`, ascending (or descending), strictly past `after`."""
    cur = txn.cursor(db=db)
    if not reverse:
        if not cur.set_range(after + b"\0" if after else prefix):
            return
        for key in cur.iternext(values=False):
            if not key.startswith(prefix):
                return
            yield key
        return
    if after is not None:
        found = cur.set_range(after)
        ok = cur.prev() if found else cur.last()
    else:
        upper = _next_prefix(prefix)
        found = cur.set_range(upper) if upper else False
        ok = cur.prev() if found else cur.last()
    if not ok:
        return
    for key in cur.iterprev(values=False):
        if not key.startswith(prefix):
            if key < prefix:
                return
            continue
        yield key


def prefix_items(txn: Any, db: Any, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
    """(key, value) pairs whose key starts with `prefix`, ascending."""
    cur = txn.cursor(db=db)
    if not cur.set_range(prefix):
        return
    for key, value in cur:
        if not key.startswith(prefix):
            return
        yield key, value


def _next_prefix(prefix: bytes) -> bytes | None:
    """The smallest byte string greater than every string starting with `prefix`."""
    p = bytearray(prefix)
    while p and p[-1] == 0xFF:
        p.pop()
    if not p:
        return None
    p[-1] += 1
    return bytes(p)


_LAB_COUNTERS: dict[bytes, str] = {}


def lab_counter(lab: bytes) -> str:
    """The meta counter of a lab's projects (cached: labs are few, this is per project)."""
    name = _LAB_COUNTERS.get(lab)
    if name is None:
        if len(_LAB_COUNTERS) > 4096:
            _LAB_COUNTERS.clear()
        name = _LAB_COUNTERS[lab] = f"lab:{lab.hex()}"
    return name

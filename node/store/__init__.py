"""The object store on LMDB, one room: the layout and the writes (`store.py`), the data file's
checks before it is mapped (`datafile.py`), its errors (`errors.py`), the reads (`read.py`),
the reconciliation and search indexes (`sync_index.py`, `word_index.py`) and the review of
what a release understands (`unindexed.py`). Everything above it (ingest, service, sync,
HTTP) reads and writes objects through `Store`.
"""

from node.store.errors import StoreDamaged, StoreError, StoreFull, StoreReadOnly
from node.store.store import UNINDEXED_COUNTERS, Store, Stored

__all__ = [
    "UNINDEXED_COUNTERS", "Store", "StoreDamaged", "StoreError", "StoreFull", "StoreReadOnly",
    "Stored",
]  # fmt: skip

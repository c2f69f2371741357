"""The one ingest pipeline, one room: `pipeline.py` (size, id, known ids, the checks, the
store), `writer.py` (the thread that stores, group commit), `check_pool.py` and
`check_worker.py` (the worker processes that decode, verify and validate large batches).
"""

from node.ingest.pipeline import Ingest, IngestResult, Rejection, now_ms

__all__ = ["Ingest", "IngestResult", "Rejection", "now_ms"]

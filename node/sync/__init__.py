"""Catch-up with peers, one room: `service.py` (sessions as initiator and responder) over
`fetching.py` (the fetch server within each peer's budget, fetching and ingesting batches),
`fetch.py` (a session's bounded fetch queue), `refs.py` (missing references fetched by id),
`serve.py` (what serving fetches may cost a peer), `host.py` (what it needs of the node).
docs/sync.md.
"""

from node.sync.host import SyncHost
from node.sync.service import SYNC_INTERVAL_S, SyncService

__all__ = ["SYNC_INTERVAL_S", "SyncHost", "SyncService"]

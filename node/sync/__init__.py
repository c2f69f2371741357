"""Catch-up with peers, one room: `service.py` (sessions as initiator and responder, the
fetch server), `fetch.py` (a session's bounded fetch queue), `refs.py` (missing references
fetched by id), `serve.py` (what serving fetches may cost a peer). docs/sync.md.
"""

from node.sync.service import SYNC_INTERVAL_S, SyncHost, SyncService

__all__ = ["SYNC_INTERVAL_S", "SyncHost", "SyncService"]

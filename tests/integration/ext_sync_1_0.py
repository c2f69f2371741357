"""A test extension: this node speaks only `/percolab/sync/1.0.0`, as the first release did.

Loaded through a data directory's config.toml (`[node] extensions = [...]`) by
tests/integration/test_sync_versions.py: the node then neither offers nor serves 1.1.0, so a
current node talking to it must fall back to 1.0.0 and its caps.
"""

from __future__ import annotations

import node.sync.service
from protocols.reconcile_limits import SYNC_PROTOCOL_ID_1_0

node.sync.service.SYNC_PROTOCOL_IDS = (SYNC_PROTOCOL_ID_1_0,)

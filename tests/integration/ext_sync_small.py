"""A test extension: `/percolab/sync/1.1.0` with tiny limits (2 round trips, 4 KiB messages),
so that a session runs out of rounds long before it is done and the node must resume it where
it stopped (tests/integration/test_sync_versions.py). Both peers load it: the limits of a
protocol version are part of the protocol.
"""

from __future__ import annotations

import dataclasses

from protocols import reconcile_limits
from protocols.reconcile_limits import MIN_MESSAGE_BYTES, SYNC_PROTOCOL_ID_1_1, V1_1

SMALL = dataclasses.replace(V1_1, max_rounds=2, max_message_bytes=MIN_MESSAGE_BYTES)
reconcile_limits.LIMITS_BY_PROTOCOL[SYNC_PROTOCOL_ID_1_1] = SMALL

"""A test extension: a reconciliation CPU budget small enough to spend in a test (10 ms of
burst, refilled at 1 ms per second), for tests/integration/test_sync_cpu_budget.py."""

from __future__ import annotations

import node.sync.serve

node.sync.serve.RESPOND_CPU_BURST_S = 0.01
node.sync.serve.RESPOND_CPU_PER_S = 0.001

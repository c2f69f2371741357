"""Helpers for Pilot tests: bounded waits on conditions (never sleep-and-hope)."""

from __future__ import annotations

import time
from collections.abc import Callable

from textual.pilot import Pilot

DEFAULT_TIMEOUT = 10.0


async def wait_for(
    pilot: Pilot[object], predicate: Callable[[], object], what: str,
    timeout: float = DEFAULT_TIMEOUT,
) -> None:
    """Let the app run until ``predicate()`` is truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if predicate():
                return
        except Exception:  # widgets may not be mounted yet
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for: {what}")
        await pilot.pause(0.05)

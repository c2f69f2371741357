"""Slow clients cannot keep an honest one waiting (issue 21: 130 slow HTTP clients made an
honest GET wait 30 s). Every connection slot is taken by clients that trickle a request head
or say nothing; an honest GET is still answered at once, and the node keeps running."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from node.http.server import EVICT_AFTER_S, MAX_CONNECTIONS
from tests.http.helpers import percolab, start_node

pytestmark = pytest.mark.timeout(120)
SLOW_CLIENTS = MAX_CONNECTIONS + 8
# What an honest GET may wait with every slot held by a slow client: a few eviction rounds,
# far below the idle timeout (30 s) it waited before.
HONEST_WAIT_S = 5 * EVICT_AFTER_S + 2.0


def _slow_clients(host: str, port: int) -> Iterator[socket.socket]:
    for i in range(SLOW_CLIENTS):
        s = socket.create_connection((host, port), timeout=5)
        if i % 2:
            s.sendall(b"GET /api/v1/status HT")  # a request head that never ends
        yield s


def test_slow_clients_cannot_starve_an_honest_one(tmp_path: Path) -> None:
    data_dir = tmp_path / "n"
    percolab(data_dir, "init", "--unencrypted-key", "--name", "Ada")
    node = start_node(data_dir)
    held: list[socket.socket] = []
    try:
        host, port = node.base.removeprefix("http://").split(":")
        held = list(_slow_clients(host, int(port)))
        time.sleep(EVICT_AFTER_S)  # every slot now belongs to a client that waited that long
        for _ in range(3):  # and again, while the slow ones keep their connections
            started = time.monotonic()
            r = httpx.get(f"{node.base}/api/v1/status", timeout=HONEST_WAIT_S)
            assert r.status_code == 200 and r.json()["running"]
            assert time.monotonic() - started < HONEST_WAIT_S
    finally:
        for s in held:
            s.close()
        node.stop()
    assert node.proc.returncode == 0

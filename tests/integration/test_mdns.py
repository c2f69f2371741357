"""mDNS discovery between two nodes in two network namespaces this test creates.

mDNS multicasts on every interface it can see, so it runs only inside namespaces of our own
(connected by a veth pair), never on the machine's real interfaces.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.nodes import NodeProc, wait_until

pytestmark = pytest.mark.slow
DISCOVERY_TIMEOUT_S = 60.0


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10)


@pytest.fixture
def two_namespaces() -> Iterator[tuple[str, str]]:
    tag = f"pl{os.getpid() % 100000}"
    ns = (f"{tag}a", f"{tag}b")
    veth = (f"{tag}va", f"{tag}vb")
    probe = _ip("netns", "add", ns[0])
    if probe.returncode != 0:
        pytest.skip(f"cannot create network namespaces here: {probe.stderr.strip()}")
    try:
        steps = [
            ("netns", "add", ns[1]),
            ("link", "add", veth[0], "type", "veth", "peer", "name", veth[1]),
            ("link", "set", veth[0], "netns", ns[0]),
            ("link", "set", veth[1], "netns", ns[1]),
        ]
        for i in (0, 1):
            steps += [
                ("-n", ns[i], "addr", "add", f"10.231.{os.getpid() % 250}.{i + 1}/24",
                 "dev", veth[i]),
                ("-n", ns[i], "link", "set", veth[i], "up"),
                ("-n", ns[i], "link", "set", "lo", "up"),
                ("-n", ns[i], "route", "add", "224.0.0.0/4", "dev", veth[i]),
            ]  # fmt: skip
        for step in steps:
            r = _ip(*step)
            assert r.returncode == 0, f"ip {' '.join(step)}: {r.stderr}"
        yield ns
    finally:
        for n in ns:
            _ip("netns", "del", n)


def test_two_nodes_in_namespaces_find_each_other_by_mdns(
    tmp_path: Path, two_namespaces: tuple[str, str]
) -> None:
    net = f"10.231.{os.getpid() % 250}"
    nodes = [
        NodeProc(tmp_path / f"m{i}", f"m{i}", ["--mdns"],
                 prefix=["ip", "netns", "exec", two_namespaces[i]],
                 listen=f"/ip4/{net}.{i + 1}/tcp/4001")
        for i in (0, 1)
    ]  # fmt: skip
    try:
        for n in nodes:
            n.init()
            n.start()  # no bootstrap, no connect: only mDNS can introduce them
        ids = [n.peer_id() for n in nodes]
        for me, other in ((0, 1), (1, 0)):
            wait_until(
                lambda me=me, other=other: ids[other]
                in [p["peer_id"] for p in nodes[me].call("peers")],
                DISCOVERY_TIMEOUT_S, f"m{me} to discover m{other} by mDNS",
            )  # fmt: skip
    finally:
        for n in nodes:
            n.stop()

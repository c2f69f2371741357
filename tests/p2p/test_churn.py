"""Inbound connection churn (issue 21): py-libp2p 0.8.1 kept each inbound connection's
``Swarm._inbound_limiter`` token (and its handler task) until the swarm stopped, so a node
accepted no connection after its 64th inbound one (contained in p2p/hardening.py,
behaviour 15).

1,000 connect/disconnect cycles from 32 dialers against one node, then an honest peer must
connect at once, and the node's task count and RSS must be where they were after warm-up.
(Measured here: ~16 s for the 1,000 cycles on 2 cores; one dialer alone needs ~0.45 s a cycle,
most of it py-libp2p's fixed waits, hence the concurrent dialers.)
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import multiaddr
import trio
from libp2p import new_host
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.peer.peerinfo import info_from_p2p_addr

from p2p.host import P2PNode, noise_only_security, open_p2p_node, yamux_only_muxer
from tests.p2p.helpers import LOOPBACK, Recorder, link, run, wait_until

CYCLES = 1000  # well past the 64 inbound connections upstream allowed in a node's lifetime
WARMUP_CYCLES = 100  # caches and pools fill up first; flatness is measured from here
DIALERS = 32  # concurrent dialers (below MAX_CONNECTIONS = 64 at any moment)
CYCLE_TIMEOUT_S = 15.0  # one connect + disconnect (normally ~0.5 s)
# After the churn: tasks and RSS back to their post-warm-up level, within this slack.
# A leak of one task per connection would be 900 tasks; a leaked connection costs ~50 KB.
TASK_SLACK = 32
RSS_SLACK_MB = 25
TEST_TIMEOUT_S = 240.0  # a hang guard only


def task_count() -> int:
    """Every live trio task of this run (the node's, the dialers', the test's)."""
    count, stack = 0, [trio.lowlevel.current_root_task()]
    while stack:
        task = stack.pop()
        count += 1
        for nursery in task.child_nurseries:
            stack.extend(nursery.child_tasks)
    return count


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS in /proc/self/status")


def test_node_accepts_connections_after_1000_inbound_cycles() -> None:
    async def main() -> None:
        async with (
            open_p2p_node(create_new_key_pair(), LOOPBACK, validator=Recorder()) as node,
            contextlib.AsyncExitStack() as stack,
        ):
            info = info_from_p2p_addr(multiaddr.Multiaddr(node.listen_addrs()[0]))
            dialers = []
            for _ in range(DIALERS):  # bare hosts: Noise + Yamux, no gossip, no listener
                key = create_new_key_pair()
                host = new_host(
                    key_pair=key, sec_opt=noise_only_security(key), muxer_opt=yamux_only_muxer()
                )
                await stack.enter_async_context(host.run(listen_addrs=[]))
                dialers.append(host)
            done = 0

            async def churn(host: object, until: int) -> None:
                nonlocal done
                while done < until:
                    done += 1
                    with trio.fail_after(CYCLE_TIMEOUT_S):
                        await host.connect(info)  # type: ignore[attr-defined]
                        await host.disconnect(info.peer_id)  # type: ignore[attr-defined]

            async def phase(until: int) -> None:
                async with trio.open_nursery() as nursery:
                    for host in dialers:
                        nursery.start_soon(churn, host, until)
                await wait_until(lambda: not node.connected_peers(), 15, "connections closed")

            await phase(WARMUP_CYCLES)
            tasks_before, rss_before = task_count(), rss_mb()
            await phase(CYCLES)
            tasks_after, rss_after = task_count(), rss_mb()

            # An honest peer connects at once.
            async with open_p2p_node(create_new_key_pair(), LOOPBACK, validator=Recorder()) as p:
                with trio.fail_after(CYCLE_TIMEOUT_S):
                    await link(p, node)
                assert_connected(node, p)

            assert tasks_after <= tasks_before + TASK_SLACK, (tasks_before, tasks_after)
            assert rss_after <= rss_before + RSS_SLACK_MB, (rss_before, rss_after)

    run(main, timeout=TEST_TIMEOUT_S)


def assert_connected(node: P2PNode, peer: P2PNode) -> None:
    assert any(p["peer_id"] == peer.peer_id for p in node.connected_peers())

"""Shared helpers: running trio tests, nodes on loopback, conditions with deadlines."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

import trio
from libp2p.crypto.ed25519 import create_new_key_pair

from p2p.gossip import Validator
from p2p.hardening import PeerGuard
from p2p.host import P2PNode, open_p2p_node

LOOPBACK = ["/ip4/127.0.0.1/tcp/0"]
POLL_S = 0.01


def run(fn: Callable[[], Awaitable[None]], timeout: float = 30.0) -> None:
    """Run an async test body under trio with a hard deadline."""

    async def main() -> None:
        with trio.fail_after(timeout):
            await fn()

    trio.run(main)


async def wait_until(cond: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
    """Wait for ``cond()`` to hold, failing after ``timeout`` seconds."""
    try:
        with trio.fail_after(timeout):
            while not cond():
                await trio.sleep(POLL_S)
    except trio.TooSlowError as exc:
        raise AssertionError(f"timed out waiting for {what or cond}") from exc


class Recorder:
    """A validator that records what it saw and accepts unless ``reject(data)``."""

    def __init__(self, reject: Callable[[bytes], bool] = lambda _: False) -> None:
        self.reject = reject
        self.seen: list[tuple[str, bytes, str]] = []
        self.accepted: list[bytes] = []

    async def __call__(self, topic: str, data: bytes, from_peer: str) -> bool:
        self.seen.append((topic, data, from_peer))
        if self.reject(data):
            return False
        self.accepted.append(data)
        return True

    def saw(self, data: bytes) -> bool:
        return any(d == data for _, d, _ in self.seen)


@contextlib.asynccontextmanager
async def nodes(
    validators: Sequence[Validator], guards: Sequence[PeerGuard | None] | None = None
) -> AsyncIterator[list[P2PNode]]:
    guards = guards or [None] * len(validators)
    async with contextlib.AsyncExitStack() as stack:
        out = []
        for validator, guard in zip(validators, guards, strict=True):
            node = await stack.enter_async_context(
                open_p2p_node(create_new_key_pair(), LOOPBACK, validator=validator, guard=guard)
            )
            out.append(node)
        yield out


async def link(a: P2PNode, b: P2PNode) -> None:
    """Connect a -> b and wait until both see each other."""
    await a.connect(b.listen_addrs()[0])
    await wait_until(
        lambda: any(p["peer_id"] == a.peer_id for p in b.connected_peers()), what="link"
    )


async def wait_mesh(node: P2PNode, topic: str, peers: Sequence[P2PNode]) -> None:
    want = {p.peer_id for p in peers}
    await wait_until(
        lambda: want <= set(node.mesh_peers(topic)), timeout=10, what=f"mesh of {topic}"
    )


def payload(i: int, size: int = 256) -> bytes:
    head = b"msg-%06d-" % i
    return head + b"x" * (size - len(head))

"""In-memory stand-ins for a libp2p host and its streams, with just what node/sync reads of
them: two sync services in one interpreter talk over trio memory streams. Used by
bench/sync.py (`--in-process`) and by tests that run a catch-up without sockets."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import trio
import trio.testing


class MemStream:
    """An in-memory byte stream with the bits of a libp2p stream the sync code uses."""

    def __init__(self, inner: Any, peer_id: str, counter: list[int], protocol: str) -> None:
        self._s = inner
        self._counter = counter
        self.muxed_conn = SimpleNamespace(peer_id=peer_id)
        self._protocol = protocol

    def get_protocol(self) -> str:
        return self._protocol

    async def read(self, n: int | None = None) -> bytes:
        data: bytes = await self._s.receive_some(n)
        return data

    async def write(self, data: bytes) -> None:
        self._counter[0] += len(data)
        await self._s.send_all(data)

    async def close(self) -> None:
        await self._s.send_stream.aclose()

    async def reset(self) -> None:
        await self._s.aclose()


class FakeP2P:
    """Just enough of P2PNode: stream handlers, new_stream to the other fake, counters."""

    def __init__(self, peer_id: str, net: dict[str, FakeP2P], nursery: trio.Nursery) -> None:
        self.peer_id = peer_id
        self.net = net
        self.nursery = nursery
        self.handlers: dict[str, Any] = {}
        self.sent = [0]  # bytes written by this side, all streams
        self.received = [0]  # bytes the other side wrote to this one
        self.streams = 0
        self.violations: list[str] = []
        net[peer_id] = self

    def set_stream_handler(self, proto: str, handler: Any) -> None:
        self.handlers[proto] = handler

    async def new_stream(self, peer: str, protos: list[str]) -> MemStream:
        other = self.net[peer]
        proto = next(p for p in protos if p in other.handlers)  # multistream-select's choice
        a, b = trio.testing.memory_stream_pair()
        self.streams += 1
        self.nursery.start_soon(
            other.handlers[proto], MemStream(b, self.peer_id, other.sent, proto)
        )
        return MemStream(a, peer, self.sent, proto)

    def connected_peers(self) -> list[dict[str, Any]]:
        return [{"peer_id": p, "addrs": []} for p in self.net if p != self.peer_id]

    def report_invalid(self, peer: str, reason: str) -> None:
        self.violations.append(reason)

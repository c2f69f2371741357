"""The node process: store, ingest, libp2p, gossip, control socket, under one nursery.

Start-up order (each step `nursery.start()`ed, so the next sees it ready): store and
identity -> libp2p host and gossip -> topic subscriptions -> publisher -> control socket.
Blocking work (LMDB, signature checks) runs in worker threads, never on the trio loop.
"""

from __future__ import annotations

import contextlib
import logging
import math
import signal
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgpack
import trio

from node.config import ConfigError
from node.http import serve_http
from node.ingest.pipeline import Ingest
from node.pairing import METHODS as PAIRING_METHODS
from node.pairing import PairingManager
from node.rpc_server import HandlerError, RpcServer
from node.service.api import Service, ServiceError
from node.service.queries import Views
from node.store.store import Store, Stored
from node.sync.service import SyncService
from p2p.host import ListenError, P2PNode, check_listen_addr, open_p2p_node, tcp_listen_target
from p2p.identity import load_or_create_node_key
from protocols import kinds, topics
from protocols.objects import SignedObject

log = logging.getLogger(__name__)

NODE_KEY_FILE = "node.key"
# Remembered peers redialed at start (most recently seen first).
MAX_REMEMBERED_PEERS = 256
# Pushes of new objects are built in batches of at most this many views.
MAX_PUSH_BATCH = 500
# A default listen address (not given by the user) whose port is taken: the node tries the
# next ports up to this many, then any free port (tcp/0), and says where it went.
LISTEN_FALLBACK_PORTS = 16
MAX_PORT = 65535


@dataclass
class NodeOptions:
    data_dir: Path
    listen: list[str]
    bootstrap: list[str] = field(default_factory=list)
    # False: `listen` is the configured default, so a taken port moves to another one
    # instead of being an error (an address the user gave is refused when taken).
    listen_explicit: bool = True
    mdns: bool = False
    http: str | None = None


class NodeStartError(ConfigError):
    """The node cannot start as configured (a one-line error for the CLI, no traceback)."""


def choose_listen_addrs(listen: list[str], explicit: bool) -> list[str]:
    """The addresses to listen on: ``listen`` itself when every one is free. A taken one is
    a NodeStartError, unless it is the default (``explicit`` False): then the next free port
    stands in, and the node says so (log and stderr)."""
    chosen = []
    for addr in listen:
        try:
            check_listen_addr(addr)
        except ListenError as exc:
            if explicit or not exc.in_use:
                raise NodeStartError(str(exc)) from None
            moved = _free_alternative(addr)
            note = f"the default listen address {addr} is taken; listening on {moved} instead"
            log.warning("%s", note)
            print(f"percolab: {note}", file=sys.stderr, flush=True)
            addr = moved
        chosen.append(addr)
    return chosen


def _free_alternative(addr: str) -> str:
    """The same address on the next free port (or on any free port)."""
    target = tcp_listen_target(addr)
    assert target is not None  # only /ip4|ip6/IP/tcp/PORT addresses are ever "in use"
    _, ip, port = target
    proto = "ip6" if ":" in ip else "ip4"
    nearby = [p for p in range(port + 1, port + 1 + LISTEN_FALLBACK_PORTS) if p <= MAX_PORT]
    for candidate in [*nearby, 0]:  # 0: a free port the kernel picks
        alt = f"/{proto}/{ip}/tcp/{candidate}"
        try:
            check_listen_addr(alt)
        except ListenError:
            continue
        return alt
    raise NodeStartError(f"cannot listen on {addr}, nor on any other port of {ip}")


def _listen_error(group: BaseExceptionGroup[BaseException]) -> ListenError | None:
    """The ListenError in a nursery's exception group (the listen check after listening)."""
    for exc in group.exceptions:
        if isinstance(exc, ListenError):
            return exc
        if isinstance(exc, BaseExceptionGroup):
            found = _listen_error(exc)
            if found is not None:
                return found
    return None


class Node:
    def __init__(self, opts: NodeOptions, store: Store) -> None:
        self.opts = opts
        self.store = store
        self.ingest = Ingest(store)
        self.service = Service(opts.data_dir, store, self.ingest)
        self.p2p: P2PNode | None = None
        self.rpc = RpcServer(opts.data_dir / "node.sock", self.handle_rpc)
        self.pairing = PairingManager(self.service, self.rpc.push)  # node/pairing.py
        self._token: trio.lowlevel.TrioToken | None = None
        self._publish_send, self._publish_recv = trio.open_memory_channel[SignedObject](math.inf)
        self._topic_send, self._topic_recv = trio.open_memory_channel[tuple[str, bool]](math.inf)
        self.service.on_created.append(self._created)
        self.service.on_follow.append(self._followed)
        self.service.local_moderation.on_blocked.append(self._blocked)  # `block`, `unblock`
        self.service.ensure_read_base()  # the main member's unread counts start now
        self.ingest.listeners.append(self._stored)
        self.extra_status: list[Any] = []  # callables adding fields to `status` (sync, http)
        self.sync = SyncService(self)  # catch-up: reconciliation + fetch (node/sync/service.py)

    # ---- hooks called from worker threads ----------------------------------------------

    def _call_soon(self, fn: Any, *args: Any) -> None:
        if self._token is not None:
            self._token.run_sync_soon(fn, *args)

    def _created(self, obj: SignedObject) -> None:
        self._call_soon(self._publish_send.send_nowait, obj)

    def publish_object(self, obj: SignedObject) -> None:
        """Gossip an object that arrived by another path (HTTP); call on the trio thread."""
        self._publish_send.send_nowait(obj)

    def _followed(self, lab: bytes, on: bool) -> None:
        self._call_soon(self._topic_send.send_nowait, (topics.lab_topic(lab), on))
        if on:
            self._call_soon(self.sync.trigger)  # catch up on the newly followed lab

    def _blocked(self, peers: frozenset[str]) -> None:
        """The owner blocked or unblocked a peer: p2p closes and refuses what it lists."""
        with contextlib.suppress(trio.RunFinishedError):  # a node stopped in this process
            self._call_soon(lambda: self.p2p.set_blocked(peers) if self.p2p else None)

    def _stored(self, stored: list[Stored]) -> None:
        """New objects (from any path): push their views to TUI subscribers."""
        if not self.rpc.subscribers:
            return
        shown = [s for s in stored if s.visible]  # opaque and hidden objects have no view
        for start in range(0, len(shown), MAX_PUSH_BATCH):
            with self.store.read() as txn:
                views = Views(self.store, txn)
                batch = [views.view(s.obj) for s in shown[start : start + MAX_PUSH_BATCH]]
            for view in batch:
                self._call_soon(self.rpc.push, "object", view)

    # ---- gossip ------------------------------------------------------------------------

    async def validate_gossip(self, topic: str, data: bytes, from_peer: str) -> bool | None:
        """True: stored (or known) and forwarded. False: the forwarder broke the protocol
        (a strike). None: dropped, nobody's fault (a timestamp too far ahead: deferred).
        Opaque and hidden objects are stored and forwarded like any (docs/protocol.md §4)."""
        wrong = topics.wrong_topic(topic, data)
        if wrong:
            log.info("gossip from %s on %s dropped: %s", from_peer, topic, wrong)
            return False
        result = await trio.to_thread.run_sync(self.ingest.ingest, [data])
        if result.rejected:
            rej = result.rejected[0]
            log.info("gossip from %s on %s not stored: %s (%s)", from_peer, topic,
                     rej.reason, rej.code)  # fmt: skip
            return False if rej.blames_peer else None
        return True

    async def _publisher(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        async for obj in self._publish_recv:
            assert self.p2p is not None
            topic = topics.topic_for_scope(kinds.scope_of(obj.body))
            try:
                await self.p2p.publish(topic, obj.raw)
            except Exception:
                log.exception("publishing %s failed", obj.id_hex[:12])

    async def _topic_manager(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        assert self.p2p is not None
        await self.p2p.subscribe(topics.PUBLIC_TOPIC)
        for lab in self.service.all_follows():  # what any member of this machine follows
            await self.p2p.subscribe(topics.lab_topic(lab))
        task_status.started()
        async for topic, on in self._topic_recv:
            if on:
                await self.p2p.subscribe(topic)
            else:
                await self.p2p.unsubscribe(topic)

    # ---- peers -------------------------------------------------------------------------

    def remembered_peers(self) -> Iterable[str]:
        entries = self.store.meta_prefix("peer:")
        addrs: list[str] = []
        for _, value in entries[:MAX_REMEMBERED_PEERS]:
            addrs += msgpack.unpackb(value)
        return addrs

    async def _peer_connected(self, peer_id: str, addrs: list[str]) -> None:
        """Remember a peer's addresses, whichever side dialed (for a peer that dialed us,
        p2p gives its listen addresses from identify), so a restart redials it."""
        full = [a if "/p2p/" in a else f"{a}/p2p/{peer_id}" for a in addrs if "/tcp/" in a]
        if full:
            await trio.to_thread.run_sync(
                self.store.meta_put, "peer:" + peer_id, msgpack.packb(full)
            )
            log.info("remembered peer %s at %s", peer_id, ", ".join(full))

    # ---- control RPC -------------------------------------------------------------------

    async def handle_rpc(self, method: str, params: dict[str, Any]) -> Any:
        try:
            # `seat`: the request of another member of this machine (node/service/seats.py);
            # `seat_close` names the seat to forget in it.
            token = params.pop("seat", None) if method != "seat_close" else None
            service = self.service.for_seat(token)
            if method == "status":
                return await self.status(service)
            if method == "peers":
                return self.p2p.connected_peers() if self.p2p else []
            if method == "connect":
                addr = params.get("addr")
                if not isinstance(addr, str) or self.p2p is None:
                    raise HandlerError("bad_request", "connect needs addr (a /p2p/ multiaddr)")
                try:
                    await self.p2p.connect(addr)
                except Exception as exc:
                    raise HandlerError("connect_failed", f"cannot connect to {addr}: {exc}") from exc  # noqa: E501
                return True
            if method in PAIRING_METHODS:  # the caller's member pairs (node/pairing.py)
                return await self.pairing.call(method, params, service)
            result = await trio.to_thread.run_sync(service.call, method, params)
            if method == "import_objects" and result.get("accepted"):
                self.sync.news()  # imports are not gossiped: reconciliation carries them
            return result
        except ServiceError as exc:
            raise HandlerError(exc.code, exc.message) from exc

    async def status(self, service: Service | None = None) -> dict[str, Any]:
        st: dict[str, Any] = await trio.to_thread.run_sync(
            (service or self.service).call, "status", {})
        st["running"] = True
        if self.p2p is not None:
            st["peer_id"] = self.p2p.peer_id
            st["addrs"] = self.p2p.listen_addrs()
            st["peers"] = len(self.p2p.connected_peers())
            st["topics"] = self.p2p.topics()
            st["mesh"] = {t: len(self.p2p.mesh_peers(t)) for t in st["topics"]}
        for extra in self.extra_status:
            st |= extra()
        return st

    # ---- lifetime ----------------------------------------------------------------------

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        self._token = trio.lowlevel.current_trio_token()
        key = load_or_create_node_key(self.opts.data_dir / NODE_KEY_FILE)
        async with open_p2p_node(
            key, self.opts.listen, validator=self.validate_gossip, mdns=self.opts.mdns,
            bootstrap=self.opts.bootstrap, redial_addrs=self.remembered_peers,
            on_peer_connected=self._peer_connected,
            blocked=self.service.local_moderation.blocked(),
        ) as p2p, trio.open_nursery() as nursery:  # fmt: skip
            self.p2p = p2p
            await nursery.start(self.pairing.run, p2p)  # the pair handler, always registered
            await nursery.start(self._topic_manager)
            await nursery.start(self._publisher)
            await nursery.start(self.sync.run)
            await nursery.start(self.rpc.serve)
            if self.opts.http:
                try:
                    http_addr = await nursery.start(serve_http, self, self.opts.http)
                except OSError as exc:  # e.g. the port is taken: run on, without HTTP
                    log.error("HTTP API not started on %s: %s", self.opts.http, exc)
                    http_addr = None
                self.extra_status.append(lambda: {"http": http_addr})
            log.info("node %s ready; listening on %s", p2p.peer_id, p2p.listen_addrs())
            task_status.started(self)
            await trio.sleep_forever()

    def close(self) -> None:
        with contextlib.suppress(ValueError):
            self.service.local_moderation.on_blocked.remove(self._blocked)
        self.ingest.close()


async def serve_until_signal(opts: NodeOptions, store: Store) -> None:
    """Run a node until SIGINT/SIGTERM, then shut down cleanly."""
    opts.listen = choose_listen_addrs(opts.listen, opts.listen_explicit)  # before anything runs
    node = Node(opts, store)
    try:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with trio.open_nursery() as nursery:
                await nursery.start(node.run)
                async for signum in signals:
                    log.info("signal %s: shutting down", signal.Signals(signum).name)
                    nursery.cancel_scope.cancel()
                    break
    except BaseExceptionGroup as group:
        # An address taken between the check above and libp2p's listen (p2p/host.py checks
        # again after listening): one line, like the check's own error.
        listen_error = _listen_error(group)
        if listen_error is None:
            raise
        raise NodeStartError(str(listen_error)) from None
    finally:
        node.close()

"""Catch-up: set reconciliation with peers, then fetch of the missing objects (docs/sync.md).

`SyncService` runs inside the node's nursery (``nursery.start(sync.run)``):

* **Initiator.** When a peer connects, every ``SYNC_INTERVAL_S`` after, and when the member
  follows a new lab, it reconciles each scope (public + every followed lab; one session per
  scope, one peer at a time per peer) over ``/percolab/sync/1.1.0`` (or 1.0.0 with a peer
  of the first release; a session out of rounds is resumed where it stopped). The ids it lacks
  (``need``) are fetched while the reconciliation goes on, in batches over
  ``/percolab/fetch/1.0.0``, and ingested through the one pipeline.
* **Responder.** Answers incoming sync streams (bounded per peer and in total); at the end
  it knows its own ``need`` too and fetches it from the initiator, so one session repairs
  both sides.
* **Fetch server.** Serves objects by id.
* **References.** Every stored object (whatever path it came by) whose referenced objects
  (``kind_spec(kind).refs``: a comment's project, a project's lab...) are unknown gets them
  fetched by id: from the peer it came from when known, else from connected peers
  (node/sync/refs.py).

Safety: every session has a deadline (``SESSION_DEADLINE_S``), every frame a timeout, the
state machine bounds rounds, ids and message sizes; fetched objects must have been
requested and go through full validation. Protocol violations are reported with
``report_invalid`` (enough strikes disconnect and block the peer); the store only ever
sees objects that passed the ingest pipeline.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import trio

from node.store.store import Stored
from node.store.sync_index import LmdbItems
from node.sync.fetch import FETCH_PARALLEL_FIRST_RELEASE, FetchQueue, reset_stream, unwrap
from node.sync.fetching import Fetching
from node.sync.host import SyncHost
from node.sync.refs import RefResolver
from p2p.framing import FrameError
from p2p.sync_transport import (
    PeerViolation,
    SessionIO,
    initiate_sync,
    peer_of,
    respond_sync,
)
from protocols import kinds
from protocols.reconcile import Initiator, Responder
from protocols.reconcile_limits import (
    SYNC_PROTOCOL_ID_1_0,
    SYNC_PROTOCOL_IDS,
    V1_0,
    Limits,
    limits_for,
)
from protocols.reconcile_store import Bound
from protocols.sync_messages import (
    FETCH_PROTOCOL_ID,
    Accept,
    SyncOpen,
)

log = logging.getLogger(__name__)


SYNC_INTERVAL_S = 30.0  # periodic re-reconciliation with one random connected peer
# One scope with one peer: reconciliation + fetch of the result. For the initiator, counted
# from its last progress once its fetches store objects: an empty node catching up 1M
# objects from one peer takes minutes (~1.5 at 11k objects/s), and cutting it made the next
# session reconcile everything again. Rounds (MAX_ROUNDS) and ids learnt are bounded, so a
# session still ends.
SESSION_DEADLINE_S = 120.0
CONNECT_SETTLE_S = 0.5  # wait after a connection before the first session (identify, muxer)
MAX_SESSIONS_PER_PEER = 2  # incoming sync sessions served at once, per peer ...
MAX_SESSIONS_TOTAL = 16  # ... and in total
MAX_PARALLEL_PEERS = 4  # peers we initiate sessions with at once
# Ids a served session keeps of what it learnt we lack (fetched from the initiator at its
# end). A peer could name made-up ids up to MAX_ROUNDS x MAX_IDS_PER_MESSAGE (~524k) per
# session; beyond this, the rest is left to our own sessions with that peer, whose fetch
# queue is bounded (node/sync/fetch.py, MAX_FETCH_BACKLOG).
MAX_RESPONDER_NEED = 16_384
# A session that ran out of rounds (sync 1.1.0 ends it cleanly) is resumed by a new session
# from the lowest bound left open, at most this many times in a row per scope and peer; the
# periodic sync picks up whatever is still left after that.
MAX_RESUMES = 4

# After a session stored new objects (or objects were imported, which are not gossiped),
# reconcile with every peer again, at most once per this many seconds: news travels on.
NEWS_DEBOUNCE_S = 1.0


class SyncService(Fetching):
    def __init__(self, node: SyncHost) -> None:
        super().__init__(node)
        self._nursery: trio.Nursery | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._active_out: dict[str, int] = {}  # peer -> initiated sessions running
        self._active_in: dict[str, int] = {}  # peer -> served sessions running
        self._syncing: set[str] = set()  # peers with an initiator run in progress
        self._again: set[str] = set()  # peers to run again when the current run ends
        self._peer_limit = trio.CapacityLimiter(MAX_PARALLEL_PEERS)
        self.refs = RefResolver(self)
        self._news = trio.Event()
        node.ingest.listeners.append(self._on_stored)
        node.extra_status.append(self.status)

    # ---- status ------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        sessions = sum(self._active_out.values()) + sum(self._active_in.values())
        return {
            "sync": {
                "active": sessions > 0 or bool(self._wanted),
                "sessions": sessions,
                "peers": len(set(self._active_out) | set(self._active_in)),
                "missing": len(self._wanted),
                "fetched": self.stats.fetched,
                "refs_fetched": self.stats.refs_fetched,
                "served": self.stats.served,
                "sessions_done": self.stats.sessions_done,
                "sessions_failed": self.stats.sessions_failed,
                "violations": self.stats.violations,
                "last": self.stats.last,
            }
        }

    # ---- lifetime ----------------------------------------------------------------------

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        p2p = self.node.p2p
        assert p2p is not None
        self._token = trio.lowlevel.current_trio_token()
        events = p2p.peer_events()
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            for protocol_id in SYNC_PROTOCOL_IDS:  # every version we speak, newest first
                p2p.set_stream_handler(protocol_id, self._sync_handler(protocol_id))
            p2p.set_stream_handler(FETCH_PROTOCOL_ID, self._handle_fetch)
            nursery.start_soon(self._on_connections, events)
            nursery.start_soon(self._periodic)
            nursery.start_soon(self.refs.run)
            nursery.start_soon(self._news_loop)
            task_status.started()
            await trio.sleep_forever()

    def trigger(self, peer_id: str | None = None) -> None:
        """Reconcile with one peer (or all connected peers) soon; call on the trio thread."""
        if self._nursery is None or self.node.p2p is None:
            return
        peers = [peer_id] if peer_id else [p["peer_id"] for p in self.node.p2p.connected_peers()]
        for peer in peers:
            self._nursery.start_soon(self.sync_peer, peer)

    def trigger_threadsafe(self) -> None:
        if self._token is not None:
            self._token.run_sync_soon(self.trigger)

    def news(self) -> None:
        """New objects arrived outside gossip: reconcile with every peer soon."""
        self._news.set()

    async def _news_loop(self) -> None:
        while True:
            await self._news.wait()
            self._news = trio.Event()
            await trio.sleep(NEWS_DEBOUNCE_S)
            self.trigger()

    async def _on_connections(self, events: Any) -> None:
        async for event in events:
            assert self._nursery is not None
            self._nursery.start_soon(self._after_connect, event.peer_id)

    async def _after_connect(self, peer_id: str) -> None:
        await trio.sleep(CONNECT_SETTLE_S)
        await self.sync_peer(peer_id)

    async def _periodic(self) -> None:
        """Anti-entropy: every interval, reconcile with one connected peer chosen at random
        (sessions on connect and after news cover the rest)."""
        while True:
            await trio.sleep(SYNC_INTERVAL_S)
            peers = [p["peer_id"] for p in self.node.p2p.connected_peers()] if self.node.p2p else []
            if peers:
                self.trigger(random.choice(peers))

    # ---- initiator ---------------------------------------------------------------------

    def scopes(self) -> list[bytes]:
        return [kinds.PUBLIC_SCOPE, *sorted(self.node.service.all_follows())]

    async def sync_peer(self, peer_id: str) -> None:
        """Reconcile every scope with ``peer_id`` (one scope at a time)."""
        if peer_id in self._syncing:
            self._again.add(peer_id)
            return
        self._syncing.add(peer_id)
        try:
            async with self._peer_limit:
                while True:
                    self._again.discard(peer_id)
                    scopes = await trio.to_thread.run_sync(self.scopes)
                    for scope in scopes:
                        if not self._connected(peer_id):
                            return
                        await self.reconcile_scope(peer_id, scope)
                    if peer_id not in self._again:
                        break
        finally:
            self._syncing.discard(peer_id)

    def peers(self) -> list[str]:
        """Connected peers' ids."""
        p2p = self.node.p2p
        return [p["peer_id"] for p in p2p.connected_peers()] if p2p is not None else []

    def _connected(self, peer_id: str) -> bool:
        p2p = self.node.p2p
        return p2p is not None and any(p["peer_id"] == peer_id for p in p2p.connected_peers())

    async def reconcile_scope(self, peer_id: str, scope: bytes) -> dict[str, Any]:
        """Reconcile ``scope`` with the peer: one session, resumed from where it stopped
        while a session runs out of rounds without error and the bound it leaves open moves
        up, or started afresh after the peer cut a session that stored objects (up to
        MAX_RESUMES times in a row)."""
        summary = await self.session(peer_id, scope)
        resumes = 0
        last: Bound | None = None
        while resumes < MAX_RESUMES and self._connected(peer_id):
            bound = summary.get("resume_from")
            if "cut" in summary and summary.get("fetched"):
                bound = None  # the peer cut a session that stored objects: reconcile afresh
            elif bound is None or "error" in summary or summary.get("timed_out"):
                break
            elif last is not None and not bound > last:
                break  # no progress: a responder can keep any session from settling
            else:
                last = bound
            resumes += 1
            summary = await self.session(peer_id, scope, bound, resumes)
        return summary

    async def session(
        self, peer_id: str, scope: bytes, resume: Bound | None = None, resumed: int = 0
    ) -> dict[str, Any]:
        """One initiator session: reconcile ``scope`` with the peer, fetching the ids we lack
        as they are learnt. ``resume`` (a bound a previous session left open) starts the
        window there (``resumed`` counts the resumptions in a row). Returns the summary
        (also kept as ``stats.last``); its ``resume_from`` is the bound to resume from when
        the session ran out of rounds."""
        p2p = self.node.p2p
        assert p2p is not None
        started = time.monotonic()
        io = SessionIO()
        fetch = FetchQueue(self, peer_id)
        summary: dict[str, Any] = {"peer": peer_id, "scope": scope.hex(), "role": "initiator"}
        if resumed:
            summary["resumed"] = resumed  # the how-manieth resumption in a row
        # The whole window [0, MAX_TS), or from the resumed bound's timestamp on.
        opening = SyncOpen(scope) if resume is None else SyncOpen(scope, resume[0])
        lower = opening.bounds[0] if resume is None else resume
        init: Initiator | None = None
        self._active_out[peer_id] = self._active_out.get(peer_id, 0) + 1
        try:
            with trio.move_on_after(SESSION_DEADLINE_S) as deadline:

                def progress() -> None:  # a fetch stored objects: the deadline moves on
                    deadline.deadline = max(
                        deadline.deadline, trio.current_time() + SESSION_DEADLINE_S
                    )

                fetch.feed.on_progress = progress
                async with trio.open_nursery() as nursery:
                    # Offer every version we speak; the negotiated one sets the limits.
                    stream = await p2p.new_stream(peer_id, list(SYNC_PROTOCOL_IDS))
                    try:
                        negotiated = str(stream.get_protocol())
                        summary["protocol"] = negotiated
                        if negotiated == SYNC_PROTOCOL_ID_1_0:  # a first-release server
                            fetch.parallel = FETCH_PARALLEL_FIRST_RELEASE
                        nursery.start_soon(fetch.run)
                        init = Initiator(
                            LmdbItems(self.store, scope), lower, opening.bounds[1],
                            limits=limits_for(negotiated),
                        )  # fmt: skip
                        session = init
                        first = await trio.to_thread.run_sync(session.start)

                        async def step(data: bytes) -> bytes | None:
                            reply = await trio.to_thread.run_sync(session.receive, data)
                            # Handed over and forgotten by the session; the fetch queue
                            # bounds them: reconcile no further until it has room.
                            fetch.add(session.take_need())
                            await fetch.wait_for_room()
                            return reply

                        status = await initiate_sync(
                            stream, opening, first, step, lambda: session.done, io=io
                        )
                        summary["status"] = status.name
                    except (FrameError, OSError) as broken:
                        # The sync stream broke while the fetches go on: a responder's own
                        # deadline (120 s in every release) cuts a long catch-up, whose
                        # reconciliation waits for the fetch. What was learnt is fetched
                        # still, and reconcile_scope reconciles again if this stored any.
                        await reset_stream(stream)
                        summary["cut"] = f"transport: {broken}"
                    except BaseException:
                        await reset_stream(stream)
                        raise
                    fetch.close()
            summary["timed_out"] = deadline.cancelled_caught
        except Exception as group:  # libp2p raises many things for a dead peer/stream
            exc = unwrap(group)
            if isinstance(exc, PeerViolation):
                summary["error"] = f"violation: {exc}"
                self._violation(peer_id, f"sync: {exc}")
            elif isinstance(exc, FrameError | OSError):
                summary["error"] = f"transport: {exc}"
            else:
                summary["error"] = f"{type(exc).__name__}: {exc}"
                log.info("sync session with %s failed: %s", peer_id, summary["error"])
                log.debug("sync session with %s failed", peer_id, exc_info=True)
        finally:
            fetch.release()
            self._active_out[peer_id] -= 1
            if not self._active_out[peer_id]:
                del self._active_out[peer_id]
        if init is not None:
            summary |= {
                "rounds": init.rounds, "need": init.need_learnt, "have": len(init.have),
                "reconcile_bytes": init.bytes_sent + init.bytes_received,
                "complete": init.done and init.complete,
                "resume_from": init.resume_from if init.done else None,
            }  # fmt: skip
        summary |= {
            "fetched": fetch.stored, "unserved": fetch.unserved,
            "bytes_sent": io.bytes_sent + fetch.io.bytes_sent,
            "bytes_received": io.bytes_received + fetch.io.bytes_received,
            "seconds": round(time.monotonic() - started, 3),
        }  # fmt: skip
        if "error" in summary or "cut" in summary or summary.get("timed_out"):
            self.stats.sessions_failed += 1
        else:
            self.stats.sessions_done += 1
        self.stats.last = summary
        log.info("sync %s", summary)
        return summary

    # ---- responder ---------------------------------------------------------------------

    def _sync_handler(self, protocol_id: str) -> Callable[[Any], Awaitable[None]]:
        limits = limits_for(protocol_id)

        async def handle(stream: Any) -> None:
            await self._handle_sync(stream, limits)

        return handle

    async def _handle_sync(self, stream: Any, limits: Limits = V1_0) -> None:
        peer_id = peer_of(stream)
        budget = self._budgets.of(peer_id)
        spent = budget.cpu_exhausted()
        over = (
            self._active_in.get(peer_id, 0) >= MAX_SESSIONS_PER_PEER
            or sum(self._active_in.values()) >= MAX_SESSIONS_TOTAL
            or spent
        )
        if spent:
            budget.busy_answers += 1
            log.info("sync: %s spent its reconciliation CPU budget; answering BUSY", peer_id)
        self._active_in[peer_id] = self._active_in.get(peer_id, 0) + 1
        resp: Responder | None = None
        try:
            with trio.move_on_after(SESSION_DEADLINE_S) as deadline:

                async def accept(opening: SyncOpen) -> Any:
                    nonlocal resp
                    if over:
                        return Accept.BUSY, None, lambda: True
                    # Only the opening's window [lower_ts, upper_ts) is reconciled; a message
                    # naming ranges outside it is a violation (ReconcileError).
                    resp = Responder(
                        LmdbItems(self.store, opening.scope), *opening.bounds,
                        need_limit=MAX_RESPONDER_NEED, limits=limits,
                    )  # fmt: skip
                    r = resp

                    def timed(data: bytes) -> tuple[bytes | None, float]:
                        t0 = time.thread_time()
                        reply = r.receive(data)
                        return reply, time.thread_time() - t0

                    async def step(data: bytes) -> bytes | None:
                        reply, cpu = await trio.to_thread.run_sync(timed, data)
                        budget.spend_cpu(cpu)
                        return reply

                    return Accept.OK, step, lambda: r.done

                await respond_sync(stream, accept)
            if deadline.cancelled_caught:
                await reset_stream(stream)
                return
        except PeerViolation as exc:
            self._violation(peer_id, f"sync: {exc}")
            await reset_stream(stream)
            return
        except FrameError:
            await reset_stream(stream)
            return
        finally:
            self._active_in[peer_id] -= 1
            if not self._active_in[peer_id]:
                del self._active_in[peer_id]
        if resp is not None and resp.done and resp.need and self._nursery is not None:
            # Symmetric reconciliation: we learnt what we lack too; fetch it from the peer.
            self._nursery.start_soon(self._fetch_needs, peer_id, sorted(resp.need))

    async def _fetch_needs(self, peer_id: str, ids: Sequence[bytes]) -> None:
        fetch = FetchQueue(self, peer_id)
        try:
            with trio.move_on_after(SESSION_DEADLINE_S):
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(fetch.run)
                    fetch.add(ids)
                    fetch.close()
        except Exception as group:
            exc = unwrap(group)
            if isinstance(exc, PeerViolation):
                self._violation(peer_id, f"fetch: {exc}")
            else:
                log.info("fetch from %s failed: %s", peer_id, exc)
        finally:
            fetch.release()

    # ---- missing references (node/sync/refs.py) -----------------------------------------

    def _on_stored(self, stored: list[Stored]) -> None:
        """Ingest listener (worker thread): queue missing refs. (What sync brought is counted
        where it is ingested, `Fetching._ingest_from`: a catch-up's writer waits for the GIL
        this listener holds, and a pass over every stored object showed in its profile.)"""
        self.refs.on_stored(stored)

    # ---- misc --------------------------------------------------------------------------

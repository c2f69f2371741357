"""What serving fetches may cost, per peer (issue 21: a peer re-fetching the same 20k objects
on 16 streams got 1,085 MB for 36 MB of requests, ~30x, with no limit and no strike).

* **Bytes**: a token bucket per peer, SERVE_BYTES_PER_S with SERVE_BURST_BYTES of burst. An
  answer waits for its tokens (the peer is slowed, not refused): the rate is above what a node
  can ingest (~15k objects/s of ~1 KiB on this machine), so an honest catch-up never notices.
* **Repeats**: an honest node asks only for what it lacks, and stores what it gets; asking
  again for what it was just served is a sign of amplification. The 8-byte prefixes of the
  last REPEAT_MEMORY_IDS ids asked by a peer are remembered; more than MAX_REPEATS asked again
  within REPEAT_WINDOW_S is a violation (a strike). A receiver does not ask again for objects
  it deferred (a timestamp ahead of its clock) before their time (node/sync/service.py).
* **Reconciliation CPU**: answering a peer's sync sessions costs CPU (hashing, splitting and
  filling each reply). A peer whose fingerprints never match (issue 21: ~114% CPU for as long
  as it liked) is served from a second bucket, RESPOND_CPU_PER_S seconds of CPU per second
  with RESPOND_CPU_BURST_S of burst; once it is spent, that peer's new sessions are answered
  BUSY until it refills. An honest catch-up of 1M objects takes a few seconds of it.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Sequence

import trio

from p2p.sync_transport import PeerViolation

SERVE_BYTES_PER_S = 32 * 1024 * 1024
SERVE_BURST_BYTES = 64 * 1024 * 1024
REPEAT_MEMORY_IDS = 16_384  # ~1 MB a peer with the bookkeeping
MAX_REPEATS = 2_048
REPEAT_WINDOW_S = 60.0
RESPOND_CPU_PER_S = 0.25  # a quarter of a core, sustained, per peer
RESPOND_CPU_BURST_S = 30.0
MAX_PEERS_TRACKED = 256  # budgets kept (least recently used dropped)
_PREFIX = 8


class PeerServeBudget:
    def __init__(self) -> None:
        self.tokens = float(SERVE_BURST_BYTES)
        self._at = time.monotonic()
        self._recent: OrderedDict[bytes, None] = OrderedDict()
        self.repeats = 0
        self._window_at = time.monotonic()
        self.waited_s = 0.0
        self.cpu_tokens = RESPOND_CPU_BURST_S
        self._cpu_at = time.monotonic()
        self.busy_answers = 0  # sessions refused for want of CPU budget

    def spend_cpu(self, seconds: float) -> None:
        """Charge `seconds` of CPU spent answering this peer's sync messages."""
        self.cpu_tokens -= seconds

    def cpu_exhausted(self) -> bool:
        """Whether the peer's reconciliation CPU allowance is spent (after refilling it)."""
        now = time.monotonic()
        refill = (now - self._cpu_at) * RESPOND_CPU_PER_S
        self.cpu_tokens = min(RESPOND_CPU_BURST_S, self.cpu_tokens + refill)
        self._cpu_at = now
        return self.cpu_tokens <= 0

    async def take(self, nbytes: int) -> None:
        """Spend `nbytes` of the peer's allowance, waiting for it to refill if need be."""
        now = time.monotonic()
        self.tokens = min(SERVE_BURST_BYTES, self.tokens + (now - self._at) * SERVE_BYTES_PER_S)
        self._at = now
        self.tokens -= nbytes
        if self.tokens < 0:
            wait = -self.tokens / SERVE_BYTES_PER_S
            self.waited_s += wait
            await trio.sleep(wait)

    def note_asked(self, ids: Sequence[bytes]) -> None:
        """Count ids asked again after being served; raises PeerViolation past MAX_REPEATS."""
        recent = self._recent
        if time.monotonic() - self._window_at > REPEAT_WINDOW_S:
            self.repeats, self._window_at = 0, time.monotonic()
        for oid in ids:
            key = oid[:_PREFIX]
            if key in recent:
                self.repeats += 1
                recent.move_to_end(key)
            else:
                recent[key] = None
                if len(recent) > REPEAT_MEMORY_IDS:
                    recent.popitem(last=False)
        if self.repeats > MAX_REPEATS:
            raise PeerViolation(
                f"asked again for {self.repeats} objects it was just served (amplification)"
            )


class ServeBudgets:
    """One PeerServeBudget per peer, the least recently used dropped past MAX_PEERS_TRACKED."""

    def __init__(self) -> None:
        self._by_peer: OrderedDict[str, PeerServeBudget] = OrderedDict()

    def of(self, peer_id: str) -> PeerServeBudget:
        budget = self._by_peer.get(peer_id)
        if budget is None:
            budget = self._by_peer[peer_id] = PeerServeBudget()
            if len(self._by_peer) > MAX_PEERS_TRACKED:
                self._by_peer.popitem(last=False)
        else:
            self._by_peer.move_to_end(peer_id)
        return budget

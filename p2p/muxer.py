"""Yamux with batched receive-window credit (py-libp2p 0.8.1's sends one update per read).

Upstream behaviour changed here (``libp2p/stream_muxer/yamux/yamux.py``,
``YamuxStream._auto_tune_and_send_window_update``): after *every* read, even a one-byte
read of a varint length prefix, the stream credits the bytes back to the sender with its own
``WINDOW_UPDATE`` frame (its "partial slack" and ``PY_YAMUX_RELEASE_ON_READ`` paths). A
pubsub RPC is read as varint + body, so each received gossip message cost 2-4 extra frames,
each its own Noise message and TCP segment (plus the ACK): in bench/gossip.py (20 nodes,
1 msg/s) 10,898 of 15,023 TCP writes were window updates, ~17% of loopback bytes.

:class:`BatchedCreditYamux` holds back plain credit frames (``WINDOW_UPDATE`` without flags)
per stream until ``YAMUX_CREDIT_BATCH_BYTES`` have accumulated, then sends them as one frame:
go-yamux's semantics (it credits once half the window is consumed). Frames with flags (SYN,
ACK, FIN, RST: stream open/close) and every other frame type pass through unchanged.

Upstream's ``MuxerMultistream.new_conn`` (``libp2p/stream_muxer/muxer_multistream.py``)
builds a plain ``Yamux`` whenever yamux is negotiated, ignoring the class given in
``muxer_opt``; :func:`install_batched_credit_yamux` replaces the host's muxer selector with
one that builds the class it was given.

Why it cannot stall a stream: the sender's window is at least ``DEFAULT_WINDOW_SIZE``
(256 KiB) and we hold back less than ``YAMUX_CREDIT_BATCH_BYTES`` (<= half of it). A blocked
sender has a full window outstanding, so at least the other half is still buffered unread
here; reading it pushes the held-back credit over the threshold and releases it.
"""

from __future__ import annotations

import logging
import struct
from typing import Any

from libp2p.stream_muxer.muxer_multistream import MuxerMultistream
from libp2p.stream_muxer.yamux.yamux import (
    DEFAULT_WINDOW_SIZE,
    HEADER_SIZE,
    TYPE_WINDOW_UPDATE,
    YAMUX_HEADER_FORMAT,
    Yamux,
)

from p2p.limits import YAMUX_CREDIT_BATCH_BYTES

logger = logging.getLogger(__name__)

if YAMUX_CREDIT_BATCH_BYTES > DEFAULT_WINDOW_SIZE // 2:  # pragma: no cover
    raise ValueError("YAMUX_CREDIT_BATCH_BYTES above half the initial window could stall")

# Held-back credit of streams that ended is forgotten when the table outgrows the live
# streams by this many entries (a closed stream needs no credit).
_STALE_CREDIT_SLACK = 32


class BatchedCreditYamux(Yamux):
    """``Yamux`` that coalesces per-read window credits (see module docstring)."""

    _held_credit: dict[int, int]

    async def _write_frame(self, data: bytes) -> None:
        if len(data) == HEADER_SIZE:
            _, typ, flags, sid, length = struct.unpack(YAMUX_HEADER_FORMAT, data)
            if typ == TYPE_WINDOW_UPDATE:
                held = getattr(self, "_held_credit", None)
                if held is None:
                    held = self._held_credit = {}
                if flags:
                    # FIN/RST (or SYN/ACK) of this stream: nothing more to credit.
                    held.pop(sid, None)
                else:
                    total = held.get(sid, 0) + length
                    if total < YAMUX_CREDIT_BATCH_BYTES:
                        held[sid] = total
                        self._forget_stale_credit(held)
                        return
                    held.pop(sid, None)
                    data = struct.pack(YAMUX_HEADER_FORMAT, 0, typ, 0, sid, total)
        await super()._write_frame(data)

    def _forget_stale_credit(self, held: dict[int, int]) -> None:
        if len(held) > len(self.streams) + _STALE_CREDIT_SLACK:
            for sid in [s for s in held if s not in self.streams]:
                del held[sid]


class ClassRespectingMuxerMultistream(MuxerMultistream):
    """``MuxerMultistream`` that instantiates the negotiated muxer class it was given."""

    async def new_conn(self, conn: Any, peer_id: Any) -> Any:
        protocol, transport_class = await self._selector.select(
            conn, conn.is_initiator, self.negotiate_timeout
        )
        muxed: Any
        if isinstance(transport_class, type) and issubclass(transport_class, Yamux):
            muxed = transport_class(conn, peer_id, is_initiator=conn.is_initiator)
        else:
            muxed = transport_class(conn, peer_id)
        return self._annotate_connection(muxed, conn, protocol)


def install_batched_credit_yamux(host: Any, muxer_opt: dict[Any, Any]) -> None:
    """Make ``host`` build its muxed connections from ``muxer_opt``'s classes."""
    upgrader = host.get_network().upgrader
    upgrader.muxer_multistream = ClassRespectingMuxerMultistream(
        muxer_opt, upgrader.muxer_multistream.negotiate_timeout
    )

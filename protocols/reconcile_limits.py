"""Limits of set reconciliation, one `Limits` per protocol version (docs/sync.md, "Limits").

Both versions exchange the same messages (docs/sync.md, "Messages"); they differ in what a
receiver accepts and so in how a sender may fill a message:

* ``/percolab/sync/1.0.0`` (`V1_0`): at most 2,048 ranges and 8,192 ids in a message. Nodes
  of the first release enforce exactly these: a message beyond them is a violation (a strike)
  for them, so a session negotiated as 1.0.0 never sends one.
* ``/percolab/sync/1.1.0`` (`V1_1`): a message is bounded by its byte size; the range and id
  caps are only as high as 512 KiB can hold, so a sender fills every message up to
  ``MAX_MESSAGE_BYTES`` and the number of round trips no longer grows with the number of
  differences. The last message a side may send (index ``2·MAX_ROUNDS − 2`` for the
  initiator, ``2·MAX_ROUNDS − 1`` for the responder) must request nothing (no FINGERPRINT,
  no IDLIST): a session that runs out of rounds ends cleanly and the initiator resumes it
  with a new session from where it stopped.

The node offers both protocol ids, newest first (`SYNC_PROTOCOL_IDS`), serves both, and
passes ``limits_for(negotiated_id)`` to its Initiator / Responder.
"""

from __future__ import annotations

from dataclasses import dataclass

SYNC_PROTOCOL_ID_1_0 = "/percolab/sync/1.0.0"
SYNC_PROTOCOL_ID_1_1 = "/percolab/sync/1.1.0"

# Tuning, the same in both versions. A differing range with more than IDLIST_THRESHOLD items
# is split into BUCKETS parts; IDLIST_THRESHOLD is also a decoding rule (at most that many
# short ids in one IDLIST, so a DIFF bitmap is at most 8 bytes).
BUCKETS = 16
IDLIST_THRESHOLD = 64
SHORT_ID_BYTES = 8  # salted id hashes in IDLIST ranges
SALT_BYTES = 16

MAX_MESSAGE_BYTES = 512 * 1024  # both versions: the frame limit of p2p/sync_transport.py
MAX_ROUNDS = 64  # round trips per session (initiator messages); message index < 2 * MAX_ROUNDS

# Version 1.0.0: the caps of the first release.
MAX_RANGES_PER_MESSAGE = 2048
MAX_IDS_PER_MESSAGE = 8192  # short ids (IDLIST) + full ids (DIFF extras, HAVE) in one message

# Version 1.1.0: the caps follow from the byte limit. The cheapest range (a SKIP) takes 5
# bytes and a short id 8, so 512 KiB holds about 100k ranges or 64k short ids; the caps are
# set at what an honest sender filling 512 KiB can need (an empty IDLIST, the cheapest range
# it sends in bulk, takes 7 bytes: 75k; in practice fingerprints of ~27 bytes: 19k), so a
# decoded message stays a small multiple of its bytes in memory.
MAX_RANGES_PER_MESSAGE_1_1 = 65_536
MAX_IDS_PER_MESSAGE_1_1 = 65_536

# Smallest message limit a `Limits` may have: a sender must fit the message header, one split
# (BUCKETS fingerprints) and what it owes (HAVE ranges) into every message to make progress.
MIN_MESSAGE_BYTES = 4096


@dataclass(frozen=True)
class Limits:
    """What one protocol version lets a message and a session hold (docs/sync.md "Limits")."""

    protocol_id: str
    max_ranges: int  # ranges in one message (too_many_ranges)
    max_ids: int  # short ids + full ids in one message (too_many_ids)
    # A side's last message (index 2·max_rounds-2 or -1) must not contain a FINGERPRINT or an
    # IDLIST (it could not be answered): checked on receipt (too_many_rounds) when True. Our
    # sender never sends one in either version; 1.0.0 receivers did not check it.
    final_requests_checked: bool
    max_message_bytes: int = MAX_MESSAGE_BYTES
    max_rounds: int = MAX_ROUNDS
    buckets: int = BUCKETS
    idlist_threshold: int = IDLIST_THRESHOLD

    def __post_init__(self) -> None:
        if self.max_message_bytes < MIN_MESSAGE_BYTES:
            raise ValueError(f"max_message_bytes must be at least {MIN_MESSAGE_BYTES}")
        if self.max_rounds < 2 or self.buckets < 2 or not 1 <= self.idlist_threshold <= 64:
            raise ValueError("max_rounds and buckets must be >= 2, idlist_threshold in 1..64")
        if self.max_ranges < 4 * self.buckets or self.max_ids < 2 * self.idlist_threshold:
            raise ValueError("max_ranges must hold 4 splits, max_ids 2 full IDLISTs")

    @property
    def max_index(self) -> int:
        """Message indexes are in ``[0, max_index)``."""
        return 2 * self.max_rounds

    @property
    def max_bitmap_bytes(self) -> int:
        return (self.idlist_threshold + 7) // 8

    def is_final(self, index: int) -> bool:
        """Whether message ``index`` is the last its sender may send in a session."""
        return index >= self.max_index - 2


V1_0 = Limits(
    SYNC_PROTOCOL_ID_1_0, MAX_RANGES_PER_MESSAGE, MAX_IDS_PER_MESSAGE, final_requests_checked=False
)
V1_1 = Limits(
    SYNC_PROTOCOL_ID_1_1,
    MAX_RANGES_PER_MESSAGE_1_1,
    MAX_IDS_PER_MESSAGE_1_1,
    final_requests_checked=True,
)
# Offered by an initiator in this order (multistream-select takes the first the peer serves).
SYNC_PROTOCOL_IDS = (SYNC_PROTOCOL_ID_1_1, SYNC_PROTOCOL_ID_1_0)
LIMITS_BY_PROTOCOL = {limits.protocol_id: limits for limits in (V1_1, V1_0)}


def limits_for(protocol_id: str) -> Limits:
    """The limits of a negotiated sync protocol id (KeyError for one we do not speak)."""
    return LIMITS_BY_PROTOCOL[protocol_id]

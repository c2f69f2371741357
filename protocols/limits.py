"""Every limit on objects, as named constants. docs/protocol.md quotes these values."""

from __future__ import annotations

# Whole signed object, in bytes. Nostr relays cap events at 64 KiB; we do the same.
MAX_OBJECT_BYTES = 64 * 1024
# How far into the future an object's timestamp may be (clock skew allowance), in ms.
MAX_FUTURE_SKEW_MS = 15 * 60 * 1000
# Timestamps are unsigned milliseconds below 2^48 (year ~10889): fits sync keys in 6 bytes.
MAX_TS_MS = 2**48 - 1
# Integers anywhere in a body stay within signed 64-bit range (JSON-safe ranges are per field).
MIN_INT = -(2**63)
MAX_INT = 2**63 - 1
# Nesting depth of maps/lists inside a body (extension kinds may nest; core kinds use 2):
# bounds the decoder's recursion whatever a peer sends.
MAX_DEPTH = 8

MAX_NAME_CHARS = 80
MAX_ABOUT_CHARS = 2_000
MAX_PLACE_CHARS = 120
MAX_TITLE_CHARS = 140
MAX_SUMMARY_CHARS = 500
MAX_BODY_CHARS = 32_000
MAX_COMMENT_CHARS = 8_000
MAX_NEED_CHARS = 64
MAX_NEEDS = 16

# Tag labels: at most 32 per tag object, each 1..48 characters of lowercase letters, digits,
# '-' and '_' (Unicode letters allowed, NFC-normalised, lowercase).
MAX_LABELS = 32
MAX_LABEL_CHARS = 48

ID_BYTES = 32
KEY_BYTES = 32
SIG_BYTES = 64

# Envelope versions a decoder accepts as an envelope (1 is the only one this release
# understands; a higher one is stored as opaque: docs/protocol.md §1, "Forward compatibility").
MAX_VERSION = 65_535
# Kind names: 1..32 characters of a-z 0-9 _ . -, starting with a letter.
MAX_KIND_CHARS = 32

# Identity (docs/identity.md): object ids one `revoke` may disown explicitly, the recovery
# contacts of one `recovery` set, the length of a revocation's reason, and the rounds of the
# attribution view's recovery fixed point (protocols/attribution.py) before it settles a
# cycle conservatively.
MAX_DISOWN = 256
MAX_RECOVERY_CONTACTS = 7
MAX_REASON_CHARS = 500
MAX_RECOVERY_ROUNDS = 32

# Living projects (issue 23, docs/protocol.md §3.3): a project's licence (an SPDX expression or
# "all rights reserved"), its co-authors (member ids, the creator not among them), what it
# derives from (records: project, how, note), a revision's superseded heads and changed fields,
# and the notes of revisions and pledges.
MAX_LICENCE_CHARS = 64
MAX_COAUTHORS = 16
MAX_DERIVES = 8
MAX_DERIVE_NOTE_CHARS = 280
MAX_TOKEN_CHARS = 16  # `how` of a derive, `type` of a pledge: [a-z]{1,16}
MAX_SUPERSEDES = 16
MAX_SET_FIELDS = 16
MAX_REVISION_NOTE_CHARS = 280
MAX_PLEDGE_NOTE_CHARS = 500

# Lab governance (issue 24, docs/protocol.md §3.4, docs/governance.md): a `decision`'s
# `reason` is MAX_REASON_CHARS (above) like a revocation's; the vouches a newcomer needs
# (`rules.admit_vouches`: its bounds and the default), the entries of one `rules` record, and
# how long a proposal waits for its stewards' endorsements (30 days).
MIN_ADMIT_VOUCHES = 1
MAX_ADMIT_VOUCHES = 16
DEFAULT_ADMIT_VOUCHES = 2
MAX_RULE_ENTRIES = 16
PROPOSAL_TTL_MS = 30 * 24 * 60 * 60 * 1000

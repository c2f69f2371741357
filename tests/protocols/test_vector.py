"""The test vector of docs/protocol.md, rebuilt two ways: through protocols.objects and by hand
(plain msgpack + Ed25519 + SHA-256, as another implementation would), both equal to the doc."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import msgpack
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from protocols import kinds, objects

DOC = Path(__file__).parents[2] / "docs" / "protocol.md"

# Vector 1 of docs/protocol.md: seed bytes(range(32)), a profile at a fixed ts.
SEED = bytes(range(32))
TS = 1_767_225_600_000
KIND = "profile"
BODY = {"name": "Ada", "about": "Maker at Fablab Nord"}
# Computed once with protocols.objects (and equal to the hand-built form below).
OBJECT_HEX = (
    "9601a770726f66696c65c42003a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8"
    "cf0000019b76daa80082a561626f7574b44d616b6572206174204661626c6162204e6f7264a46e616d65a341"
    "6461c4409e4f2f4e76b642ea703cf9fbe1befb1a338e0b6fa1b7a5ac56d42ce316955fdbfe2657b122e1ee6e"
    "136bafe8be87bcef7410f78a19516946a539f1992621b408"
)
SIG_HEX = (
    "9e4f2f4e76b642ea703cf9fbe1befb1a338e0b6fa1b7a5ac56d42ce316955fdbfe2657b122e1ee6e136bafe8"
    "be87bcef7410f78a19516946a539f1992621b408"
)
ID_HEX = "6696627a52d1cf8461b09291661cdfb4bb591dbf1762309beea3e2eb3d2dc75b"


def _by_hand() -> tuple[bytes, bytes, bytes]:
    key = Ed25519PrivateKey.from_private_bytes(SEED)
    author = objects.public_key_bytes(key)
    body = dict(sorted(BODY.items(), key=lambda kv: kv[0].encode()))
    unsigned = msgpack.packb([1, KIND, author, TS, body], use_bin_type=True)
    sig = key.sign(b"percolab/object/v1\x00" + unsigned)
    raw = b"\x96" + unsigned[1:] + b"\xc4\x40" + sig
    return raw, sig, hashlib.sha256(raw).digest()


def test_vector_through_the_object_model() -> None:
    obj = kinds.create(Ed25519PrivateKey.from_private_bytes(SEED), KIND, BODY, TS)
    assert obj.raw.hex() == OBJECT_HEX
    assert obj.sig.hex() == SIG_HEX
    assert obj.id.hex() == ID_HEX
    again = objects.decode(bytes.fromhex(OBJECT_HEX))
    assert again == obj and objects.verify(again)
    kinds.validate(again, TS)


def test_vector_by_hand() -> None:
    raw, sig, oid = _by_hand()
    assert (raw.hex(), sig.hex(), oid.hex()) == (OBJECT_HEX, SIG_HEX, ID_HEX)


def test_vector_matches_docs_protocol_md() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert SEED.hex() in text, "the doc's key seed differs"
    section = text[text.index("### Vector 1") :]
    section = section[: section.find("### ", 4)]
    assert str(TS) in section
    hexes = re.findall(r"`([0-9a-f]{64,})`", section)
    assert OBJECT_HEX in hexes and SIG_HEX in hexes and ID_HEX in hexes

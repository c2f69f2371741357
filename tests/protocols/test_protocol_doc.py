"""docs/protocol.md's test vectors and limits table are checked against the code, so the
document someone implements from cannot drift from what the nodes do."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from protocols import kinds, limits, objects

DOC = (Path(__file__).parents[2] / "docs" / "protocol.md").read_text()


def _field(section: str, label: str) -> str:
    m = re.search(rf"{label}[^`]*`([0-9a-f]+)`", section)
    assert m, f"{label} not found in docs/protocol.md"
    return m.group(1)


def _section(title: str) -> str:
    start = DOC.index(title)
    end = DOC.find("### ", start + len(title))
    return DOC[start : end if end > 0 else len(DOC)]


SEED = bytes.fromhex(_field(DOC, "Key seed"))
KEY = Ed25519PrivateKey.from_private_bytes(SEED)
TS = 1767225600000

VECTORS = [
    ("### Vector 1", "profile", {"about": "Maker at Fablab Nord", "name": "Ada"}),
    (
        "### Vector 2",
        "project",
        {
            "body": "",
            "lab": b"\x11" * 32,
            "needs": [],
            "stage": "idea",
            "summary": "",
            "title": "Solar dryer",
        },
    ),
]


def test_public_key_matches_doc() -> None:
    assert objects.public_key_bytes(KEY).hex() == _field(DOC, "Public key")


@pytest.mark.parametrize(("title", "kind", "body"), VECTORS)
def test_vector_reproduces_bytes_signature_and_id(title: str, kind: str, body: dict) -> None:
    sec = _section(title)
    obj = kinds.create(KEY, kind, body, TS)
    assert obj.raw.hex() == _field(sec, "object bytes")
    assert obj.id.hex() == _field(sec, "id")
    decoded = objects.decode(bytes.fromhex(_field(sec, "object bytes")))
    assert objects.verify(decoded)
    assert decoded.body == body
    if "- signature:" in sec:
        assert obj.sig.hex() == _field(sec, "signature")
        unsigned = objects.unsigned_bytes(kind, obj.author, TS, body)
        assert unsigned.hex() == _field(sec, "unsigned array")
        assert objects.SIGN_DOMAIN + unsigned == b"percolab/object/v1\x00" + unsigned


def test_limits_table_matches_constants() -> None:
    assert f"{limits.MAX_OBJECT_BYTES:,} bytes" in DOC
    assert f"{limits.MAX_FUTURE_SKEW_MS:,} ms" in DOC
    assert f"| {limits.MAX_LABELS} |" in DOC
    assert f"1–{limits.MAX_LABEL_CHARS} characters" in DOC
    assert f"{limits.MAX_BODY_CHARS:,}" in DOC
    for stage in kinds.STAGES:
        assert stage in DOC

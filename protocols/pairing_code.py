"""Pairing codes, tickets and their terminal QR (sans-I/O; docs/pairing.md, "The code").

A **code** is 10 Crockford-base32 characters shown as ``XXXXX-XXXXX``:

    tag (2 chars, 10 bits) | secret (7 chars, 35 bits) | check (1 char)

The tag is sent in clear to find the device that shows the code (the rendezvous); the whole
9 data characters are the SPAKE2 password. The check character is ``sum((2i+1) * v_i) mod 32``
over the 9 data values: it catches every single mistyped character and most swaps before
anything touches the network. Parsing forgives case, spaces, dashes and I/L (= 1), O (= 0).

A **ticket** (what the QR carries) adds the new device's peer id and addresses:
``PERCOLAB-PAIR:`` + Crockford base32 of ``msgpack([1, data bin(9), peer_id bin, [addr bin,
...]])``, upper case so a QR encodes it in alphanumeric mode (5.5 bits per character).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgpack

from protocols.reconcile_wire import MsgpackError, unpack_plain

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_VALUES = {c: i for i, c in enumerate(ALPHABET)}
_VALUES.update({"I": 1, "L": 1, "O": 0})
TAG_CHARS = 2
SECRET_CHARS = 7
DATA_CHARS = TAG_CHARS + SECRET_CHARS
CODE_CHARS = DATA_CHARS + 1  # with the check character
TICKET_SCHEME = "PERCOLAB-PAIR:"
TICKET_VERSION = 1
MAX_TICKET_CHARS = 1024
MAX_TICKET_ADDRS = 8
MAX_ADDR_BYTES = 200
MAX_PEER_ID_BYTES = 128
_BASE58 = set("123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz")
# QR: error correction level M; a 2-module quiet zone (terminals frame it well enough).
QR_ERROR = "m"
QR_BORDER = 2


class PairingCodeError(ValueError):
    """A code or ticket the user typed or scanned is malformed; str() is one line for them."""


def _check_char(data: str) -> str:
    return ALPHABET[sum((2 * i + 1) * _VALUES[c] for i, c in enumerate(data)) % 32]


@dataclass(frozen=True)
class PairingCode:
    """The 9 data characters (canonical Crockford letters, upper case)."""

    data: str

    def __post_init__(self) -> None:
        if len(self.data) != DATA_CHARS or any(c not in ALPHABET for c in self.data):
            raise PairingCodeError(f"a pairing code holds {DATA_CHARS} data characters")

    @property
    def tag(self) -> int:
        """Rendezvous tag, 0..1023 (sent in clear)."""
        return _VALUES[self.data[0]] * 32 + _VALUES[self.data[1]]

    @property
    def password(self) -> bytes:
        """What SPAKE2 hashes into its password scalar."""
        return self.data.encode("ascii")

    def display(self) -> str:
        full = self.data + _check_char(self.data)
        return f"{full[:5]}-{full[5:]}"

    def __str__(self) -> str:
        return self.display()


def new_code(randbytes: Callable[[int], bytes] = os.urandom) -> PairingCode:
    """A fresh random code (45 random bits)."""
    value = int.from_bytes(randbytes(8), "big") >> (64 - 5 * DATA_CHARS)
    chars = [ALPHABET[(value >> (5 * (DATA_CHARS - 1 - i))) & 31] for i in range(DATA_CHARS)]
    return PairingCode("".join(chars))


def parse_code(text: str) -> PairingCode:
    """Parse what a human typed; raises PairingCodeError with a one-line message."""
    if not isinstance(text, str):
        raise PairingCodeError("a pairing code is text, like 7K3QD-M9X2A")
    raw = "".join(c for c in text.upper() if c not in " -\t")
    if len(raw) != CODE_CHARS:
        raise PairingCodeError(
            f"a pairing code has {CODE_CHARS} letters and digits, like 7K3QD-M9X2A (got {len(raw)})"
        )
    bad = [c for c in raw if c not in _VALUES]
    if bad:
        raise PairingCodeError(f"{bad[0]!r} does not occur in pairing codes")
    canon = "".join(ALPHABET[_VALUES[c]] for c in raw)
    if _check_char(canon[:DATA_CHARS]) != canon[DATA_CHARS]:
        raise PairingCodeError("this pairing code has a typo: check it against the other screen")
    return PairingCode(canon[:DATA_CHARS])


# --- tickets -------------------------------------------------------------------------------


def b32encode(data: bytes) -> str:
    """Crockford base32, no padding (the last group is zero-filled on the right)."""
    bits = len(data) * 8
    value = int.from_bytes(data, "big") << ((-bits) % 5)
    n = (bits + 4) // 5
    return "".join(ALPHABET[(value >> (5 * (n - 1 - i))) & 31] for i in range(n))


def b32decode(text: str) -> bytes:
    """Inverse of b32encode (case, I/L/O forgiven); PairingCodeError if not base32."""
    value = 0
    for c in text.upper():
        if c not in _VALUES:
            raise PairingCodeError("the ticket holds a character that is not base32")
        value = (value << 5) | _VALUES[c]
    nbytes = len(text) * 5 // 8
    pad = len(text) * 5 - nbytes * 8
    if pad >= 5 or value & ((1 << pad) - 1):
        raise PairingCodeError("the ticket is cut or damaged")
    return (value >> pad).to_bytes(nbytes, "big")


def _strip_p2p(addr: str, peer_id: str) -> str:
    suffix = f"/p2p/{peer_id}"
    return addr[: -len(suffix)] if addr.endswith(suffix) else addr


@dataclass(frozen=True)
class Ticket:
    """Code + where to find the device showing it (``addrs`` without ``/p2p/<id>``)."""

    code: PairingCode
    peer_id: str
    addrs: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_ticket(self.peer_id, self.addrs)

    def dial_addrs(self) -> list[str]:
        """The addresses with ``/p2p/<peer id>`` appended (what P2PNode.connect wants)."""
        return [f"{a}/p2p/{self.peer_id}" for a in self.addrs]

    def encode(self) -> str:
        body = [
            TICKET_VERSION,
            self.code.password,
            self.peer_id.encode("ascii"),
            [a.encode("utf-8") for a in self.addrs],
        ]
        return TICKET_SCHEME + b32encode(msgpack.packb(body, use_bin_type=True))

    @classmethod
    def create(cls, code: PairingCode, peer_id: str, addrs: list[str]) -> Ticket:
        """From a node's listen addresses (``/p2p/`` suffixes dropped, at most 8 kept)."""
        kept = [_strip_p2p(a, peer_id) for a in addrs if len(a.encode()) <= MAX_ADDR_BYTES]
        return cls(code, peer_id, tuple(kept[:MAX_TICKET_ADDRS]))


def _check_ticket(peer_id: Any, addrs: Any) -> None:
    if (
        type(peer_id) is not str
        or not 0 < len(peer_id) <= MAX_PEER_ID_BYTES
        or not set(peer_id) <= _BASE58
    ):
        raise PairingCodeError("the ticket's peer id is not a libp2p peer id")
    if type(addrs) is not tuple or len(addrs) > MAX_TICKET_ADDRS:
        raise PairingCodeError(f"a ticket holds at most {MAX_TICKET_ADDRS} addresses")
    for a in addrs:
        if type(a) is not str or not a.startswith("/") or len(a.encode()) > MAX_ADDR_BYTES:
            raise PairingCodeError("the ticket holds a malformed address")


def parse_ticket(text: str) -> Ticket:
    """Parse a ``PERCOLAB-PAIR:`` ticket (scheme in any case); PairingCodeError if not one."""
    if not isinstance(text, str):
        raise PairingCodeError("a pairing ticket is text")
    text = text.strip()
    if len(text) > MAX_TICKET_CHARS:
        raise PairingCodeError("the pairing ticket is too long")
    if not text.upper().startswith(TICKET_SCHEME):
        raise PairingCodeError(f"a pairing ticket starts with {TICKET_SCHEME}")
    raw = b32decode(text[len(TICKET_SCHEME) :])
    try:
        top = unpack_plain(raw)
    except MsgpackError:
        raise PairingCodeError("the pairing ticket is damaged") from None
    if type(top) is not list or len(top) != 4 or top[0] != TICKET_VERSION:
        raise PairingCodeError("this pairing ticket comes from another version of Percolab")
    _, data, peer, addrs = top
    if type(data) is not bytes or type(peer) is not bytes or type(addrs) is not list:
        raise PairingCodeError("the pairing ticket is damaged")
    if any(type(a) is not bytes for a in addrs):
        raise PairingCodeError("the pairing ticket is damaged")
    try:
        code = PairingCode(data.decode("ascii"))
        return Ticket(code, peer.decode("ascii"), tuple(a.decode("utf-8") for a in addrs))
    except UnicodeDecodeError:
        raise PairingCodeError("the pairing ticket is damaged") from None


def parse_pairing_input(text: str) -> tuple[PairingCode, Ticket | None]:
    """What the approver typed or pasted: a ticket or a bare code."""
    if isinstance(text, str) and text.strip().upper().startswith(TICKET_SCHEME):
        ticket = parse_ticket(text)
        return ticket.code, ticket
    return parse_code(text), None


# --- terminal QR -----------------------------------------------------------------------------


def qr_matrix(text: str) -> list[list[bool]]:
    """Modules of the QR code of ``text`` (True = dark), quiet zone included."""
    try:
        import segno
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise RuntimeError("terminal QR codes need the 'segno' package") from exc
    qr = segno.make_qr(text, error=QR_ERROR, boost_error=False)
    size = len(qr.matrix)
    empty = [False] * (size + 2 * QR_BORDER)
    rows = [list(empty) for _ in range(QR_BORDER)]
    for row in qr.matrix:
        rows.append([False] * QR_BORDER + [bool(m) for m in row] + [False] * QR_BORDER)
    rows.extend(list(empty) for _ in range(QR_BORDER))
    return rows


_HALF = {(False, False): " ", (True, False): "▀", (False, True): "▄", (True, True): "█"}


def render_qr(text: str, *, dark_terminal: bool = True) -> list[str]:
    """The QR of ``text`` as lines of half-block characters (two module rows per line).

    Ink is drawn where the terminal must be *light*: on a dark terminal (the default) the
    light modules and the quiet zone are drawn and the dark ones left as background."""
    matrix = qr_matrix(text)
    if len(matrix) % 2:
        matrix.append([False] * len(matrix[0]))
    lines = []
    for top, bottom in zip(matrix[0::2], matrix[1::2], strict=True):
        lines.append(
            "".join(
                _HALF[(t != dark_terminal, b != dark_terminal)]
                for t, b in zip(top, bottom, strict=True)
            )
        )
    return lines

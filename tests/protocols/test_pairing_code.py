"""Pairing codes, tickets and the terminal QR (protocols/pairing_code.py)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.pairing_code import (
    ALPHABET,
    CODE_CHARS,
    MAX_TICKET_ADDRS,
    PairingCode,
    PairingCodeError,
    Ticket,
    b32decode,
    b32encode,
    new_code,
    parse_code,
    parse_pairing_input,
    parse_ticket,
    qr_matrix,
    render_qr,
)

PEER = "12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo"
ADDRS = [f"/ip4/192.168.1.20/tcp/4001/p2p/{PEER}", "/ip6/::1/tcp/4001"]


def test_new_codes_parse_back_and_look_right() -> None:
    seen = set()
    for _ in range(200):
        code = new_code()
        shown = code.display()
        assert len(shown) == 11 and shown[5] == "-"
        assert all(c in ALPHABET for c in shown.replace("-", ""))
        assert parse_code(shown) == code
        assert 0 <= code.tag <= 1023
        seen.add(code.data)
    assert len(seen) == 200


def test_fixed_code() -> None:
    code = PairingCode("94FXY08WD")
    assert code.display() == "94FXY-08WD2"
    assert code.tag == 9 * 32 + 4
    assert code.password == b"94FXY08WD"


@pytest.mark.parametrize(
    "typed", ["94FXY-08WD2", "94fxy08wd2", " 94 FXY 08 WD 2 ", "94FXY-O8WD2", "94-fxy-o8wd-2"]
)
def test_parse_forgives_case_spaces_dashes_and_o(typed: str) -> None:
    assert parse_code(typed) == PairingCode("94FXY08WD")


def test_i_and_l_read_as_one() -> None:
    code = PairingCode("1K1QD1M9X")
    shown = code.display()
    assert parse_code(shown.replace("1", "I", 1).replace("1", "l", 1)) == code


def test_every_single_typo_is_caught() -> None:
    code = PairingCode("94FXY08WD").display().replace("-", "")
    for pos, char in itertools.product(range(CODE_CHARS), ALPHABET):
        if code[pos] == char:
            continue
        with pytest.raises(PairingCodeError, match="typo"):
            parse_code(code[:pos] + char + code[pos + 1 :])


def test_most_swaps_are_caught() -> None:
    caught = total = 0
    for _ in range(300):
        full = new_code().display().replace("-", "")
        for i in range(CODE_CHARS - 1):
            if full[i] == full[i + 1]:
                continue
            total += 1
            swapped = full[:i] + full[i + 1] + full[i] + full[i + 2 :]
            try:
                parse_code(swapped)
            except PairingCodeError:
                caught += 1
    assert caught / total > 0.9


@pytest.mark.parametrize(
    ("typed", "words"),
    [
        ("94FXY-08WD", "10 letters"),
        ("94FXY-08WD22", "10 letters"),
        ("", "10 letters"),
        ("94FXU-08WD2", "'U' does not occur"),
        ("94FX*-08WD2", "'*' does not occur"),
        ("94FXY-08WD3", "typo"),
    ],
)
def test_malformed_codes_have_one_line_errors(typed: str, words: str) -> None:
    with pytest.raises(PairingCodeError) as info:
        parse_code(typed)
    assert words in str(info.value)
    assert "\n" not in str(info.value)


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=40))
def test_parse_any_text_gives_a_code_or_a_clean_error(text: str) -> None:
    for parse in (parse_code, parse_ticket, parse_pairing_input):
        try:
            parse(text)
        except PairingCodeError as exc:
            assert "\n" not in str(exc)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_base32_round_trip(data: bytes) -> None:
    text = b32encode(data)
    assert b32decode(text) == data
    assert b32decode(text.lower()) == data


def test_base32_refuses_leftover_bits() -> None:
    with pytest.raises(PairingCodeError):
        b32decode("Z")  # 5 bits: no byte, and non-zero
    with pytest.raises(PairingCodeError):
        b32decode("01")  # 10 bits = 1 byte + 2 padding bits that must be zero


def test_ticket_round_trip() -> None:
    code = new_code()
    ticket = Ticket.create(code, PEER, ADDRS)
    assert ticket.addrs == ("/ip4/192.168.1.20/tcp/4001", "/ip6/::1/tcp/4001")
    assert ticket.dial_addrs()[0] == ADDRS[0]
    text = ticket.encode()
    assert text.startswith("PERCOLAB-PAIR:")
    assert text == text.upper()  # QR alphanumeric mode
    assert parse_ticket(text) == ticket
    assert parse_ticket("percolab-pair:" + text[14:].lower()) == ticket
    assert parse_pairing_input(f"  {text}\n") == (code, ticket)
    assert parse_pairing_input(code.display()) == (code, None)


def test_ticket_keeps_at_most_eight_addresses() -> None:
    many = [f"/ip4/10.0.0.{i}/tcp/4001" for i in range(20)]
    assert len(Ticket.create(new_code(), PEER, many).addrs) == MAX_TICKET_ADDRS


@pytest.mark.parametrize(
    "bad",
    [
        "PERCOLAB-PAIR:",
        "PERCOLAB-PAIR:ZZZZ",
        "PERCOLAB-PAIR:" + b32encode(b"\x94\x02\xc4\x00\xc4\x00\x90"),  # version 2
        "PERCOLAB-PAIR:" + b32encode(b"\x94\x01\xc4\x03abc\xc4\x01x\x90"),  # short code
        "PERCOLAB-PAIR:" + b32encode(b"\x94\x01\xc4\x0994FXY08WD\xc4\x010\x90"),  # '0' in id
        "PERCOLAB-PAIR:" + "0" * 2000,
        "percolab:nothing",
    ],
)
def test_damaged_tickets_are_refused(bad: str) -> None:
    with pytest.raises(PairingCodeError):
        parse_ticket(bad)


def test_ticket_fits_a_small_qr() -> None:
    ticket = Ticket.create(new_code(), PEER, ADDRS)
    lines = render_qr(ticket.encode())
    assert len(lines[0]) <= 61 and len(lines) <= 31  # version ≤ 9 with the quiet zone


@pytest.mark.parametrize("dark_terminal", [True, False])
def test_half_blocks_reproduce_the_matrix(dark_terminal: bool) -> None:
    text = Ticket.create(new_code(), PEER, ADDRS).encode()
    matrix = qr_matrix(text)
    lines = render_qr(text, dark_terminal=dark_terminal)
    assert len({len(line) for line in lines}) == 1
    assert len(lines) == (len(matrix) + 1) // 2
    top = {" ": False, "▀": True, "▄": False, "█": True}
    bottom = {" ": False, "▀": False, "▄": True, "█": True}
    for y, row in enumerate(matrix):
        table = top if y % 2 == 0 else bottom
        ink = [table[c] for c in lines[y // 2]]
        assert ink == [m != dark_terminal for m in row]
    # The quiet zone is light: ink on a dark terminal, blank on a light one.
    assert set(lines[0]) == ({"█"} if dark_terminal else {" "})

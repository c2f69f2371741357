"""`percolab device join` and `percolab device add CODE` in real terminals (tmux): two data
directories with running nodes connected to each other; B's pane shows the code (and its QR),
the test types it into A's command, then answers the numbers question on both panes. A wrong
code is refused on both sides, an "n" on one side refuses the pairing, and with two "y" B
becomes a device of A's member. Nothing is certified but in the last case."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from protocols.pairing_code import PairingCode, parse_code
from tests.e2e.tmux import Tmux
from tests.integration.nodes import PERCOLAB, NodeProc, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]
UI_TIMEOUT_S = 20.0
CODE = re.compile(r"Pairing code: ([0-9A-Z]{5}-[0-9A-Z]{5})")
SAS = re.compile(r"Do both screens show (\d{3} \d{3})\? \[y/N\]")


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[Tmux, NodeProc, NodeProc]]:
    a, b = NodeProc(tmp_path / "a", "ada"), NodeProc(tmp_path / "b", "b")
    a.init()
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "config.toml").write_text("[identity]\nunencrypted = true\n")
    term = Tmux()
    try:
        a.start()
        b.start()
        a.call("connect", addr=b.addr())
        yield term, a, b
    except BaseException:
        print(term.panes())
        raise
    finally:
        term.close()
        a.stop()
        b.stop()


def _start_pair(term: Tmux, a: NodeProc, b: NodeProc, tag: str, wrong: bool = False) -> str:
    term.start(f"b{tag}", [PERCOLAB, "--data-dir", str(b.data_dir), "device", "join",
                           "--name", "lab laptop"])  # fmt: skip
    pane = term.wait_for(f"b{tag}", lambda p: CODE.search(p) is not None, "the code",
                         UI_TIMEOUT_S)  # fmt: skip
    match = CODE.search(pane)
    assert match is not None
    code = match.group(1)
    assert "▀" in pane or "▄" in pane  # the QR
    if wrong:
        data = parse_code(code).data
        code = PairingCode(data[:-1] + ("1" if data[-1] != "1" else "2")).display()
    term.start(f"a{tag}", [PERCOLAB, "--data-dir", str(a.data_dir), "device", "add", code])
    return code


def _sas(term: Tmux, name: str) -> str:
    pane = term.wait_for(name, lambda p: SAS.search(p) is not None, "the numbers question",
                         UI_TIMEOUT_S)  # fmt: skip
    match = SAS.search(pane)
    assert match is not None
    return match.group(1)


def _answer(term: Tmux, name: str, text: str) -> None:
    term.type(name, text)
    term.keys(name, "Enter")


def _exit_line(term: Tmux, name: str, text: str) -> str:
    pane = term.wait_text(name, text, UI_TIMEOUT_S)
    wait_until(lambda: term.pane_dead(name), UI_TIMEOUT_S, f"{name} to exit")
    return pane


def _device_names(a: NodeProc) -> list[str]:
    return [d["name"] for d in a.call("device_list")]


def test_wrong_code_is_refused_on_both_terminals(pair: tuple[Tmux, NodeProc, NodeProc]) -> None:
    term, a, b = pair
    before = _device_names(a)
    _start_pair(term, a, b, "1", wrong=True)
    _exit_line(term, "a1", "pairing failed: wrong code")
    _exit_line(term, "b1", "pairing failed: wrong code")
    assert _device_names(a) == before
    assert b.call("whoami") is None


def test_numbers_refused_on_one_terminal(pair: tuple[Tmux, NodeProc, NodeProc]) -> None:
    term, a, b = pair
    before = _device_names(a)
    _start_pair(term, a, b, "2")
    assert _sas(term, "a2") == _sas(term, "b2")
    _answer(term, "b2", "y")
    term.wait_text("b2", "[y/N] y", UI_TIMEOUT_S)
    _answer(term, "a2", "n")
    _exit_line(term, "a2", "declared different on this device")
    _exit_line(term, "b2", "declared different on the other device")
    assert _device_names(a) == before
    assert b.call("whoami") is None


def test_pairing_succeeds_with_two_yes(pair: tuple[Tmux, NodeProc, NodeProc]) -> None:
    term, a, b = pair
    _start_pair(term, a, b, "3")
    assert _sas(term, "a3") == _sas(term, "b3")
    _answer(term, "a3", "y")
    _answer(term, "b3", "yes")
    _exit_line(term, "a3", "Paired: device 'lab laptop' is now certified")
    member = a.call("whoami")["member"]
    _exit_line(term, "b3", f"this machine is now a device of member {member}")
    assert "lab laptop" in _device_names(a)
    assert b.call("whoami")["member"] == member

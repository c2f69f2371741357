"""A lab without a chief on the command line (issue 24): the real `percolab` console script
against a real running node, with three members of one machine (seats, `--as`): a new lab is
members-only, a newcomer's post waits in the queue, vouches admit, a steward approves and hides
(for the lab, and this node on its own), proposals wait for a second steward, the log says
what each decision did, and an ambiguous lab name is refused with its candidates."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from node.cli.governance_cmds import fmt_log
from tests.http.helpers import RunningNode, start_node
from tests.node.test_cli import fails, js, out, run

PEER = "12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNode]:
    d = tmp_path_factory.mktemp("gov") / "ada"
    run("init", "--unencrypted-key", "--name", "Ada", data=d)
    for label, name in (("bob", "Bob"), ("carol", "Carol")):
        run("members", "add", label, "--name", name, "--unencrypted-key", data=d)
    running = start_node(d)
    try:
        yield running
    finally:
        running.stop()


def test_a_lab_without_a_chief(node: RunningNode) -> None:
    d = node.data_dir
    lab = out("lab", "create", "Fablab", data=d)
    members = out("lab", "members", "Fablab", data=d)
    assert "you are a steward" in members and "Ada" in members and "steward" in members
    assert "posts by non-members: queued" in out("lab", "rules", "Fablab", data=d)

    # A newcomer's post waits: shown to its author (marked), in the queue, not in lists.
    kiln = out("--as", "bob", "post", "--lab", "Fablab", "--title", "Bob's kiln", data=d)
    assert "[queued: waiting for the lab's approval]" in out("--as", "bob", "list", data=d)
    assert kiln[:12] not in out("list", "--lab", "Fablab", data=d)
    assert "[queued" in out("list", "--lab", "Fablab", "--show-hidden", data=d)
    queue = out("queue", "Fablab", "--limit", "1", data=d)
    assert "Bob's kiln" in queue and "showing 1 of 1 waiting posts" in queue
    assert "you are not a member" in fails("--as", "bob", "vouch", "Fablab", "Carol", data=d)
    out("approve", kiln, data=d)
    listed = out("list", "--lab", "Fablab", data=d)
    assert "Bob's kiln" in listed and "[queued" not in listed
    out("lab", "admit", "Fablab", "Bob", data=d)
    assert js("lab", "members", lab, data=d)["role"] == "steward"
    assert "only a steward" in fails("--as", "bob", "lab", "admit", "Fablab", "Carol", data=d)

    # Vouches: a member's waits for a second one (admit_vouches 2); a steward's admits.
    out("--as", "carol", "post", "--lab", "Fablab", "--title", "Carol's lamp", data=d)
    out("--as", "bob", "vouch", "Fablab", "Carol", data=d)
    assert "(1 of 2 vouches: Bob)" in out("lab", "members", "Fablab", data=d)
    out("vouch", "Fablab", "Carol", data=d)
    roles = {m["name"] for m in js("lab", "members", "Fablab", data=d)["members"]}
    assert {"Ada", "Bob", "Carol"} <= roles

    # Hidden by the lab (a steward's decision, with its reason), then shown again.
    out("hide", "--lab", kiln, "--reason", "off topic", data=d)
    assert "Bob's kiln" not in out("list", "--lab", "Fablab", data=d)
    assert "off topic]" in out("list", "--lab", "Fablab", "--show-hidden", data=d)
    out("unhide", "--lab", kiln, data=d)
    assert "Bob's kiln" in out("list", "--lab", "Fablab", data=d)

    # Hidden and muted on this node only: nothing is signed, `moderation` lists them.
    assert "hidden on this node" in out("hide", kiln, data=d)
    assert "Bob's kiln" not in out("list", data=d)
    assert "\nhidden on this node" in out("show", kiln, "--show-hidden", data=d)
    assert js("moderation", data=d)["hidden"] == [kiln]
    out("unhide", kiln, data=d)
    assert fails("hide", kiln, "--reason", "x", data=d, status=2)  # a reason needs --lab
    out("mute", "Bob", data=d)
    assert "Bob's kiln" not in out("list", data=d)
    assert "muted: Bob" in out("moderation", data=d)
    out("unmute", "Bob", data=d)
    out("block", PEER, data=d)
    assert js("moderation", data=d)["blocked"] == [PEER]
    out("unblock", PEER, data=d)
    assert "Bob's kiln" in out("list", data=d)

    # A proposal with two stewards waits for the second one's endorsement.
    out("lab", "admit", "Fablab", "Bob", "--steward", data=d)
    proposal = out("lab", "rules", "Fablab", "--posts", "shown", data=d)
    log = out("lab", "log", "Fablab", data=d)
    assert log.splitlines()[0].endswith("rules (posts shown): waiting for 1 more steward(s)")
    out("--as", "bob", "lab", "endorse", proposal, data=d)
    log = out("lab", "log", "Fablab", data=d)
    assert "rules (posts shown): applied" in log and "approve" in log
    assert "hide" in log and "“off topic”" in log
    entries = js("lab", "log", "Fablab", "--limit", "2", data=d)
    assert len(entries["entries"]) == 2 and entries["next"] is not None
    assert entries["entries"][0]["act"] == "endorse"

    # `lab create --open`: no rules decision; and now "Fablab" names two labs.
    other = out("lab", "create", "Fablab", "--open", data=d)
    assert js("lab", "rules", other, data=d)["posts"] == "shown"
    err = fails("lab", "members", "Fablab", data=d)
    assert "2 labs are named 'Fablab'" in err and lab[:12] in err and other[:12] in err
    assert f"Fablab ({other[:8]})" in out("lab", "list", data=d)


def test_log_effects_in_words() -> None:
    """Every effect of docs/governance.md in words (the node refuses to sign decisions that
    would have no authority, so "had no authority" comes from other nodes' decisions)."""
    ada = {"member": "aa" * 32, "name": "Ada", "fingerprint": "abcd-efgh-ijkl-mnop"}
    bob = {"member": "bb" * 32, "name": "Bob", "fingerprint": "qrst-uvwx-yzab-cdef"}

    def entry(i: int, act: str, effect: str, **kw: object) -> dict[str, object]:
        return {"id": f"{i:064x}", "ts": 0, "by": bob, "act": act, "effect": effect,
                "subject": None, "target": None, "role": None, "rules": None,
                "reason": None} | kw  # fmt: skip

    text = fmt_log({"entries": [
        entry(1, "admit", "no_authority", subject=ada, role="member"),
        entry(2, "remove", "pending", subject=ada, role="steward", reason="gone"),
        entry(3, "vouch", "pending", subject=ada),
        entry(4, "frobnicate", "unknown_act"),
        entry(5, "hide", "no_effect", target="cc" * 32),
    ], "next": None}, {f"{2:064x}": 2}).splitlines()  # fmt: skip
    assert text[0].endswith("admit Ada: had no authority")
    assert text[1].endswith("remove Ada as steward (“gone”): waiting for 2 more steward(s)")
    assert text[2].endswith("vouch for Ada: waiting for more vouches")
    assert text[3].endswith("not understood by this release")
    assert text[4].endswith("hide cccccccccccc: had no effect")
    assert fmt_log({"entries": [], "next": None}) == "no decisions yet"


def test_errors_are_one_line(tmp_path: Path) -> None:
    """Without a running node (the CLI opens the store): usage and lookup errors."""
    d = tmp_path / "solo"
    run("init", "--unencrypted-key", "--name", "Solo", data=d)
    fails("lab", "rules", "Nowhere", "--posts", "sometimes", data=d, status=2)
    assert "no lab named" in fails("lab", "members", "Nowhere", data=d)
    assert "no lab named" in fails("queue", "Nowhere", data=d)
    fails("lab", "log", "Nowhere", "--limit", "0", data=d, status=2)
    out("lab", "create", "Solo lab", data=d)
    assert "no decisions yet" not in out("lab", "log", "Solo lab", data=d)  # its rules
    assert out("queue", "Solo lab", data=d) == "nothing waiting"

"""`percolab edit`, `history`, `pledge`, `pledges`, `fork`, `post --licence` and what `show`
prints of a living project, through the real console script on a data directory (no node
running: the CLI opens the store itself)."""

from __future__ import annotations

from pathlib import Path

from tests.node.test_cli import fails, js, out, run


def test_edit_history_pledge_fork_show(tmp_path: Path) -> None:
    d = tmp_path / "ada"
    run("init", "--unencrypted-key", "--name", "Ada", data=d)
    run("lab", "create", "Fablab", data=d)
    pid = out("post", "--lab", "Fablab", "--title", "Kiln", "--body", "brick\nclay\nfan",
              "--need", "bricks", "--licence", "CC-BY-SA-4.0", data=d)  # fmt: skip
    rid = out("edit", pid[:12], "--stage", "prototype", "--body", "brick\nclay\nblower",
              "--note", "bigger fan", data=d)  # fmt: skip
    assert len(rid) == 64
    assert "nothing to change" in fails("edit", pid, "--stage", "prototype", data=d)
    text = out("history", pid, data=d)
    assert "stage: 'idea' -> 'prototype'" in text
    assert "-fan" in text and "+blower" in text  # the body as a unified diff
    assert "“bigger fan”" in text and "by Ada" in text
    h = js("history", pid, data=d)
    assert h["total"] == 1 and h["entries"][0]["id"] == rid
    pledge = out("pledge", pid, "--type", "build", "--need", "bricks", "--note", "50 of them",
                 data=d)  # fmt: skip
    assert "not a need" in fails("pledge", pid, "--type", "give", "--need", "steel", data=d)
    listed = out("pledges", pid, data=d)
    assert pledge[:12] in listed and "I can build it (need: bricks)" in listed
    assert "made, received" in out("pledges", "--member", "Ada", data=d)
    shown = out("show", pid, data=d)
    assert "licence: CC-BY-SA-4.0" in shown and "revised 1 time(s)" in shown
    assert "for 'bricks':" in shown and "I can build it" in shown
    run("lab", "create", "Makerspace", data=d)
    fork = out("fork", pid, "--lab", "Makerspace", "--how", "remix", "--note", "gas kiln",
               data=d)  # fmt: skip
    assert "derives from: Kiln in Fablab" in out("show", fork, data=d)
    assert "derived by: Kiln in Makerspace" in out("show", pid, data=d)
    assert js("show", fork, data=d)["project"]["derives"][0]["how"] == "remix"
    fails("pledges", data=d, status=2)  # neither a project, a lab nor a member: usage
    run("retract", rid, data=d)
    assert js("show", pid, data=d)["project"]["stage"] == "idea"

"""Pilot tests of "labs without a chief" in the TUI (issue 24 part 2): the members screen's
actions send the right decisions, the queue's approve / vouch, the decision log, hide (for
the lab or on this machine) and mute after a confirmation, the "show hidden" toggle and the
marks, lab names that clash, and who can post in a new lab.

Against an in-test fake node (tests/tui/governance_fake.py: FakeNode plus the governance
RPCs in their documented shapes); what is tested is the TUI. The newcomer's path (a post
waiting in the queue, vouched for, then listed) also runs against a real node.
"""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Input, OptionList, Select, Static

from tests.tui.governance_fake import ALICE, BOB, CAROL, DAN, ERIN, GovNode
from tests.tui.helpers import wait_for
from tests.tui.real_node import RealNode
from tests.tui.test_members_pilot import START_TIMEOUT_S, choose
from tui.app import PercolabApp
from tui.screens.devices import ConfirmScreen
from tui.screens.forms import LabForm
from tui.screens.lab_log import LabLogScreen
from tui.screens.lab_members import LabMembersScreen
from tui.screens.lab_queue import LabQueueScreen
from tui.screens.lab_rules import LabRulesScreen, RulesForm
from tui.screens.labs import LabsScreen
from tui.screens.moderate import ChoiceScreen, ReasonForm
from tui.screens.project import ProjectScreen
from tui.screens.projects import ProjectsScreen

pytestmark = pytest.mark.anyio

SIZE = (120, 40)


@pytest.fixture
async def node() -> AsyncIterator[GovNode]:
    with tempfile.TemporaryDirectory() as tmp:
        fake = GovNode(Path(tmp) / "node.sock")
        lab = fake.add_gov_lab("fablab", stewards=[ALICE, CAROL, DAN], members=[BOB])
        gov = fake.gov[lab]
        gov.newcomers[ERIN] = [BOB]
        gov.proposals.append({"id": "f" * 64, "act": "admit", "by": {"member": CAROL,
                              "name": "Carol", "fingerprint": "cccc-cccc-x"},
                              "subject": {"member": BOB, "name": "Bob", "fingerprint": "b"},
                              "rules": None, "backing": 1, "needed": 2})  # fmt: skip
        fake.add_project(lab, "Solar dryer")
        fake.add_project(lab, "Cheap watches", author=(ERIN, "Erin"))  # queued: a newcomer's
        hidden = fake.add_project(lab, "Off-topic rant")
        gov.hidden[hidden["id"]] = "off-topic"
        velo = fake.add_gov_lab("velo", stewards=[BOB], members=[])
        fake.add_project(velo, "My cargo bike", author=(ALICE, "Alice"))  # queued: mine
        for _ in range(7):
            fake.log_entry(lab, "vouch", BOB, "pending", subject=ERIN)
        fake.log_entry(lab, "suspend", DAN, "no_authority", subject=BOB, reason="spam")
        await fake.start()
        yield fake
        await fake.stop()


def lab_id(node: GovNode, name: str) -> str:
    return next(k for k, v in node.labs.items() if v["name"] == name)


async def open_lab(pilot: Any, app: PercolabApp, node: GovNode, name: str) -> ProjectsScreen:
    await wait_for(pilot, lambda: isinstance(app.screen, LabsScreen)
                   and app.screen.table.row_count == len(node.labs), "labs listed")
    labs = app.screen
    assert isinstance(labs, LabsScreen)
    labs.table.move_cursor(row=labs.table.get_row_index(lab_id(node, name)))
    await pilot.press("enter")
    await wait_for(pilot, lambda: isinstance(app.screen, ProjectsScreen), "projects page")
    screen = app.screen
    assert isinstance(screen, ProjectsScreen)
    await wait_for(pilot, lambda: screen.table.row_count > 0, "projects listed")
    return screen


def options(screen: Any, selector: str) -> dict[str | None, str]:
    listed = screen.query_one(selector, OptionList)
    return {listed.get_option_at_index(i).id: str(listed.get_option_at_index(i).prompt)
            for i in range(listed.option_count)}  # fmt: skip


async def highlight(pilot: Any, screen: Any, selector: str, option_id: str) -> None:
    listed = screen.query_one(selector, OptionList)
    listed.focus()
    listed.highlighted = listed.get_option_index(option_id)
    await pilot.pause()


async def answer_reason(pilot: Any, app: PercolabApp, reason: str) -> None:
    await wait_for(pilot, lambda: isinstance(app.screen, ReasonForm), "reason asked")
    await pilot.press(*reason, "enter")


def info(screen: Any, selector: str) -> str:
    return str(screen.query_one(selector, Static).render())


async def test_members_screen_actions(node: GovNode) -> None:
    app = PercolabApp(node.socket_path)
    lab = lab_id(node, "fablab")
    async with app.run_test(size=SIZE) as pilot:
        projects = await open_lab(pilot, app, node, "fablab")
        await pilot.press("M")
        await wait_for(pilot, lambda: isinstance(app.screen, LabMembersScreen)
                       and app.screen.rows, "members listed")  # fmt: skip
        screen = app.screen
        assert isinstance(screen, LabMembersScreen)
        shown = options(screen, "#lab-members")
        assert "Alice" in shown[f"steward:{ALICE}"] and "(you)" in shown[f"steward:{ALICE}"]
        assert "vouched for by Bob" in shown[f"newcomer:{ERIN}"]
        assert "make Bob a steward" in shown[f"proposal:{'f' * 64}"]
        assert "1 of 2 stewards" in shown[f"proposal:{'f' * 64}"]
        assert "you are a steward" in info(screen, "#lab-members-info")

        await highlight(pilot, screen, "#lab-members", f"newcomer:{ERIN}")
        await pilot.press("v")
        await wait_for(pilot, lambda: node.sent("vouch"), "vouch sent")
        assert node.sent("vouch") == [{"lab": lab, "member": ERIN}]
        await wait_for(pilot, lambda: f"newcomer:{ERIN}" not in screen.rows, "Erin admitted")

        await highlight(pilot, screen, "#lab-members", f"member:{BOB}")
        await pilot.press("s")  # suspend: asks a reason
        await answer_reason(pilot, app, "spam again")
        await wait_for(pilot, lambda: node.sent("suspend"), "suspend sent")
        assert node.sent("suspend") == [{"lab": lab, "member": BOB, "reason": "spam again"}]
        await wait_for(pilot, lambda: f"suspended:{BOB}" in screen.rows, "Bob suspended")
        await highlight(pilot, screen, "#lab-members", f"suspended:{BOB}")
        await pilot.press("u")
        await wait_for(pilot, lambda: node.sent("unsuspend"), "unsuspend sent")
        assert node.sent("unsuspend") == [{"lab": lab, "member": BOB}]

        await wait_for(pilot, lambda: f"member:{ERIN}" in screen.rows, "Erin a member")
        await highlight(pilot, screen, "#lab-members", f"member:{ERIN}")
        await pilot.press("x")  # remove, with an empty reason
        await wait_for(pilot, lambda: isinstance(app.screen, ReasonForm), "reason asked")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: node.sent("lab_remove"), "remove sent")
        assert node.sent("lab_remove") == [{"lab": lab, "member": ERIN}]

        await highlight(pilot, screen, "#lab-members", f"steward:{CAROL}")
        await pilot.press("x")  # a steward: a proposal with role steward
        await answer_reason(pilot, app, "")
        await wait_for(pilot, lambda: len(node.sent("lab_remove")) == 2, "steward removal")
        assert node.sent("lab_remove")[1] == {"lab": lab, "member": CAROL, "role": "steward"}

        await highlight(pilot, screen, "#lab-members", f"member:{BOB}")
        await pilot.press("S")  # propose Bob as a steward: confirmed first
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), "confirm")
        await pilot.click("#confirm-yes")
        await wait_for(pilot, lambda: node.sent("lab_admit"), "admit sent")
        assert node.sent("lab_admit") == [{"lab": lab, "member": BOB, "role": "steward"}]

        await highlight(pilot, screen, "#lab-members", f"proposal:{'f' * 64}")
        await pilot.press("e")
        await wait_for(pilot, lambda: node.sent("endorse"), "endorse sent")
        assert node.sent("endorse") == [{"id": "f" * 64}]
        await wait_for(pilot, lambda: "2 of 2" in options(screen, "#lab-members")[
            f"proposal:{'f' * 64}"], "backing grew")
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is projects, "back")


async def test_member_role_actions(node: GovNode) -> None:
    """A member (not a steward) vouches; the steward's keys do nothing and are not shown."""
    node.gov[lab_id(node, "fablab")].stewards.remove(ALICE)
    app = PercolabApp(node.socket_path)
    async with app.run_test(size=SIZE) as pilot:
        await open_lab(pilot, app, node, "fablab")
        await pilot.press("M")
        await wait_for(pilot, lambda: isinstance(app.screen, LabMembersScreen)
                       and app.screen.role == "member", "members listed")  # fmt: skip
        screen = app.screen
        await highlight(pilot, screen, "#lab-members", f"newcomer:{ERIN}")
        assert screen.check_action("admit", ()) is False
        assert screen.check_action("vouch", ()) is True
        await pilot.press("a", "s", "x")
        await pilot.press("v")
        await wait_for(pilot, lambda: node.sent("vouch"), "vouch sent")
        assert not node.sent("lab_admit") and not node.sent("suspend")
        assert "you are a member" in info(screen, "#lab-members-info")


async def test_queue_approve_vouch_hide(node: GovNode) -> None:
    app = PercolabApp(node.socket_path)
    lab = lab_id(node, "fablab")
    queued = next(p["id"] for p in node.projects.values() if p["title"] == "Cheap watches")
    async with app.run_test(size=SIZE) as pilot:
        projects = await open_lab(pilot, app, node, "fablab")
        await wait_for(pilot, lambda: "2 waiting" in info(projects, "#projects-info"),
                       "waiting count")  # one post, one newcomer
        assert "you: steward" in info(projects, "#projects-info")
        titles = {str(projects.table.get_row_at(i)[1]) for i in range(projects.table.row_count)}
        assert titles == {"Solar dryer"}  # nor the queued nor the hidden one
        await pilot.press("Q")
        await wait_for(pilot, lambda: isinstance(app.screen, LabQueueScreen)
                       and app.screen.objects, "queue listed")  # fmt: skip
        screen = app.screen
        assert isinstance(screen, LabQueueScreen)
        shown = options(screen, "#queue-list")
        assert "Cheap watches" in shown[queued] and "by Erin" in shown[queued]
        assert "vouched for by Bob" in shown[f"newcomer:{ERIN}"]
        await highlight(pilot, screen, "#queue-list", queued)
        await pilot.press("v")  # vouch for the author
        await wait_for(pilot, lambda: node.sent("vouch"), "vouch sent")
        assert node.sent("vouch") == [{"lab": lab, "member": ERIN}]
        node.gov[lab].members.remove(ERIN)  # as if the vouch was not enough yet
        node.gov[lab].newcomers[ERIN] = [BOB, ALICE]
        await pilot.press("f5")
        await wait_for(pilot, lambda: queued in screen.objects, "still waiting")
        await highlight(pilot, screen, "#queue-list", queued)
        await pilot.press("a")
        await wait_for(pilot, lambda: node.sent("approve"), "approve sent")
        assert node.sent("approve") == [{"id": queued}]
        await wait_for(pilot, lambda: not screen.objects, "approved: out of the queue")
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is projects and "Cheap watches" in {
            str(projects.table.get_row_at(i)[1]) for i in range(projects.table.row_count)},
            "approved post listed")  # fmt: skip


async def test_pushed_queued_post_counts_as_waiting(node: GovNode) -> None:
    """A newcomer's post pushed while the lab's page is open: not a "new" row (it is not
    listed), the waiting count grows."""
    app = PercolabApp(node.socket_path)
    lab = lab_id(node, "fablab")
    async with app.run_test(size=SIZE) as pilot:
        projects = await open_lab(pilot, app, node, "fablab")
        await wait_for(pilot, lambda: "2 waiting" in info(projects, "#projects-info"),
                       "waiting count")  # fmt: skip
        post = node.add_project(lab, "More watches", author=(ERIN, "Erin"))
        node.push(node.status(post, lab))
        await wait_for(pilot, lambda: "3 waiting" in info(projects, "#projects-info"),
                       "one more waiting")  # fmt: skip
        assert " new " not in info(projects, "#projects-info")  # no badge
        assert projects.table.row_count == 1


async def test_log_newest_first_paged(node: GovNode) -> None:
    app = PercolabApp(node.socket_path)
    async with app.run_test(size=SIZE) as pilot:
        await open_lab(pilot, app, node, "fablab")
        await pilot.press("L")
        await wait_for(pilot, lambda: isinstance(app.screen, LabLogScreen)
                       and app.screen.table.row_count > 0, "log listed")  # fmt: skip
        screen = app.screen
        assert isinstance(screen, LabLogScreen)
        screen.page_size = 5  # before the next page: the cursor is the node's
        first = [str(c) for c in screen.table.get_row_at(0)]
        assert first[1:] == ["Dan", "suspend Bob", "no effect: the signer had no authority",
                             "spam"]  # fmt: skip
        assert "pending (needs more backing)" in str(screen.table.get_row_at(1)[3])
        assert screen.table.row_count == 8  # one page of 50
        screen.cursors, screen.next_cursor = [None], None
        screen.reload()
        await wait_for(pilot, lambda: screen.table.row_count == 5, "a page of 5")
        await pilot.press("n")
        await wait_for(pilot, lambda: screen.table.row_count == 3, "older page")
        assert node.sent("lab_log")[-1]["cursor"] == "5"
        assert "page 2" in info(screen, "#log-info")
        await pilot.press("p")
        await wait_for(pilot, lambda: screen.table.row_count == 5, "newer page again")


async def test_rules_proposal(node: GovNode) -> None:
    app = PercolabApp(node.socket_path)
    lab = lab_id(node, "fablab")
    async with app.run_test(size=SIZE) as pilot:
        await open_lab(pilot, app, node, "fablab")
        await pilot.press("R")
        await wait_for(pilot, lambda: isinstance(app.screen, LabRulesScreen)
                       and app.screen.rules, "rules shown")  # fmt: skip
        screen = app.screen
        assert "members only" in info(screen, "#rules-text")
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, RulesForm), "rules form")
        form = app.screen
        form.query_one("#posts", Select).value = "shown"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: node.sent("lab_rules"), "rules sent")
        assert node.sent("lab_rules") == [{"lab": lab, "posts": "shown"}]  # what changed
        await wait_for(pilot, lambda: "anyone" in info(screen, "#rules-text"), "new rules")


async def test_hide_and_mute_confirm_first(node: GovNode) -> None:
    app = PercolabApp(node.socket_path)
    async with app.run_test(size=SIZE) as pilot:
        projects = await open_lab(pilot, app, node, "fablab")
        pid = projects.table.current_id  # Solar dryer, the one listed
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ProjectScreen)
                       and app.screen.loaded, "project open")  # fmt: skip
        project = app.screen
        assert isinstance(project, ProjectScreen)
        node.add_comment(project.project_id, "Buy my watches", author=(ERIN, "Erin"))
        project.query_one("#project-details").focus()  # the project, not a comment
        await pilot.press("x")  # a steward: for the lab, or on this machine
        await wait_for(pilot, lambda: isinstance(app.screen, ChoiceScreen), "choice")
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is project, "cancelled")
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, ChoiceScreen), "choice")
        await pilot.press("enter")  # the first: for the lab
        await answer_reason(pilot, app, "duplicate")
        await wait_for(pilot, lambda: node.sent("lab_hide"), "lab_hide sent")
        assert node.sent("lab_hide") == [{"id": project.project_id, "reason": "duplicate"}]
        assert pid == project.project_id
        await wait_for(pilot, lambda: "hidden by the lab: duplicate" in str(
            project.query_one("#project-moderation", Static).render()), "marked hidden")
        await wait_for(pilot, lambda: "Buy my watches" in str(
            options(project, "#comments")), "the new comment")  # fmt: skip
        project.thread.focus()
        await pilot.press("u")  # mute Erin: asks first; cancel sends nothing
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), "confirm")
        assert "Mute Erin?" in str(app.screen.query_one(".form-context", Static).render())
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is project, "cancelled")
        assert not node.sent("mute")
        await pilot.press("u")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), "confirm")
        await pilot.click("#confirm-yes")
        await wait_for(pilot, lambda: node.sent("mute"), "mute sent")
        assert node.sent("mute") == [{"member": ERIN}]


async def test_hide_on_this_machine_when_not_steward(node: GovNode) -> None:
    app = PercolabApp(node.socket_path)
    async with app.run_test(size=SIZE) as pilot:
        projects = await open_lab(pilot, app, node, "velo")  # Bob's: Alice's own post only
        assert str(projects.table.get_row_at(0)[1]) == (
            "⏳ My cargo bike  waiting for the lab's approval")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ProjectScreen)
                       and app.screen.loaded, "project open")  # fmt: skip
        project = app.screen
        assert isinstance(project, ProjectScreen)
        mark = str(project.query_one("#project-moderation", Static).render())
        assert "waiting for the lab's approval" in mark  # her own queued post
        project.query_one("#project-details").focus()
        await pilot.press("x")  # not a steward: this machine only, confirmed
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), "confirm")
        await pilot.click("#confirm-yes")
        await wait_for(pilot, lambda: node.sent("hide"), "hide sent")
        assert node.sent("hide") == [{"id": project.project_id}]
        assert not node.sent("lab_hide")


async def test_show_hidden_toggle(node: GovNode) -> None:
    app = PercolabApp(node.socket_path)
    async with app.run_test(size=SIZE) as pilot:
        projects = await open_lab(pilot, app, node, "fablab")
        assert all("show_hidden" not in p for p in node.sent("projects"))

        def titles() -> dict[str, str]:
            """title -> its cell as shown."""
            table = projects.table
            return {str(projects.table.projects[str(key.value)]["title"]):
                    str(table.get_row(key)[1]) for key in table.rows}  # fmt: skip

        await pilot.press("H")
        await wait_for(pilot, lambda: len(titles()) == 3, "hidden ones listed")
        assert node.sent("projects")[-1]["show_hidden"] is True
        assert titles()["Off-topic rant"] == "⊘ Off-topic rant  hidden by the lab: off-topic"
        assert titles()["Cheap watches"] == "⏳ Cheap watches"  # someone else's: the mark
        assert titles()["Solar dryer"] == "Solar dryer"
        hidden = next(k for k, v in projects.table.projects.items()
                      if v["title"] == "Off-topic rant")  # fmt: skip
        projects.table.move_cursor(row=projects.table.get_row_index(hidden))
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ProjectScreen)
                       and app.screen.loaded, "hidden project open")  # fmt: skip
        assert node.sent("project")[-1] == {"id": hidden, "show_hidden": True}
        mark = str(app.screen.query_one("#project-moderation", Static).render())
        assert "hidden by the lab: off-topic" in mark
        await pilot.press("escape")
        await pilot.press("H")
        await wait_for(pilot, lambda: len(titles()) == 1, "left out again")
        assert "show_hidden" not in node.sent("projects")[-1]


async def test_palette_lists_the_lab_screens_and_toggle(node: GovNode) -> None:
    app = PercolabApp(node.socket_path)
    async with app.run_test(size=SIZE) as pilot:
        await open_lab(pilot, app, node, "fablab")
        await pilot.press("ctrl+p")
        await wait_for(pilot, lambda: app.screen.query("CommandInput"), "palette open")
        await pilot.press(*"show/leave")
        await wait_for(pilot, lambda: app.screen.query_one("CommandList").option_count > 0,
                       "palette hit")  # fmt: skip
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.show_hidden, "toggled from the palette")
        await pilot.press("ctrl+p")
        await wait_for(pilot, lambda: app.screen.query("CommandInput"), "palette open")
        await pilot.press(*"lab log")
        await wait_for(pilot, lambda: app.screen.query_one("CommandList").option_count > 0,
                       "palette hit")  # fmt: skip
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, LabLogScreen), "log from palette")


async def test_name_clash_and_role_shown(node: GovNode) -> None:
    other = node.add_gov_lab("fablab", stewards=[BOB], members=[])  # the same name
    mine = lab_id(node, "fablab")
    node.clash |= {mine, other}
    app = PercolabApp(node.socket_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, LabsScreen)
                       and app.screen.table.row_count == len(node.labs), "labs listed")
        labs = app.screen
        assert isinstance(labs, LabsScreen)
        row = [str(c) for c in labs.table.get_row_at(labs.table.get_row_index(mine))]
        assert row[1] == f"fablab ({mine[:8]})"
        assert row[5] == "steward" and row[4] == "2 waiting"
        velo = [str(c) for c in labs.table.get_row_at(labs.table.get_row_index(
            lab_id(node, "velo")))]  # fmt: skip
        assert velo[1] == "velo" and velo[5] == "" and velo[4] == ""  # not a member
        labs.table.move_cursor(row=labs.table.get_row_index(mine))
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ProjectsScreen)
                       and app.screen.table.row_count > 0, "projects")  # fmt: skip
        assert app.screen.sub_title == f"fablab ({mine[:8]})"
        assert f"fablab ({mine[:8]})" in info(app.screen, "#projects-info")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ProjectScreen)
                       and app.screen.loaded, "project open")  # fmt: skip
        meta = str(app.screen.query_one("#project-meta", Static).render())
        assert f"in fablab ({mine[:8]})" in meta


@pytest.mark.parametrize(("choice", "posts"), [(None, "queued"), ("shown", "shown")])
async def test_lab_creation_who_can_post(node: GovNode, choice: str | None,
                                         posts: str) -> None:  # fmt: skip
    app = PercolabApp(node.socket_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, LabsScreen)
                       and app.screen.table.row_count > 0, "labs listed")  # fmt: skip
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, LabForm), "lab form")
        form = app.screen
        assert form.query_one("#posts", Select).value == "queued"  # members only by default
        form.query_one("#name", Input).value = "repair-cafe"
        if choice is not None:
            form.query_one("#posts", Select).value = choice
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: node.sent("lab_create"), "lab_create sent")
        assert node.sent("lab_create")[0]["posts"] == posts
        assert node.sent("lab_create")[0]["name"] == "repair-cafe"


async def test_real_newcomer_post_waits_then_vouched(tmp_path: Path) -> None:
    """Against a REAL node (a shared machine: Alice, the lab's steward, and Bob): Bob, a
    newcomer, posts in Alice's members-only lab; he sees his post "waiting for the lab's
    approval"; Alice sees it in the Queue screen, vouches for Bob there, and the post is
    listed in the lab."""
    real = RealNode(tmp_path / "data")
    real.cli("init", "--unencrypted-key", "--name", "Alice")
    real.cli("lab", "create", "fablab")  # members only: the default
    real.cli("members", "add", "bob", "--name", "Bob", "--unencrypted-key")
    post = real.cli("--as", "bob", "post", "--lab", "fablab", "--title", "Bob's bench")
    pid = str(post["id"] if isinstance(post, dict) else post)
    real.start()
    try:
        app = PercolabApp(real.socket_path)
        async with app.run_test(size=SIZE) as pilot:
            await choose(pilot, app, "bob")
            await wait_for(pilot, lambda: app.me is not None and app.me["name"] == "Bob",
                           "Bob in", START_TIMEOUT_S)  # fmt: skip
            await wait_for(pilot, lambda: isinstance(app.screen, LabsScreen)
                           and app.screen.table.row_count == 1, "labs as Bob")  # fmt: skip
            await pilot.press("enter")
            await wait_for(pilot, lambda: isinstance(app.screen, ProjectsScreen)
                           and pid in app.screen.table.projects, "his own post listed")
            projects = app.screen
            assert isinstance(projects, ProjectsScreen)
            assert str(projects.table.get_row_at(0)[1]) == (
                "⏳ Bob's bench  waiting for the lab's approval")
            await pilot.press("enter")
            await wait_for(pilot, lambda: isinstance(app.screen, ProjectScreen)
                           and app.screen.loaded, "his post open")  # fmt: skip
            assert "waiting for the lab's approval" in str(
                app.screen.query_one("#project-moderation", Static).render())

            await pilot.press("m")  # Alice's turn
            await choose(pilot, app, "main")
            await wait_for(pilot, lambda: app.me is not None and app.me["name"] == "Alice",
                           "Alice in")  # fmt: skip
            await wait_for(pilot, lambda: isinstance(app.screen, LabsScreen)
                           and app.screen.table.row_count == 1
                           and "waiting" in str(app.screen.table.get_row_at(0)[4]),
                           "the lab says something waits")  # fmt: skip
            assert str(app.screen.table.get_row_at(0)[5]) == "steward"
            await pilot.press("enter")
            await wait_for(pilot, lambda: isinstance(app.screen, ProjectsScreen)
                           and "waiting" in info(app.screen, "#projects-info"), "lab page")
            projects = app.screen
            assert isinstance(projects, ProjectsScreen)
            assert pid not in projects.table.projects  # queued: not listed for others
            await pilot.press("Q")
            await wait_for(pilot, lambda: isinstance(app.screen, LabQueueScreen)
                           and pid in app.screen.objects, "Bob's post in the queue")
            queue = app.screen
            assert "Bob's bench" in options(queue, "#queue-list")[pid]
            await highlight(pilot, queue, "#queue-list", pid)
            await pilot.press("v")  # a steward's vouch admits Bob at once
            await wait_for(pilot, lambda: not queue.objects, "the queue is empty")
            await pilot.press("escape")
            await wait_for(pilot, lambda: app.screen is projects
                           and pid in projects.table.projects, "Bob's post listed")
            assert not str(projects.table.get_row_at(0)[1]).startswith("⏳")
    finally:
        real.stop()

"""Living projects in the TUI, through Pilot against a REAL node (subprocess) seeded with the
real CLI: edit a project and see the change and the history diff, pledge on a need and see it
under the need (and withdraw it), fork into a followed lab and follow the lineage both ways,
a refused edit (`not_author`, a project of another member imported from its node) that
loses nothing, a post with a stage and a licence, the pledges made and received (palette),
and snapshots. Fast ones against tests/tui/fake_node.py: tests/tui/test_fake_living.py."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from textual.widgets import Input, Select, TextArea

from tests.tui.helpers import wait_for
from tests.tui.living_helpers import choose, open_project, palette, text_of
from tests.tui.real_node import RealNode, seeded_node
from tui.app import PercolabApp
from tui.screens.devices import ConfirmScreen
from tui.screens.edit import EditForm
from tui.screens.fork import ForkForm
from tui.screens.forms import ProjectForm
from tui.screens.history import HistoryScreen
from tui.screens.pledge import PledgeForm
from tui.screens.pledges import PledgesScreen
from tui.screens.project import ProjectScreen
from tui.screens.projects import ProjectsScreen
from tui.widgets.diff import DiffView
from tui.widgets.lineage import LineageList

pytestmark = pytest.mark.anyio

SIZE = (110, 40)
OTHER_LAB = "repair-cafe"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RealNode, dict[str, str]]]:
    """Alice's node (tests/tui/real_node.seeded_node) with a lab of her own to fork into, and
    Bob's project (signed on Bob's node, imported): Alice is not one of its authors."""
    base = tmp_path_factory.mktemp("living")
    bob = RealNode(base / "bob")
    bob.cli("init", "--unencrypted-key", "--name", "Bob")
    bob.cli("lab", "create", "kiln-club")
    out = bob.cli("post", "--lab", "kiln-club", "--title", "Wood-fired kiln", "--stage", "idea")
    bob_project = str(out["id"] if isinstance(out, dict) else out)
    bob.cli("export", str(base / "bob.export"))
    real, ids = seeded_node(base / "alice")
    real.cli("lab", "create", OTHER_LAB, "--description", "Fix things together")
    real.cli("import", str(base / "bob.export"))
    ids["bob"] = bob_project
    real.start()
    yield real, ids
    real.stop()


@pytest.mark.slow
async def test_real_edit_then_history_diff(node: tuple[RealNode, dict[str, str]]) -> None:
    real, ids = node
    app = PercolabApp(real.socket_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_project(pilot, app, ids["dryer"])
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, EditForm), "edit form")
        form = app.screen
        assert isinstance(form, EditForm)
        assert form.query_one("#title", Input).value == "Solar fruit dryer"  # prefilled
        assert form.query_one("#stage", Select).value == "prototype"
        assert "a welder" in form.query_one("#needs", Input).value
        await pilot.press("ctrl+s")  # nothing changed yet: said in the form, nothing sent
        await wait_for(pilot, lambda: "Nothing changed" in text_of(
            form.query_one("#form-error")), "nothing-changed error")

        title = form.query_one("#title", Input)
        title.focus()
        await pilot.press("end", *" v2", "enter")  # Enter: the next field, not a submit
        await wait_for(pilot, lambda: form.query_one("#summary", Input).has_focus, "next field")
        assert app.screen is form
        await choose(pilot, form.query_one("#stage", Select), "testing")
        licence = form.query_one("#licence", Input)
        licence.focus()
        await pilot.press(*"CERN-OHL-S", "right")  # the suggestion completes it
        await wait_for(pilot, lambda: licence.value == "CERN-OHL-S-2.0", "licence suggested")
        coauthors = form.query_one("#coauthors", Input)
        coauthors.focus()
        await pilot.press(*"Bob")  # by name: Bob's profile came with his project
        body = form.query_one("#body", TextArea)
        body.focus()
        await pilot.press("ctrl+end", "enter", *"- test it in August")
        form.query_one("#note", Input).focus()
        await pilot.press(*"second prototype works")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: app.screen is screen
                       and screen.project.get("title") == "Solar fruit dryer v2", "edited")
        facts = text_of(screen.query_one("#project-facts"))
        assert "testing" in facts and "CERN-OHL-S-2.0" in facts, facts
        meta = text_of(screen.query_one("#project-meta"))
        assert "revised" in meta and "Alice with Bob" in meta, meta
        assert "August" in str(screen.project.get("body"))

        await pilot.press("h")
        await wait_for(pilot, lambda: isinstance(app.screen, HistoryScreen)
                       and app.screen.loaded, "history")
        history = app.screen
        assert isinstance(history, HistoryScreen)
        assert history.table.row_count == 1
        entry = history.selected
        assert entry is not None and entry["effect"] == "applied"
        assert entry["note"] == "second prototype works"
        diff = text_of(history.query_one(DiffView))
        assert "prototype → testing" in diff, diff
        assert "Solar fruit dryer → Solar fruit dryer v2" in diff, diff
        assert "+- test it in August" in diff, diff  # a unified diff of the body
        assert "+ Bob" in diff, diff  # co-authors by name
        assert "applied" in diff
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is screen, "back to the project")


@pytest.mark.slow
async def test_real_pledge_on_a_need_then_withdraw(
    node: tuple[RealNode, dict[str, str]],
) -> None:  # fmt: skip
    real, ids = node
    app = PercolabApp(real.socket_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_project(pilot, app, ids["dryer"])
        needs = screen.needs_list
        assert "no pledge yet" in text_of(screen.query_one("#needs-heading"))
        await pilot.press("p")
        await wait_for(pilot, lambda: isinstance(app.screen, PledgeForm), "pledge form")
        form = app.screen
        assert isinstance(form, PledgeForm)
        assert form.query_one("#need", Select).is_blank()  # "no particular need"
        await choose(pilot, form.query_one("#type", Select), "build")
        await choose(pilot, form.query_one("#need", Select), "a welder")
        form.query_one("#note", Input).focus()
        await pilot.press(*"TIG welder free on Saturdays", "enter")  # Enter: to the button
        assert app.screen is form
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: app.screen is screen and any(
            p.get("type") == "build" for p in needs.pledges.values()), "pledge shown")
        assert needs.display
        pledge = next(p for p in needs.pledges.values() if p.get("type") == "build")
        assert needs.need_of[str(pledge["id"])] == "a welder"  # under the need it answers
        assert "1 pledge" in str(needs.get_option("need:1").prompt)
        shown = str(needs.get_option(str(pledge["id"])).prompt)
        assert "I can build it" in shown and "Saturdays" in shown, shown
        assert "1 pledge" in text_of(screen.query_one("#needs-heading"))

        # Enter on a need pledges on that one; esc on an untouched form just closes it.
        needs.focus()
        needs.highlighted = needs.get_option_index("need:0")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, PledgeForm), "pledge form again")
        assert app.screen.query_one("#need", Select).value == "plywood"
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is screen, "closed without asking")

        needs.focus()
        needs.highlighted = needs.get_option_index(str(pledge["id"]))
        await pilot.press("w")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), "confirm")
        await pilot.click("#confirm-yes")
        await wait_for(pilot, lambda: str(pledge["id"]) not in needs.pledges, "withdrawn")


@pytest.mark.slow
async def test_real_fork_into_a_followed_lab(node: tuple[RealNode, dict[str, str]]) -> None:
    real, ids = node
    app = PercolabApp(real.socket_path)
    async with app.run_test(size=SIZE) as pilot:
        origin = await open_project(pilot, app, ids["loom"])
        await pilot.press("f")
        await wait_for(pilot, lambda: isinstance(app.screen, ForkForm)
                       and app.screen.labs_loaded, "fork form with the labs")
        form = app.screen
        assert isinstance(form, ForkForm)
        lab_select = form.query_one("#lab", Select)
        labs = {str(label): value for label, value in lab_select._options}
        assert OTHER_LAB in labs and "velo-club" not in labs  # followed labs only
        await choose(pilot, lab_select, labs[OTHER_LAB])
        await choose(pilot, form.query_one("#how", Select), "built")
        form.query_one("#note", Input).focus()
        await pilot.press(*"with a wider frame")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, ProjectScreen)
                       and app.screen is not origin and app.screen.loaded, "the fork opened")
        fork = app.screen
        assert isinstance(fork, ProjectScreen)
        assert fork.project.get("lab_name") == OTHER_LAB
        assert fork.project.get("title") == "Open-source loom"
        lineage = fork.query_one(LineageList)
        await wait_for(pilot, lambda: lineage.count == 1, "the origin in the lineage")
        assert "wider frame" in str(lineage.get_option(ids["loom"]).prompt)
        lineage.focus()
        await pilot.press("enter")  # open the origin from the fork
        await wait_for(pilot, lambda: isinstance(app.screen, ProjectScreen)
                       and app.screen.project_id == ids["loom"] and app.screen.loaded,
                       "origin opened from the lineage")
        back = app.screen.query_one(LineageList)
        await wait_for(pilot, lambda: fork.project_id in {
            back.get_option_at_index(i).id for i in range(back.option_count)}, "descendant")


@pytest.mark.slow
async def test_real_not_author_keeps_the_form(node: tuple[RealNode, dict[str, str]]) -> None:
    real, ids = node
    app = PercolabApp(real.socket_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_project(pilot, app, ids["bob"])
        assert "Bob" in text_of(screen.query_one("#project-meta"))
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, EditForm), "edit form")
        form = app.screen
        assert isinstance(form, EditForm)
        assert "not listed as an author" in text_of(form.query_one(".form-context"))
        form.query_one("#summary", Input).focus()
        await pilot.press(*"A kiln for the whole street")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: "not one of them" in text_of(
            form.query_one("#form-error")), "not_author said in the form")
        assert app.screen is form  # nothing lost
        assert form.query_one("#summary", Input).value == "A kiln for the whole street"
        notes = [n.message for n in app._notifications]
        assert any("not one of them" in m for m in notes), notes
        await pilot.press("escape")  # something typed: asks first
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), "discard?")
        await pilot.press("escape")  # no: back to the form, still filled
        await wait_for(pilot, lambda: app.screen is form, "form kept")
        assert form.query_one("#summary", Input).value == "A kiln for the whole street"
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), "discard? again")
        await pilot.click("#confirm-yes")
        await wait_for(pilot, lambda: app.screen is screen, "discarded")
        result = await app.client.call("project", id=ids["bob"])
        assert result["project"]["summary"] == ""  # nothing was revised


@pytest.mark.slow
async def test_real_post_with_stage_and_licence(node: tuple[RealNode, dict[str, str]]) -> None:
    real, _ = node
    app = PercolabApp(real.socket_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.connected and app.me is not None, "connected")
        lab = next(x for x in await app.client.call("lab_list") if x["name"] == OTHER_LAB)
        projects = ProjectsScreen(lab=str(lab["id"]), title=OTHER_LAB)
        await app.push_screen(projects)
        await wait_for(pilot, lambda: app.screen is projects, "projects")
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, ProjectForm), "project form")
        form = app.screen
        await pilot.press(*"Bike trailer")
        await choose(pilot, form.query_one("#stage", Select), "design")  # never free text
        licence = form.query_one("#licence", Input)
        licence.focus()
        await pilot.press(*"CC BY")  # not SPDX: refused before anything is sent
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: "not an SPDX expression" in text_of(
            form.query_one("#form-error")), "licence syntax said")
        assert app.screen is form
        licence.value = ""
        await pilot.press(*"CC-BY-SA", "right", "ctrl+s")
        await wait_for(pilot, lambda: app.screen is projects and any(
            p["title"] == "Bike trailer" for p in projects.table.projects.values()), "posted")
        pid = next(k for k, p in projects.table.projects.items() if p["title"] == "Bike trailer")
        screen = await open_project(pilot, app, pid)
        facts = text_of(screen.query_one("#project-facts"))
        assert "Stage: design" in facts and "CC-BY-SA-4.0" in facts, facts


# -- snapshots (read-only data of their own; `--snapshot-update` and review the SVGs) ---------

SNAP_SIZE = (100, 48)
Snap = Callable[..., bool]


@pytest.fixture(scope="module")
def living(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RealNode, dict[str, str]]]:
    """The seeded node, its dryer revised, pledged on and forked, all through the CLI."""
    real, ids = seeded_node(tmp_path_factory.mktemp("living-snap") / "data")
    real.cli("lab", "create", OTHER_LAB)
    real.cli("edit", ids["dryer"], "--stage", "testing", "--licence", "CERN-OHL-S-2.0",
             "--body", "# Plan\n\n- build a box\n- paint it **black**\n- test it in August\n",
             "--note", "second prototype works")  # fmt: skip
    real.cli("pledge", ids["dryer"], "--type", "build", "--need", "a welder",
             "--note", "TIG welder free on Saturdays")  # fmt: skip
    real.cli("pledge", ids["dryer"], "--type", "use")
    real.cli("fork", ids["dryer"], "--lab", OTHER_LAB, "--how", "built",
             "--note", "with a bigger box")  # fmt: skip
    real.start()
    yield real, ids
    real.stop()


async def _project_shown(pilot: Any, project_id: str) -> ProjectScreen:
    app = pilot.app
    screen = await open_project(pilot, app, project_id)
    await wait_for(pilot, lambda: screen.query_one(LineageList).count == 1, "lineage")
    screen.query_one(LineageList).focus()  # scrolls the needs and the lineage into view
    await pilot.pause()
    return screen


@pytest.mark.slow
async def test_real_pledges_made_and_received(living: tuple[RealNode, dict[str, str]]) -> None:
    real, ids = living
    app = PercolabApp(real.socket_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.connected and app.me is not None, "connected")
        await palette(pilot, "your pledges")
        await wait_for(pilot, lambda: isinstance(app.screen, PledgesScreen)
                       and app.screen.loaded, "your pledges")
        mine = app.screen
        assert isinstance(mine, PledgesScreen)
        assert len(mine.pledges) == 2  # made by Alice, on Alice's project: both ways
        assert "2 made, 2 received" in text_of(mine.query_one("#pledges-info"))
        labels = {str(mine.table.get_row_at(r)[1]) for r in range(2)}
        assert labels == {"I can build it", "I'd use it"}
        await pilot.press("escape")
        # A lab's: from its projects page.
        labs = {x["name"]: x["id"] for x in await app.client.call("lab_list")}
        page = ProjectsScreen(lab=str(labs["fablab"]), title="fablab")
        await app.push_screen(page)
        await wait_for(pilot, lambda: app.screen is page, "fablab's projects")
        await palette(pilot, "pledges of this lab")
        await wait_for(pilot, lambda: isinstance(app.screen, PledgesScreen)
                       and app.screen.loaded, "the lab's pledges")
        lab_pledges = app.screen
        assert isinstance(lab_pledges, PledgesScreen) and len(lab_pledges.pledges) == 2
        assert all(p["received"] for p in lab_pledges.pledges.values())
        await pilot.press("enter")  # opens the project of the highlighted pledge
        await wait_for(pilot, lambda: isinstance(app.screen, ProjectScreen)
                       and app.screen.project_id == ids["dryer"] and app.screen.loaded,
                       "the pledged project")


@pytest.mark.slow
def test_real_snapshot_living_project(living: tuple[RealNode, dict[str, str]],
                                      snap_compare: Snap) -> None:  # fmt: skip
    real, ids = living

    async def run_before(pilot: Any) -> None:
        await _project_shown(pilot, ids["dryer"])

    app = PercolabApp(real.socket_path, redact_volatile=True)
    assert snap_compare(app, terminal_size=SNAP_SIZE, run_before=run_before)


@pytest.mark.slow
def test_real_snapshot_history(living: tuple[RealNode, dict[str, str]],
                               snap_compare: Snap) -> None:  # fmt: skip
    real, ids = living

    async def run_before(pilot: Any) -> None:
        await _project_shown(pilot, ids["dryer"])
        await pilot.press("h")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, HistoryScreen)
                       and pilot.app.screen.loaded, "history")

    app = PercolabApp(real.socket_path, redact_volatile=True)
    assert snap_compare(app, terminal_size=SNAP_SIZE, run_before=run_before)

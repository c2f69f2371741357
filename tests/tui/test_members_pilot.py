"""Pilot tests of a lab's shared machine in the TUI (issue 22 part 6, docs/rpc.md "A shared
machine"): the member picker, signing in with a passphrase, the seat token on every call,
switching member, a forgotten seat, unread markers and `mark_read`; someone who already uses
Percolab pairing this machine into a new seat.

They run against an in-test fake node (tests/tui/fake_node.py's server, extended with the
seat methods in exactly the shapes of docs/rpc.md): what is tested is the TUI. The same paths
against a real node: tests/tui/test_members_real_pilot.py.
"""

from __future__ import annotations

import secrets
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Button, Checkbox, Digits, Input, OptionList

from protocols.rpc import Push, encode
from tests.tui.fake_node import FakeError, FakeNode
from tests.tui.helpers import wait_for
from tui.app import PercolabApp
from tui.screens.devices import PairingScreen
from tui.screens.labs import LabsScreen
from tui.screens.members import AddMemberForm, MemberPickerScreen, slug
from tui.screens.project import ProjectScreen
from tui.screens.projects import ProjectsScreen
from tui.screens.unlock import WRONG_PASSPHRASE, UnlockScreen

pytestmark = pytest.mark.anyio

SIZE = (110, 36)
BOB_PASS = "bob's long passphrase"
KDF_TIMEOUT_S = 20.0  # Argon2id runs (~0.4 s each) on a busy machine
START_TIMEOUT_S = 30.0


class SeatsNode(FakeNode):
    """FakeNode with members' seats: `seats`, `seat_open`, `seat_close`, `seat_add`,
    `mark_read`, the `seat` param on every call, per-member whoami and unread."""

    def __init__(self, socket_path: Path) -> None:
        super().__init__(socket_path)
        self.members: dict[str, dict[str, Any]] = {}
        self.tokens: dict[str, str] = {}  # token -> label
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.unread: dict[str, set[str]] = {}  # label -> unread project ids
        self.lab_unread: dict[str, dict[str, int]] = {}  # label -> lab id -> count
        self.pairing: dict[str, Any] = {"state": "idle"}

    def add_member(self, label: str, name: str, passphrase: str | None = None) -> None:
        member = f"{len(self.members):02x}" * 32
        self.members[label] = {"label": label, "member": member, "name": name,
                               "fingerprint": f"{label[:4]:x<4}-efgh-ijkl-mnop",
                               "passphrase": passphrase}  # fmt: skip
        self.unread[label] = set()

    def seat_calls(self, method: str) -> list[dict[str, Any]]:
        return [p for m, p in self.calls if m == method]

    def push_pairing(self, state: dict[str, Any]) -> None:
        """The node's pairing moved on (docs/rpc.md `pairing` pushes)."""
        self.pairing = state
        for writer in list(self.subscribers):
            writer.write(encode(Push("pairing", state)))

    def handle(self, method: str, p: dict[str, Any], writer: Any) -> Any:
        self.calls.append((method, dict(p)))
        p = dict(p)
        token = p.pop("seat", None)
        if method == "seat_close":  # its own token (an unknown one: true as well)
            self.tokens.pop(str(token), None)
            return True
        label = "main"
        if token is not None:
            if token not in self.tokens:
                raise FakeError("no_seat", "this member is no longer signed in here; "
                                "choose again")  # fmt: skip
            label = self.tokens[token]
        if method == "seats":
            return [{"label": m["label"], "member": m["member"], "name": m["name"],
                     "fingerprint": m["fingerprint"], "encrypted": bool(m["passphrase"]),
                     "open": token is not None and self.tokens.get(token) == m["label"]}
                    for m in self.members.values()]  # fmt: skip
        if method == "seat_open":
            member = self.members.get(str(p.get("member", "")).casefold())
            if member is None:
                raise FakeError("unknown_member", f"members here: {', '.join(self.members)}")
            if member["passphrase"] and p.get("passphrase") != member["passphrase"]:
                raise FakeError("wrong_passphrase", "wrong passphrase")
            new = secrets.token_hex(16)
            self.tokens[new] = member["label"]
            return {"seat": new, "label": member["label"], "member": member["member"],
                    "name": member["name"]}  # fmt: skip
        if method == "seat_add":
            if p["label"] in self.members:
                raise FakeError("label_taken", f"{p['label']} is taken")
            self.add_member(p["label"], p["name"], p.get("passphrase"))
            return self._whoami(p["label"])
        if method == "device_join":  # into a new seat (`member`): its state, as the node's
            if p.get("member") in self.members:
                raise FakeError("label_taken", f"{p['member']} is taken")
            self.pairing = {"state": "waiting", "role": "join", "code": "7K3QD-M9X2A",
                            "ticket": "PERCOLAB-PAIR:x", "qr": ["▀▄"], "device": "lab pc",
                            "label": p.get("member")}  # fmt: skip
            return self.pairing
        if method == "pairing_confirm":
            self.pairing = {**self.pairing, "answered": p["accept"]}
            return self.pairing
        if method == "mark_read":
            self.unread[label].discard(self._resolve(p["id"], self.projects))
            return True
        if method == "whoami":
            return self._whoami(label)
        result = super().handle(method, p, writer)
        if method == "status":
            result["seats"] = len(self.members)
        elif method == "lab_list":
            result = [{**lab, "unread": self.lab_unread.get(label, {}).get(lab["id"], 0)}
                      if lab.get("followed") else lab for lab in result]  # fmt: skip
        elif method == "projects":
            result["items"] = [{**x, "unread": x["id"] in self.unread[label]}
                               for x in result["items"]]  # fmt: skip
        return result

    def _whoami(self, label: str) -> dict[str, Any]:
        m = self.members[label]
        return {"author": m["member"], "name": m["name"], "about": "",
                "fingerprint": m["fingerprint"]}  # fmt: skip


@pytest.fixture
async def node() -> AsyncIterator[SeatsNode]:
    with tempfile.TemporaryDirectory() as tmp:
        fake = SeatsNode(Path(tmp) / "node.sock")
        fake.add_member("main", "Alice")
        fake.add_member("bob", "Bob", BOB_PASS)
        lab = fake.add_lab("fablab", "A fab lab", "Lyon")
        fake.add_lab("bikes", followed=False)
        projects = [fake.add_project(lab, f"Project {i}")["id"] for i in range(3)]
        fake.unread["bob"] = {projects[0], projects[2]}
        fake.lab_unread["bob"] = {lab: 2}
        fake.lab_unread["main"] = {lab: 120}  # over the node's cap (it says 99)
        await fake.start()
        yield fake
        await fake.stop()


def picker(app: PercolabApp) -> MemberPickerScreen | None:
    screen = app.screen
    return screen if isinstance(screen, MemberPickerScreen) else None


async def choose(pilot: Any, app: PercolabApp, label: str) -> None:
    """Highlight ``label`` in the picker and choose it."""
    await wait_for(pilot, lambda: picker(app) is not None, "member picker")
    options = app.screen.query_one("#members", OptionList)
    await wait_for(pilot, lambda: options.has_focus, "picker focused")
    options.highlighted = options.get_option_index(label)
    await pilot.press("enter")


async def sign_in_bob(pilot: Any, app: PercolabApp) -> None:
    await choose(pilot, app, "bob")
    await wait_for(pilot, lambda: isinstance(app.screen, UnlockScreen), "passphrase asked")
    await pilot.press(*BOB_PASS, "enter")
    await wait_for(pilot, lambda: app.me is not None and app.me["name"] == "Bob", "Bob in")


def labs_row(app: PercolabApp, name: str) -> list[str]:
    screen = app.screen
    assert isinstance(screen, LabsScreen)
    for row in range(screen.table.row_count):
        cells = [str(c) for c in screen.table.get_row_at(row)]
        if cells[1] == name:
            return cells
    raise AssertionError(f"no lab {name}")


async def test_picker_passphrase_seat_on_every_call(node: SeatsNode) -> None:
    app = PercolabApp(node.socket_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: picker(app) is not None, "member picker")
        screen = picker(app)
        assert screen is not None
        options = screen.query_one("#members", OptionList)
        assert options.option_count == 3  # Alice, Bob, someone new
        assert "Alice" in str(options.get_option_at_index(0).prompt)
        assert "bob · bobx-efgh" in str(options.get_option_at_index(1).prompt)
        assert "Someone new" in str(options.get_option_at_index(2).prompt)
        assert app.me is None and app.client.seat is None
        await pilot.press("2")  # no other mode while nobody is signed in
        assert app.current_mode == "labs" and picker(app) is not None

        await choose(pilot, app, "bob")
        await wait_for(pilot, lambda: isinstance(app.screen, UnlockScreen), "passphrase asked")
        unlock = app.screen
        field = unlock.query_one("#passphrase", Input)
        assert field.password
        await pilot.press(*"not it", "enter")
        await wait_for(pilot, lambda: WRONG_PASSPHRASE in str(
            unlock.query_one("#unlock-error").render()), "wrong passphrase said")
        assert app.screen is unlock and field.value == "" and app.client.seat is None
        await pilot.press(*BOB_PASS, "enter")
        await wait_for(pilot, lambda: app.me is not None and app.me["name"] == "Bob", "Bob in")
        token = app.client.seat
        assert token is not None and node.tokens[token] == "bob"
        assert app.sub_title == "Bob"
        # The screens reload as Bob: his unread count, and the seat on each call.
        await wait_for(pilot, lambda: isinstance(app.screen, LabsScreen)
                       and "2 unread" in labs_row(app, "fablab")[4], "Bob's unread count")
        assert labs_row(app, "bikes")[4] == ""  # not followed: no count
        opened = len(node.calls)
        await pilot.press("f5")
        await wait_for(pilot, lambda: len(node.calls) > opened, "reload sent")
        assert all(p.get("seat") == token for _, p in node.calls[opened:])


async def test_switch_member_and_forgotten_seat(node: SeatsNode) -> None:
    app = PercolabApp(node.socket_path)
    async with app.run_test(size=SIZE) as pilot:
        await sign_in_bob(pilot, app)
        bob = app.client.seat
        assert bob is not None
        await wait_for(pilot, lambda: app.screen.active_bindings.get("m") is not None
                       and app.screen.active_bindings["m"].enabled, "m: switch member")
        await pilot.press("2")  # Bob looks at another mode before he leaves
        await wait_for(pilot, lambda: app.current_mode == "tags", "tags mode")
        bobs_tags = app.screen
        await pilot.press("m")
        await wait_for(pilot, lambda: picker(app) is not None, "picker again")
        assert node.seat_calls("seat_close")[-1]["seat"] == bob and bob not in node.tokens
        assert app.client.seat is None and app.sub_title == ""

        await choose(pilot, app, "main")  # unencrypted: no passphrase asked
        await wait_for(pilot, lambda: app.me is not None and app.me["name"] == "Alice",
                       "Alice in")  # fmt: skip
        alice = app.client.seat
        assert alice is not None and node.tokens[alice] == "main"
        await wait_for(pilot, lambda: isinstance(app.screen, LabsScreen)
                       and "99+ unread" in labs_row(app, "fablab")[4], "capped count")
        # No screen of Bob's is left for Alice: every mode starts again.
        assert app.current_mode == "labs"
        await pilot.press("2")
        await wait_for(pilot, lambda: app.current_mode == "tags", "tags mode again")
        assert app.screen is not bobs_tags
        await pilot.press("1")

        node.tokens.clear()  # as a node restart: every seat is gone
        await pilot.press("f5")
        await wait_for(pilot, lambda: picker(app) is not None, "picker after no_seat")
        assert app.client.seat is None and app.me is None
        await sign_in_bob(pilot, app)
        assert app.client.seat is not None and app.client.seat in node.tokens


async def test_switch_member_from_the_palette(node: SeatsNode) -> None:
    app = PercolabApp(node.socket_path)
    async with app.run_test(size=SIZE) as pilot:
        await sign_in_bob(pilot, app)
        await wait_for(pilot, lambda: app.seats, "seats known")
        await pilot.press("ctrl+p")
        await wait_for(pilot, lambda: app.screen.query("CommandInput"), "palette open")
        await pilot.press(*"switch member")
        await wait_for(pilot, lambda: app.screen.query_one("CommandList").option_count > 0,
                       "palette hit")  # fmt: skip
        await pilot.press("enter")
        await wait_for(pilot, lambda: picker(app) is not None, "picker from the palette")
        assert app.client.seat is None


async def test_unread_marked_and_mark_read_sent(node: SeatsNode) -> None:
    app = PercolabApp(node.socket_path)
    async with app.run_test(size=SIZE) as pilot:
        await sign_in_bob(pilot, app)
        token = app.client.seat
        await wait_for(pilot, lambda: isinstance(app.screen, LabsScreen)
                       and "2 unread" in labs_row(app, "fablab")[4], "Bob's unread count")
        labs = app.screen
        assert isinstance(labs, LabsScreen)
        labs.table.move_cursor(row=labs.table.get_row_index(
            next(k for k, v in labs.labs.items() if v["name"] == "fablab")))
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ProjectsScreen)
                       and app.screen.table.row_count == 3, "projects listed")
        projects = app.screen
        assert isinstance(projects, ProjectsScreen)

        def marks() -> dict[str, str]:
            table = projects.table
            return {str(table.get_row_at(i)[1]): str(table.get_row_at(i)[0])
                    for i in range(table.row_count)}  # fmt: skip

        assert marks() == {"Project 2": "●", "Project 1": "", "Project 0": "●"}
        assert "2 unread" in str(projects.query_one("#projects-info").render())
        await pilot.press("enter")  # the first row: Project 2, unread
        await wait_for(pilot, lambda: isinstance(app.screen, ProjectScreen)
                       and app.screen.loaded, "project open")
        opened = app.screen
        assert isinstance(opened, ProjectScreen)
        await wait_for(pilot, lambda: node.seat_calls("mark_read"), "mark_read sent")
        sent = node.seat_calls("mark_read")[0]
        assert sent == {"id": opened.project_id, "seat": token}
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is projects
                       and marks()["Project 2"] == "", "read now")  # fmt: skip
        assert marks()["Project 0"] == "●"


async def test_someone_new(node: SeatsNode) -> None:
    app = PercolabApp(node.socket_path)
    async with app.run_test(size=SIZE) as pilot:
        await choose(pilot, app, "+new")
        await wait_for(pilot, lambda: isinstance(app.screen, AddMemberForm), "add form")
        form = app.screen
        await pilot.press(*"Zoé Martin", "enter")  # the label: from the name
        await pilot.press("enter")
        await pilot.press(*"zoe pass", "enter")
        await pilot.press(*"zoe pas", "enter")
        await wait_for(pilot, lambda: "differ" in str(form.query_one("#form-error").render()),
                       "mismatch refused")  # fmt: skip
        assert not node.seat_calls("seat_add")
        second = form.query_one("#passphrase2", Input)
        second.value = ""
        second.focus()
        await pilot.press(*"zoe pass", "enter")
        await wait_for(pilot, lambda: app.me is not None and app.me["name"] == "Zoé Martin",
                       "Zoé in")  # fmt: skip
        assert node.seat_calls("seat_add") == [
            {"label": "zoe-martin", "name": "Zoé Martin", "passphrase": "zoe pass"}]
        assert node.tokens[str(app.client.seat)] == "zoe-martin"
        assert app.sub_title == "Zoé Martin"


async def test_someone_new_who_already_uses_percolab(node: SeatsNode) -> None:
    """"I already use Percolab": this machine pairs into a new seat (`device_join` with
    `member` and the new key's passphrase), then the member is signed in; a failed pairing
    leaves the form open."""
    app = PercolabApp(node.socket_path)
    async with app.run_test(size=SIZE) as pilot:
        await choose(pilot, app, "+new")
        await wait_for(pilot, lambda: isinstance(app.screen, AddMemberForm), "add form")
        form = app.screen
        await pilot.click("#existing")
        await wait_for(pilot, lambda: str(form.query_one("#submit", Button).label)
                       == "Pair this machine", "the pairing way")  # fmt: skip
        assert form.query_one("#existing", Checkbox).value
        form.query_one("#label", Input).value = "zoe"
        for field in ("#passphrase", "#passphrase2"):
            form.query_one(field, Input).value = "zoe pass"
        await pilot.click("#submit")

        async def pairing_shown() -> PairingScreen:
            await wait_for(pilot, lambda: isinstance(app.screen, PairingScreen)
                           and "7K3QD-M9X2A" in str(app.screen.query_one("#pair-code")
                                                    .render()), "the code shown")
            screen = app.screen
            assert isinstance(screen, PairingScreen)
            return screen

        pairing = await pairing_shown()
        assert "'zoe'" in str(pairing.query_one(".form-context").render())
        assert node.seat_calls("device_join") == [{"member": "zoe", "passphrase": "zoe pass"}]
        node.push_pairing({**node.pairing, "state": "failed", "reason": "wrong code"})
        await wait_for(pilot, lambda: "wrong code" in str(
            pairing.query_one("#pair-state").render()), "the failure")
        await pilot.click("#pair-close")
        await wait_for(pilot, lambda: app.screen is form and "Pairing failed: wrong code"
                       in str(form.query_one("#form-error").render()), "back in the form")
        assert not node.seat_calls("seat_open")

        await pilot.click("#submit")  # again: this time the numbers match
        pairing = await pairing_shown()
        node.push_pairing({**node.pairing, "state": "sas", "sas": "123 456", "answered": None})
        await wait_for(pilot, lambda: str(pairing.query_one("#pair-sas", Digits).value)
                       == "123 456", "the numbers")  # fmt: skip
        await pilot.click("#sas-yes")
        await wait_for(pilot, lambda: node.seat_calls("pairing_confirm"), "yes sent")
        assert node.seat_calls("pairing_confirm") == [{"accept": True}]
        node.add_member("zoe", "Zoé Martin", "zoe pass")  # what the node has once paired
        node.push_pairing({**node.pairing, "state": "done", "member": "02" * 32})
        await wait_for(pilot, lambda: app.me is not None and app.me["name"] == "Zoé Martin",
                       "Zoé in")  # fmt: skip
        assert node.seat_calls("seat_open") == [{"member": "zoe", "passphrase": "zoe pass"}]
        assert node.tokens[str(app.client.seat)] == "zoe"
        assert not node.seat_calls("seat_add")
        assert all("seat" not in p for p in node.seat_calls("device_join"))


async def test_one_member_machine_unchanged(node: SeatsNode) -> None:
    del node.members["bob"]
    app = PercolabApp(node.socket_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.me is not None and app.me["name"] == "Alice",
                       "the node's own member")  # fmt: skip
        assert picker(app) is None and app.client.seat is None
        await wait_for(pilot, lambda: isinstance(app.screen, LabsScreen)
                       and app.screen.table.row_count == 2, "labs listed")
        binding = app.screen.active_bindings.get("m")
        assert binding is None or not binding.enabled  # not in the footer
        assert not node.seat_calls("seat_open")
        assert all("seat" not in p for _, p in node.calls)


def test_slug() -> None:
    assert slug("Zoé Martin") == "zoe-martin"
    assert slug("  Bob!! ") == "bob"
    assert slug("---") == ""
    assert len(slug("x" * 50)) == 32

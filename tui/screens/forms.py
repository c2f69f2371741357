"""Modal forms that create something on the node: lab, project, comment/reply, tag, profile.

Each form collects fields, calls one RPC method in a worker and dismisses with the method's
result (usually the new object's id), or with ``None`` when cancelled. Errors from the node
(``invalid_object``, ``not_author`` …) are shown inside the form, which stays open with
everything typed, and in a notification. Escape on a form whose fields were changed asks before
discarding them. Forms with ``ENTER_SUBMITS = False`` (the living-project forms) take Enter in
a single-line field as "next field"; ctrl+s submits.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any, ClassVar

from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Button, Checkbox, Input, Label, Select, Static, TextArea
from textual.widgets._select import SelectOverlay

from tui.client import NodeUnavailable, RpcError
from tui.format import split_list
from tui.screens.base import rpc_client
from tui.screens.devices import ConfirmScreen
from tui.widgets.fields import licence_input, stage_select
from tui.widgets.vocab import licence_problem

log = logging.getLogger(__name__)


class FormScreen(ModalScreen[Any]):
    """A modal form; subclasses define ``TITLE_TEXT``, ``METHOD``, ``fields`` and ``params``."""

    BINDINGS = [
        Binding("ctrl+s", "submit", "Submit", id="form_submit"),
        Binding("escape", "cancel", "Cancel", id="form_cancel"),
    ]
    AUTO_FOCUS = "Input, TextArea"
    TITLE_TEXT = ""
    METHOD = ""
    SUBMIT_LABEL = "Submit"
    ENTER_SUBMITS = True  # False: Enter in a single-line field moves to the next one
    FIELDS = "Input, TextArea, Select, Checkbox"
    # Field id -> a line about it, shown at the bottom of the form while it has the focus.
    FIELD_HELP: ClassVar[dict[str, str]] = {}
    LIST_HELP = "↑/↓ then enter to choose, esc to close the list"

    def __init__(self, fixed: dict[str, Any] | None = None, context: str = "") -> None:
        super().__init__(classes="form-screen")
        self.fixed = dict(fixed or {})
        self.context = context
        self._initial: dict[str, Any] | None = None

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="form"):
            yield Label(self.TITLE_TEXT, classes="form-title")
            if self.context:
                yield Static(self.context, classes="form-context")
            yield from self.fields()
            if self.FIELD_HELP:
                yield Static("", classes="form-help", id="form-help")
            yield Static("", classes="form-error", id="form-error")
            with Horizontal(classes="form-buttons"):
                yield Button(self.SUBMIT_LABEL, variant="primary", id="submit")
                yield Button("Cancel", id="cancel")

    def fields(self) -> Iterable[Widget]:
        return ()

    def params(self) -> dict[str, Any]:
        """Field values -> RPC params; raise ValueError with a message for bad input."""
        return {}

    def value(self, widget_id: str) -> str:
        widget = self.query_one(f"#{widget_id}")
        if isinstance(widget, TextArea):
            return widget.text.strip()
        if isinstance(widget, Select):
            return "" if widget.is_blank() else str(widget.value)
        assert isinstance(widget, Input)
        return widget.value.strip()

    def field_values(self) -> dict[str, Any]:
        """Every field's raw value, by position and id (what "changed" compares)."""
        out: dict[str, Any] = {}
        for i, widget in enumerate(self.query(self.FIELDS)):
            if isinstance(widget, TextArea):
                value: Any = widget.text
            else:
                value = getattr(widget, "value", None)
            out[f"{i}:{widget.id}"] = value
        return out

    def on_mount(self) -> None:
        self.mark_pristine()

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        """The help line follows the focus (an open list of a Select has its own)."""
        if not self.FIELD_HELP:
            return
        text = ""
        for node in event.widget.ancestors_with_self:
            if isinstance(node, SelectOverlay):
                text = self.LIST_HELP
                break
            if node.id in self.FIELD_HELP:
                text = self.FIELD_HELP[node.id]
                break
        self.query_one("#form-help", Static).update(text)

    def mark_pristine(self, *only: str) -> None:
        """The fields as they are now (or only those with these ids) count as "nothing
        typed" (after prefilling them)."""
        now = self.field_values()
        if only and self._initial is not None:
            now = {**self._initial, **{k: v for k, v in now.items()
                                       if k.partition(":")[2] in only}}  # fmt: skip
        self._initial = now

    @property
    def changed(self) -> bool:
        return self._initial is not None and self.field_values() != self._initial

    def show_error(self, text: str) -> None:
        self.query_one("#form-error", Static).update(text)

    def node_error(self, exc: RpcError) -> str:
        """The text for an error answer of the node (a subclass may say more for a code)."""
        return f"{exc.code}: {exc.message}"

    @on(Button.Pressed, "#submit")
    def _pressed_submit(self) -> None:
        self.action_submit()

    @on(Button.Pressed, "#cancel")
    def _pressed_cancel(self) -> None:
        self.action_cancel()

    @on(Input.Submitted)
    def _input_submitted(self, event: Input.Submitted) -> None:
        self.input_submitted(event.input)

    def input_submitted(self, field: Input) -> None:
        """Enter in ``field``: submits the form, or (``ENTER_SUBMITS = False``) moves to the
        next field (the last one's next is the submit button). Override."""
        if self.ENTER_SUBMITS:
            self.action_submit()
        else:
            self.focus_next()

    def action_cancel(self) -> None:
        if not self.changed:
            self.dismiss(None)
            return

        def answered(discard: bool | None) -> None:
            if discard:
                self.dismiss(None)

        what = f"“{self.TITLE_TEXT}”" if self.TITLE_TEXT else "this form"
        self.app.push_screen(
            ConfirmScreen(f"Close {what} and discard what you typed?", "Discard"), answered
        )

    def action_submit(self) -> None:
        try:
            params = {**self.params(), **self.fixed}
        except ValueError as exc:
            self.show_error(str(exc))
            return
        self.show_error("")
        self.send(params)

    @work(exclusive=True, group="form")
    async def send(self, params: dict[str, Any]) -> None:
        try:
            result = await rpc_client(self).call(self.METHOD, **params)
        except RpcError as exc:
            text = self.node_error(exc)
            self.show_error(text)
            self.notify(text, title=f"{self.TITLE_TEXT or self.METHOD}: refused",
                        severity="error")  # fmt: skip
            return
        except NodeUnavailable as exc:
            self.show_error(f"Node unavailable: {exc}")
            self.notify("Nothing was sent; the form keeps what you typed.",
                        title="Node unavailable", severity="error")  # fmt: skip
            return
        log.info("%s done: %r", self.METHOD, result)
        self.dismiss(result)


def _required(value: str, what: str) -> str:
    if not value:
        raise ValueError(f"{what} is required")
    return value


# lab_create's `posts`: "queued" (members only, the default) or "shown" (anyone)
POSTS_CHOICES = [("Members only (others wait in the newcomers queue)", "queued"),
                 ("Anyone", "shown")]  # fmt: skip


class LabForm(FormScreen):
    TITLE_TEXT = "Create a lab"
    METHOD = "lab_create"
    SUBMIT_LABEL = "Create"
    ENTER_SUBMITS = False

    def fields(self) -> Iterable[Widget]:
        yield Input(placeholder="Name (e.g. fablab-lyon)", id="name")
        yield Input(placeholder="Description", id="description")
        yield Input(placeholder="Place (city, address…)", id="place")
        yield Label("Who can post?", classes="form-label")
        yield Select(POSTS_CHOICES, value="queued", allow_blank=False, id="posts")

    def params(self) -> dict[str, Any]:
        return {
            "name": _required(self.value("name"), "A name"),
            "description": self.value("description") or None,
            "place": self.value("place") or None,
            "posts": self.value("posts") or "queued",
        }


class ProjectForm(FormScreen):
    TITLE_TEXT = "Post a project"
    METHOD = "post"
    SUBMIT_LABEL = "Post"
    ENTER_SUBMITS = False

    def fields(self) -> Iterable[Widget]:
        yield Input(placeholder="Title", id="title")
        yield Input(placeholder="One-line summary", id="summary")
        yield stage_select("")
        yield Input(placeholder="Needs, comma-separated (welder, funding…)", id="needs")
        yield Input(placeholder="Tags, comma-separated", id="tags")
        yield licence_input("")
        yield Label("Body (Markdown) — ctrl+s to post")
        yield TextArea(id="body", language="markdown", classes="form-body")

    def params(self) -> dict[str, Any]:
        return {
            "title": _required(self.value("title"), "A title"),
            "summary": self.value("summary") or None,
            "stage": self.value("stage") or None,
            "needs": split_list(self.value("needs")) or None,
            "tags": split_list(self.value("tags")) or None,
            "licence": _licence(self.value("licence")) or None,
            "body": self.value("body") or None,
        }


def _licence(text: str) -> str:
    if problem := licence_problem(text):
        raise ValueError(problem)
    return text


class CommentForm(FormScreen):
    """A comment on ``target``, or a reply when ``fixed`` holds a ``parent``."""

    TITLE_TEXT = "Comment"
    METHOD = "comment"
    SUBMIT_LABEL = "Send"

    def __init__(self, fixed: dict[str, Any] | None = None, context: str = "") -> None:
        super().__init__(fixed, context)
        if self.fixed.get("parent"):
            self.TITLE_TEXT = "Reply"

    def fields(self) -> Iterable[Widget]:
        yield Label("ctrl+s to send, escape to cancel", classes="form-hint")
        yield TextArea(id="body", classes="form-body")

    def params(self) -> dict[str, Any]:
        return {"body": _required(self.value("body"), "Some text")}


class TagForm(FormScreen):
    TITLE_TEXT = "Tag"
    METHOD = "tag"
    SUBMIT_LABEL = "Tag"

    def fields(self) -> Iterable[Widget]:
        yield Input(placeholder="Labels, comma-separated (3d-printing, bikes…)", id="labels")

    def params(self) -> dict[str, Any]:
        labels = split_list(self.value("labels"))
        if not labels:
            raise ValueError("At least one label is required")
        return {"labels": labels}


class ProfileForm(FormScreen):
    """Edits the member's profile (``profile_set``); ``init`` on first run (onboarding)."""

    TITLE_TEXT = "Your profile"
    METHOD = "profile_set"
    SUBMIT_LABEL = "Save"
    ENTER_SUBMITS = False  # OnboardingForm has its own (the next empty field, then submit)

    def __init__(self, name: str = "", about: str = "", context: str = "") -> None:
        super().__init__(None, context)
        self._name, self._about = name, about

    def fields(self) -> Iterable[Widget]:
        yield Input(self._name, placeholder="Display name", id="name")
        yield Input(self._about, placeholder="About you (optional)", id="about")

    def params(self) -> dict[str, Any]:
        return {
            "name": _required(self.value("name"), "A display name"),
            "about": self.value("about") or None,
        }


class OnboardingForm(ProfileForm):
    """First run: the data directory has no identity yet; ``init`` creates one. With
    ``ask_passphrase`` (the node has no passphrase for a new key: `status` says `new_key:
    ask`), the member chooses one, typed twice, or ticks the unencrypted mode."""

    TITLE_TEXT = "Welcome to Percolab"
    METHOD = "init"
    SUBMIT_LABEL = "Create my identity"
    BINDINGS = [Binding("ctrl+s", "submit", "Submit", id="form_submit")]

    def __init__(self, context: str = "", *, ask_passphrase: bool = False) -> None:
        super().__init__(context=context)
        self.ask_passphrase = ask_passphrase

    def fields(self) -> Iterable[Widget]:
        yield from super().fields()
        if self.ask_passphrase:
            yield Label("A passphrase encrypts your signing key on this machine; the app asks "
                        "for it at each start.", classes="form-hint")  # fmt: skip
            yield Input(placeholder="Passphrase", password=True, id="passphrase")
            yield Input(placeholder="Repeat the passphrase", password=True, id="passphrase2")
            yield Checkbox("Keep this key unencrypted (shared lab machine)", id="unencrypted")
        yield Button("Or: make this machine a device of an existing member…", id="join-member")

    def params(self) -> dict[str, Any]:
        params = super().params()
        if not self.ask_passphrase:
            return params
        if self.query_one("#unencrypted", Checkbox).value:
            return {**params, "unencrypted": True}
        # As typed: spaces are part of a passphrase.
        first = self.query_one("#passphrase", Input).value
        if not first:
            raise ValueError("Choose a passphrase (or tick “keep this key unencrypted”)")
        if self.query_one("#passphrase2", Input).value != first:
            raise ValueError("The two passphrases differ; type them again")
        return {**params, "passphrase": first}

    def input_submitted(self, field: Input) -> None:
        """Enter moves to the next field still to fill (name, then the passphrase twice);
        in the last one, or when all are filled, it submits."""
        if self.ask_passphrase and not self.query_one("#unencrypted", Checkbox).value:
            order = [self.query_one(f"#{i}", Input) for i in ("name", "passphrase", "passphrase2")]
            empty = [f for f in order if not f.value]
            if empty and empty[0] is not field:
                empty[0].focus()
                return
        self.action_submit()

    @on(Checkbox.Changed, "#unencrypted")
    def _unencrypted_changed(self, event: Checkbox.Changed) -> None:
        for field in self.query("#passphrase, #passphrase2").results(Input):
            field.disabled = event.value
            if event.value:
                field.value = ""

    def action_cancel(self) -> None:
        self.show_error("Choose a display name first (ctrl+q quits).")

    @on(Button.Pressed, "#join-member")
    def _join_member(self) -> None:
        self.dismiss("join")  # the app opens the pairing (tui/screens/devices.py)

"""Modal forms that create something on the node: lab, project, comment/reply, tag, profile.

Each form collects fields, calls one RPC method in a worker and dismisses with the method's
result (usually the new object's id), or with ``None`` when cancelled. Errors from the node
(``invalid_object`` …) are shown inside the form, which stays open.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Button, Input, Label, Static, TextArea

from tui.client import NodeUnavailable, RpcError
from tui.format import split_list
from tui.screens.base import rpc_client

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

    def __init__(self, fixed: dict[str, Any] | None = None, context: str = "") -> None:
        super().__init__(classes="form-screen")
        self.fixed = dict(fixed or {})
        self.context = context

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="form"):
            yield Label(self.TITLE_TEXT, classes="form-title")
            if self.context:
                yield Static(self.context, classes="form-context")
            yield from self.fields()
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
        assert isinstance(widget, Input)
        return widget.value.strip()

    def show_error(self, text: str) -> None:
        self.query_one("#form-error", Static).update(text)

    @on(Button.Pressed, "#submit")
    def _pressed_submit(self) -> None:
        self.action_submit()

    @on(Button.Pressed, "#cancel")
    def _pressed_cancel(self) -> None:
        self.action_cancel()

    @on(Input.Submitted)
    def _input_submitted(self) -> None:
        self.action_submit()

    def action_cancel(self) -> None:
        self.dismiss(None)

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
            self.show_error(f"{exc.code}: {exc.message}")
            return
        except NodeUnavailable as exc:
            self.show_error(f"Node unavailable: {exc}")
            return
        log.info("%s done: %r", self.METHOD, result)
        self.dismiss(result)


def _required(value: str, what: str) -> str:
    if not value:
        raise ValueError(f"{what} is required")
    return value


class LabForm(FormScreen):
    TITLE_TEXT = "Create a lab"
    METHOD = "lab_create"
    SUBMIT_LABEL = "Create"

    def fields(self) -> Iterable[Widget]:
        yield Input(placeholder="Name (e.g. fablab-lyon)", id="name")
        yield Input(placeholder="Description", id="description")
        yield Input(placeholder="Place (city, address…)", id="place")

    def params(self) -> dict[str, Any]:
        return {
            "name": _required(self.value("name"), "A name"),
            "description": self.value("description") or None,
            "place": self.value("place") or None,
        }


class ProjectForm(FormScreen):
    TITLE_TEXT = "Post a project"
    METHOD = "post"
    SUBMIT_LABEL = "Post"

    def fields(self) -> Iterable[Widget]:
        yield Input(placeholder="Title", id="title")
        yield Input(placeholder="One-line summary", id="summary")
        yield Input(placeholder="Stage (idea, prototype, running…)", id="stage")
        yield Input(placeholder="Needs, comma-separated (welder, funding…)", id="needs")
        yield Input(placeholder="Tags, comma-separated", id="tags")
        yield Label("Body (Markdown) — ctrl+s to post")
        yield TextArea(id="body", language="markdown", classes="form-body")

    def params(self) -> dict[str, Any]:
        return {
            "title": _required(self.value("title"), "A title"),
            "summary": self.value("summary") or None,
            "stage": self.value("stage") or None,
            "needs": split_list(self.value("needs")) or None,
            "tags": split_list(self.value("tags")) or None,
            "body": self.value("body") or None,
        }


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
    """First run: the data directory has no identity yet; ``init`` creates one."""

    TITLE_TEXT = "Welcome to Percolab"
    METHOD = "init"
    SUBMIT_LABEL = "Create my identity"
    BINDINGS = [Binding("ctrl+s", "submit", "Submit", id="form_submit")]

    def action_cancel(self) -> None:
        self.show_error("Choose a display name first (ctrl+q quits).")

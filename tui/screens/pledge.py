"""Pledge on a project (`pledge`, docs/rpc.md): what one offers ("I can build it"…), the need
it answers (one of the project's needs, or none) and a short note. Anyone may pledge; a pledge
is withdrawn with `retract` (the project screen's `w`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, ClassVar

from textual.widget import Widget
from textual.widgets import Input, Label, Select

from protocols.limits import MAX_PLEDGE_NOTE_CHARS
from tui.screens.forms import FormScreen
from tui.widgets.vocab import pledge_types


class PledgeForm(FormScreen):
    """A pledge on ``project_id``; ``need`` preselects one of ``needs``. Dismisses with the
    pledge id."""

    TITLE_TEXT = "Pledge"
    METHOD = "pledge"
    SUBMIT_LABEL = "Pledge"
    ENTER_SUBMITS = False
    AUTO_FOCUS = "#type"
    FIELD_HELP: ClassVar[dict[str, str]] = {
        "type": "What you offer: enter opens the list · ctrl+s: pledge",
        "need": "The need it answers: enter opens the list (or leave it: no particular need)",
        "note": "Note: a few words for the authors · ctrl+s: pledge",
    }

    def __init__(self, project_id: str, needs: Sequence[str], *, title: str = "",
                 need: str | None = None) -> None:  # fmt: skip
        super().__init__({"id": project_id}, context=(
            f"on {title}. Enter opens a list or moves on; ctrl+s pledges."))
        self.needs = list(needs)
        self.need = need if need in self.needs else None

    def fields(self) -> Iterable[Widget]:
        yield Label("What you offer", classes="form-label")
        yield Select(pledge_types(), allow_blank=False, id="type")
        yield Label("The need it answers", classes="form-label")
        yield Select([(n, n) for n in self.needs], prompt="No particular need",
                     value=self.need if self.need is not None else Select.NULL,
                     allow_blank=True, id="need", disabled=not self.needs)  # fmt: skip
        yield Label("Note (optional)", classes="form-label")
        yield Input(placeholder="e.g. I have a TIG welder free on Saturdays", id="note",
                    max_length=MAX_PLEDGE_NOTE_CHARS)  # fmt: skip

    def params(self) -> dict[str, Any]:
        return {
            "type": self.value("type"),
            "need": self.value("need") or None,
            "note": self.value("note") or None,
        }


"""Form fields shared by the forms (tui/screens/forms.py, edit.py, fork.py): the stage, the
licence, and a field prefilled with a current value."""

from __future__ import annotations

from typing import Any

from textual.suggester import SuggestFromList
from textual.widgets import Input, Select

from protocols.kinds import STAGES
from tui.widgets.vocab import LICENCE_HINT, licence_suggestions


def stage_select(current: str) -> Select[str]:
    """The stage of a project: one of protocols.kinds.STAGES (never free text); a current
    value this release does not know is kept as an option of its own."""
    stages = list(STAGES) if current in STAGES or not current else [*STAGES, current]
    return Select([(s, s) for s in stages], value=current or STAGES[0], allow_blank=False,
                  prompt="Stage", id="stage")  # fmt: skip


def prefilled(value: str, *, placeholder: str, id: str, **options: Any) -> Input:
    """A field showing a current value to edit: focusing it keeps the text (the cursor at
    its end) instead of selecting it all, so that one key cannot replace a whole title."""
    return Input(value, placeholder=placeholder, id=id, select_on_focus=False, **options)


def licence_input(current: str) -> Input:
    """A licence: an SPDX expression or "all rights reserved"; common ids are suggested
    as one types (right arrow accepts)."""
    return prefilled(current, placeholder=LICENCE_HINT, id="licence",
                     suggester=SuggestFromList(licence_suggestions(), case_sensitive=False))

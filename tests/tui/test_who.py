"""How the TUI names an object's author from its attribution (docs/identity.md)."""

from __future__ import annotations

from tui.format import who

KEY = "ab" * 32


def test_a_member_is_shown_by_name() -> None:
    assert who({"author_name": "Ada", "attribution": "member", "author": KEY}) == "Ada"
    assert who({"author_name": "Ada", "author": KEY}) == "Ada"  # a node before devices


def test_objects_that_speak_for_no_member_are_marked() -> None:
    assert who({"author_name": "", "attribution": "unattributed", "author": KEY}) == (
        "unattributed key abababab"
    )
    # Even with a name in the view, an unattributed object never borrows it.
    assert who({"author_name": "Ada", "attribution": "unattributed", "author": KEY}).startswith(
        "unattributed"
    )


def test_disputed_and_pending_are_said() -> None:
    assert who({"author_name": "Ada", "attribution": "disputed"}) == "Ada ⚠ disputed identity"
    assert who({"author_name": "", "attribution": "pending"}) == "? (certificate pending)"

"""Licences, pledge types and derive relations as the app shows them. The lists and labels
are protocols/licences.py's and protocols/living.py's; this adds only what a form needs."""

from __future__ import annotations

from protocols.licences import ALL_RIGHTS_RESERVED, licence_label, licence_syntax_error
from protocols.licences import licence_suggestions as _suggestions
from protocols.living import DERIVE_HOWS, PLEDGE_TYPES, derive_label, pledge_label

__all__ = [
    "ALL_RIGHTS_RESERVED", "DERIVE_HOWS", "LICENCE_HINT", "derive_label", "licence_label",
    "licence_problem", "licence_suggestions", "pledge_label", "pledge_types",
]  # fmt: skip

LICENCE_HINT = "SPDX id (CC-BY-SA-4.0, CERN-OHL-S-2.0…) or “all rights reserved”"


def licence_suggestions() -> list[str]:
    """What the licence field suggests as one types: common SPDX ids, then "all rights
    reserved" (Textual's suggester matches the prefix itself)."""
    return _suggestions()


def licence_problem(text: str) -> str:
    """Why ``text`` cannot be a licence statement ("" if it can), said before sending."""
    problem = licence_syntax_error(text)
    if not problem:
        return ""
    return (f"The licence {text!r} is not an SPDX expression ({problem}); use an id such as "
            f"CC-BY-SA-4.0, or “{ALL_RIGHTS_RESERVED}”")  # fmt: skip


def pledge_types() -> list[tuple[str, str]]:
    """(label, type) of the pledge types this release knows, for a Select."""
    return [(label, kind) for kind, label in PLEDGE_TYPES.items()]

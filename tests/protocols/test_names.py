"""protocols/names.py: the skeleton of confusable names."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.names import CONFUSABLES, UPPERCASE_CONFUSABLES, confusable, skeleton


@pytest.mark.parametrize(
    "a, b",
    [
        ("Fablab Nord", "fablab nord"),  # case
        ("Fablab Nord", "FABLAB   NORD "),  # case, spaces
        ("Fablab Nord", "F\u0430blab Nord"),  # Cyrillic а
        ("Fablab Nord", "Fab\u0406ab Nord"),  # Cyrillic І for l
        ("Fablab Nord", "FabIab Nord"),  # capital I for l
        ("Fablab Nord", "Fab1ab N0rd"),  # digits for letters
        ("Fablab Nord", "Fablab N\u00f6rd"),  # a mark
        ("Fablab Nord", "Fablab No\u0308rd"),  # a combining mark
        ("Fablab Nord", "Fab\u200dlab Nord"),  # a zero width joiner
        ("Fablab Nord", "\uff26\uff41\uff42\uff4c\uff41\uff42 Nord"),  # full-width
        ("Modern", "Mod\u0435rn"),  # Cyrillic е
        ("Atelier m", "Atelier rn"),  # rn reads as m
        ("Web lab", "Vveb lab"),  # vv reads as w
        ("ΒΗΜ lab", "BHM lab"),  # Greek capitals
        ("Hello", "\u041d\u0435llo"),  # Cyrillic Н, е
        ("nice", "\u03b7ice"),  # Greek η looks like n
        ("Lab-Nord", "Lab\u2013Nord"),  # en dash
        ("ﬁlm club", "film club"),  # a ligature
    ],
)
def test_confusable_names_share_a_skeleton(a: str, b: str) -> None:
    assert skeleton(a) == skeleton(b)
    assert confusable(a, b)


@pytest.mark.parametrize(
    "a, b",
    [
        ("Fablab Nord", "Fablab Sud"),
        ("Fablab Nord", "Fablab Nord 2"),
        ("Lab-Nord", "Lab Nord"),  # a dash is not a space
        ("mail", "mall"),  # lowercase i and l differ
        ("Atelier", "Ateliers"),
        ("\u6f22\u5b57\u30e9\u30dc", "\u6f22\u5b57\u30e9\u30dc\u30c3"),  # other scripts kept
    ],
)
def test_distinct_names_differ(a: str, b: str) -> None:
    assert skeleton(a) != skeleton(b)


def test_tables_map_to_fixed_points() -> None:
    """Every table value is left alone by the tables: one pass is enough."""
    for value in [*CONFUSABLES.values(), *UPPERCASE_CONFUSABLES.values()]:
        assert skeleton(value) == value.casefold() or value == "3"
        assert value not in CONFUSABLES or CONFUSABLES[value] == value


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=40))
def test_skeleton_is_idempotent(name: str) -> None:
    once = skeleton(name)
    assert skeleton(once) == once


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from("aAbBiIlL01oOrnmvw -\u0430\u0435\u043e\u03bf"),
               max_size=20))  # fmt: skip
def test_skeleton_is_idempotent_on_lookalikes(name: str) -> None:
    once = skeleton(name)
    assert skeleton(once) == once

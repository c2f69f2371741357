"""The living-projects corpus (docs/conformance/living.json) against this implementation: each
object case reaches its verdict; each scenario's objects, decoded from their bytes and delivered
in several orders (querying in between), give the state and history the file states; the file
is what its generator makes."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from protocols import errors, kinds, objects
from protocols.project_history import EFFECTS
from tests.conformance import living_cases

CORPUS: dict[str, Any] = json.loads(living_cases.OUT.read_text(encoding="ascii"))
CASES: list[dict[str, Any]] = CORPUS["objects"]
SCENARIOS: list[dict[str, Any]] = CORPUS["scenarios"]


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_object_case(case: dict[str, Any]) -> None:
    obj = objects.decode(bytes.fromhex(case["hex"]))
    assert objects.verify(obj)
    try:
        kinds.validate(obj, CORPUS["now_ms"])
    except errors.ObjectError as exc:
        got = (exc.layer.value, exc.code)
    else:
        got = ("visible", None)
    assert got == (case["verdict"], case.get("code"))


def _orders(objs: list[objects.SignedObject]) -> list[list[objects.SignedObject]]:
    rng = random.Random(23)
    out = [objs, objs[::-1]]
    for _ in range(4):
        shuffled = list(objs)
        rng.shuffle(shuffled)
        out.append(shuffled)
    return out


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s["name"] for s in SCENARIOS])
def test_scenario(scenario: dict[str, Any]) -> None:
    objs = [objects.decode(bytes.fromhex(o["hex"])) for o in scenario["objects"]]
    assert all(objects.verify(o) for o in objs)
    for obj in objs:
        kinds.validate(obj, CORPUS["now_ms"])  # every object of a scenario is visible
    project = objs[0]
    for order in _orders(objs):
        for query in (False, True):
            h = living_cases.play(project, order, query)
            assert living_cases.state_json(h.state()) == scenario["state"]
            assert living_cases.history_json(h.history()) == scenario["history"]


def test_every_effect_has_a_case() -> None:
    seen = {e["effect"] for s in SCENARIOS for e in s["history"]}
    assert seen == set(EFFECTS)


def test_the_file_is_what_the_generator_makes() -> None:
    assert living_cases.OUT.read_text(encoding="ascii") == living_cases.render(), (
        "docs/conformance/living.json is stale: run python -m tests.conformance.living_cases"
    )

"""The governance corpus (docs/conformance/governance.json) against this implementation: each
object case reaches its verdict; each scenario's objects, decoded from their bytes and held in
several orders (with duplicates), give the authority, log and statuses the file states; the
file is what its generator makes."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from protocols import errors, kinds, objects
from protocols.governance import ACTS
from protocols.lab_authority import EFFECTS
from tests.conformance import governance_cases

CORPUS: dict[str, Any] = json.loads(governance_cases.OUT.read_text(encoding="ascii"))
CASES: list[dict[str, Any]] = CORPUS["objects"]
SCENARIOS: list[dict[str, Any]] = CORPUS["scenarios"]


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_object_case(case: dict[str, Any]) -> None:
    obj = objects.decode(bytes.fromhex(case["hex"]))
    assert objects.verify(obj)
    got: tuple[str, str | None]
    try:
        kinds.validate(obj, CORPUS["now_ms"])
    except errors.ObjectError as exc:
        got = (exc.layer.value, exc.code)
    else:
        got = ("visible", None)
    assert got == (case["verdict"], case.get("code"))


def _orders(objs: list[objects.SignedObject]) -> list[list[objects.SignedObject]]:
    rng = random.Random(24)
    out = [objs, objs[::-1]]
    for _ in range(4):
        shuffled = objs + rng.sample(objs, k=3)  # duplicates change nothing
        rng.shuffle(shuffled)
        out.append(shuffled)
    return out


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s["name"] for s in SCENARIOS])
def test_scenario(scenario: dict[str, Any]) -> None:
    objs = [objects.decode(bytes.fromhex(o["hex"])) for o in scenario["objects"]]
    assert all(objects.verify(o) for o in objs)
    for obj in objs:
        kinds.validate(obj, CORPUS["now_ms"])  # every object of a scenario is visible
    for order in _orders(objs):
        v = governance_cases.play(order)
        assert governance_cases.state_json(v) == scenario["state"]
        assert governance_cases.log_json(v) == scenario["log"]
        assert governance_cases.status_json(v, objs) == scenario["status"]


def test_every_effect_act_and_status_has_a_case() -> None:
    log = [e for s in SCENARIOS for e in s["log"]]
    assert {e["effect"] for e in log} == set(EFFECTS)
    assert {e["act"] for e in log} >= set(ACTS)
    assert {st for s in SCENARIOS for st in s["status"].values()} == {"shown", "queued", "hidden"}
    names = {c["name"] for c in CASES}
    assert all(f"decision/{act}" in names for act in ACTS)


def test_the_file_is_what_the_generator_makes() -> None:
    assert governance_cases.OUT.read_text(encoding="ascii") == governance_cases.render(), (
        "docs/conformance/governance.json is stale: "
        "run python -m tests.conformance.governance_cases"
    )

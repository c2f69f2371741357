"""The identity corpus (docs/conformance/identity.json) against this implementation: each
scenario's objects decoded from their bytes and added to a Directory in several orders must
give every object the attribution the file states; the file is what its generator makes."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from protocols import objects
from protocols.attribution import Directory
from tests.conformance import identity_cases

CORPUS: dict[str, Any] = json.loads(identity_cases.OUT.read_text(encoding="ascii"))
SCENARIOS: list[dict[str, Any]] = CORPUS["scenarios"]


def _orders(objs: list[objects.SignedObject]) -> list[list[objects.SignedObject]]:
    shuffled = list(objs)
    random.Random(22).shuffle(shuffled)
    return [objs, objs[::-1], shuffled]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s["name"] for s in SCENARIOS])
def test_scenario(scenario: dict[str, Any]) -> None:
    objs = [objects.decode(bytes.fromhex(o["hex"])) for o in scenario["objects"]]
    assert all(objects.verify(o) for o in objs)
    for order in _orders(objs):
        directory = Directory()
        for obj in order:  # one at a time, querying in between (the incremental path)
            directory.add(obj)
            directory.attribute_object(obj)
        for obj, want in zip(objs, scenario["objects"], strict=True):
            got = directory.attribute_object(obj)
            member = None if got.member is None else got.member.hex()
            device = None if got.device is None else got.device.hex()
            assert (member, device, got.status) == (
                want["member"],
                want["device"],
                want["status"],
            ), want["note"]


def test_every_status_has_a_case() -> None:
    statuses = {o["status"] for s in SCENARIOS for o in s["objects"]}
    assert statuses == {"member", "unattributed", "disputed", "pending"}


def test_the_file_is_what_the_generator_makes() -> None:
    assert identity_cases.OUT.read_text(encoding="ascii") == identity_cases.render(), (
        "docs/conformance/identity.json is stale: run python -m tests.conformance.identity_cases"
    )

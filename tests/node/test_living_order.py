"""Any delivery order gives the same project (issue 23, through the node): one set of
revisions (concurrent branches, a co-author removed, a forged link, some retracted, some
retractions arriving before what they withdraw) delivered to fresh stores in different orders,
in batches of any size, with duplicates. One node has the project cached from the start (its
history fed batch by batch by the ingest listener), the others build it from the store at the
end: every node shows the same project and the same history."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from node.ingest.pipeline import Ingest
from node.service.api import Service
from node.store.store import Store
from protocols.objects import SignedObject, public_key_bytes
from tests.node.helpers import member

SEEDS = range(24)
REVISIONS = 14


def objects(seed: int) -> tuple[SignedObject, SignedObject, list[SignedObject]]:
    rng = random.Random(seed)
    ada, bob, cy, eve = (member(f"{n}-{seed}") for n in ("ada", "bob", "cy", "eve"))
    keys = {"ada": ada, "bob": bob, "cy": cy, "eve": eve}
    lab = ada.lab()
    bob_id, cy_id = public_key_bytes(bob.key), public_key_bytes(cy.key)
    project = ada.project(lab, "P", coauthors=[bob_id, cy_id])
    revs: list[SignedObject] = []
    rest: list[SignedObject] = []
    for i in range(REVISIONS):
        who = rng.choice(["ada", "ada", "bob", "cy", "eve"])
        base = [project.id] if not revs or rng.random() < 0.2 else [rng.choice(revs[-3:]).id]
        if revs and rng.random() < 0.3:  # a merge of two recent ones
            base = sorted({*base, rng.choice(revs).id})
        if i == REVISIONS // 2:  # Ada removes Cy
            who, changes = "ada", {"coauthors": [bob_id]}
        elif rng.random() < 0.1:  # a forged link: the lab is no revision of the project
            base, changes = [lab.id], {"title": f"forged {i}"}
        else:
            field = rng.choice(["title", "summary", "stage", "needs"])
            value: Any = {"title": f"T{i}", "summary": f"S{i}", "needs": [f"n{i}"],
                          "stage": rng.choice(["idea", "design", "prototype"])}[field]
            changes = {field: value}
        rev = keys[who].make("revision", {"lab": lab.id, "target": project.id,
                                          "supersedes": base, "set": changes})  # fmt: skip
        revs.append(rev)
        if rng.random() < 0.15:  # withdrawn by its author
            rest.append(keys[who].retract(rev))
    return lab, project, revs + rest


def deliver(tmp: Path, name: str, objs: list[SignedObject], seed: int, warm: bool,
            first: list[SignedObject]) -> tuple[dict[str, Any], dict[str, Any]]:  # fmt: skip
    rng = random.Random(seed)
    store = Store(tmp / name, map_size=1 << 28)
    ingest = Ingest(store, check_workers=0)
    try:
        svc = Service(tmp / f"{name}-home", store, ingest)
        ingest.ingest([o.raw for o in first])
        pid = first[-1].id_hex
        if warm:
            svc.call("history", {"id": pid})  # cached now: fed batch by batch from here
        order = objs + rng.sample(objs, k=len(objs) // 3)  # duplicates
        rng.shuffle(order)
        while order:
            n = rng.randint(1, 5)
            batch, order = order[:n], order[n:]
            ingest.ingest([o.raw for o in batch])
        shown = svc.call("project", {"id": pid})
        history = svc.call("history", {"id": pid, "limit": 200})
        return shown["project"], history
    finally:
        ingest.close()
        store.close()


@pytest.mark.parametrize("seed", SEEDS)
def test_any_order_same_project(tmp_path: Path, seed: int) -> None:
    lab, project, objs = objects(seed)
    runs = [deliver(tmp_path, f"n{i}", objs, seed * 100 + i, warm=i % 2 == 0,
                    first=[lab, project]) for i in range(4)]  # fmt: skip
    views = [v for v, _ in runs]
    histories = [h for _, h in runs]
    for v, h in runs[1:]:
        assert v == views[0]
        assert h == histories[0]
    assert histories[0]["total"] >= 1

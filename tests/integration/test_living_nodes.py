"""Living projects across three real `percolab node` processes (issue 23): two co-authors
revise the same project while partitioned (conflicting stage and body), the partition heals,
and all three nodes show the identical project and a history holding both branches; an edit on
top then merges them, everywhere.

Ada's node and Cy's are connected; Bob's node runs alone (never dialled), and gets the project,
and Ada's identity, by an export imported once before the partition: the two sides revise
without seeing each other, as two labs offline at once would."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from node.service.api import ServiceError
from tests.integration.nodes import NodeProc, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

TIMEOUT_S = 90.0


def project(node: NodeProc, pid: str) -> dict[str, Any] | None:
    shown = node.find(pid)
    return None if shown is None else dict(shown["project"])


def history(node: NodeProc, pid: str) -> dict[str, Any]:
    out: dict[str, Any] = node.call("history", id=pid, limit=200)
    return out


def copy_all(src: NodeProc, dst: NodeProc) -> None:
    after: int | None = 0
    while after is not None:
        page = src.call("export", after=after)
        if page["objects"]:
            res = dst.call("import_objects", objects=page["objects"])
            assert not res["rejected"], res
        after = page["next"]


def test_partitioned_coauthors_converge(tmp_path: Path) -> None:
    a, b, c = (NodeProc(tmp_path / n, n) for n in ("ada", "bob", "cy"))
    nodes = [a, b, c]
    try:
        for n in nodes:
            n.init()
        a.start()
        c.start(bootstrap=[a.addr()])
        b.start()  # alone: the other side of the partition
        bob = b.call("whoami")["member"]
        lab = a.call("lab_create", name="Co-design lab")
        c.call("lab_follow", lab=lab)
        pid = a.call("post", lab=lab, title="Bike trailer", body="frame: steel\nwheels: 2",
                     needs=["welder"], licence="CERN-OHL-W-2.0")  # fmt: skip
        copy_all(b, a)  # Bob's certificate and profile: Ada can name him
        added = a.call("edit", id=pid, coauthors=[bob], note="Bob joins")
        copy_all(a, b)  # before the partition: Bob holds the project, knows he co-authors it
        b.call("lab_follow", lab=lab)
        assert [x["member"] for x in project(b, pid)["coauthors"]] == [bob]  # type: ignore[index]
        wait_until(lambda: (p := project(c, pid)) and p["revisions"] == 1, TIMEOUT_S,
                   "the co-author on cy")  # fmt: skip

        # ---- partitioned: both revise stage and body --------------------------------------
        ra = a.call("edit", id=pid, stage="prototype", body="frame: aluminium\nwheels: 2",
                    note="lighter frame")  # fmt: skip
        rb = b.call("edit", id=pid, stage="testing", body="frame: steel\nwheels: 3",
                    note="three wheels")  # fmt: skip
        wait_until(lambda: (p := project(c, pid)) and p["stage"] == "prototype", TIMEOUT_S,
                   "ada's revision on cy")  # fmt: skip
        assert project(b, pid)["stage"] == "testing"  # type: ignore[index]
        assert history(a, pid)["heads"] == [ra] and history(b, pid)["heads"] == [rb]

        # ---- heal -------------------------------------------------------------------------
        b.call("connect", addr=a.addr())
        b.call("connect", addr=c.addr())

        def converged() -> bool:
            views = [project(n, pid) for n in nodes]
            return all(v is not None and v["revisions"] == 3 for v in views) and all(
                v == views[0] for v in views)  # fmt: skip

        wait_until(converged, TIMEOUT_S, "the three nodes to show the same project")
        histories = [history(n, pid) for n in nodes]
        assert histories[0] == histories[1] == histories[2]
        h = histories[0]
        assert sorted(h["heads"]) == sorted([ra, rb])  # two branches, both tips
        entries = {e["id"]: e for e in h["entries"]}
        assert set(entries) == {added, ra, rb}
        assert entries[ra]["supersedes"] == entries[rb]["supersedes"] == [added]
        assert all(e["effect"] == "applied" for e in entries.values())
        # Per-field last writer in causal order with a stable tie-break: the later of the two
        # concurrent revisions (by ts, then id) holds both fields.
        later = max((entries[ra], entries[rb]), key=lambda e: (e["ts"], e["id"]))
        shown = project(a, pid)
        assert shown is not None
        assert (shown["stage"], shown["body"]) == (later["changes"]["stage"]["new"],
                                                   later["changes"]["body"]["new"])
        assert entries[rb]["author_name"] == "bob" and entries[ra]["author_name"] == "ada"

        # ---- an edit on top merges the branches ----------------------------------------
        with pytest.raises(ServiceError) as refused:  # cy is no author
            c.call("edit", id=pid, stage="done")
        assert refused.value.code == "not_author"
        top = b.call("edit", id=pid, body="frame: aluminium\nwheels: 3", note="both")
        wait_until(lambda: all((p := project(n, pid)) and p["revisions"] == 4 for n in nodes),
                   TIMEOUT_S, "the merge everywhere")  # fmt: skip
        for n in nodes:
            h = history(n, pid)
            assert h["heads"] == [top]
            (e,) = [x for x in h["entries"] if x["id"] == top]
            assert sorted(e["supersedes"]) == sorted([ra, rb])
            assert project(n, pid)["body"] == "frame: aluminium\nwheels: 3"  # type: ignore[index]
    finally:
        for n in nodes:
            n.stop()

"""Living projects over HTTP (issue 23) against a real node: revise, pledge and fork through the
write API, read the current project, its history, pledges and lineage, and see a revision and
a pledge update the project's Atom entry (with its licence as atom:rights)."""

from __future__ import annotations

import time
from typing import Any

from tests.http.conftest import Lab
from tests.http.test_feeds import feed

V1 = "/api/v1"


def post(lab: Lab, path: str, body: dict[str, Any], status: int = 201) -> dict[str, Any]:
    r = lab.client.post(f"{V1}/{path}", json=body, headers=lab.node.auth)
    assert r.status_code == status, r.text
    out: dict[str, Any] = r.json()
    return out


def test_revise_pledge_fork_and_read(lab: Lab) -> None:
    pid = post(lab, "projects", {"lab": lab.lab_id, "title": "Water filter", "needs": ["sand"],
                                 "body": "v1"})["id"]  # fmt: skip
    rev = post(lab, "revisions", {"target": pid, "stage": "prototype", "licence": "CERN-OHL-S-2.0",
                                  "body": "v2", "note": "first build"})  # fmt: skip
    assert rev["object"]["kind"] == "revision" and rev["object"]["target"] == pid
    assert rev["object"]["supersedes"] == [pid]  # ids inside lists are hex in JSON too
    err = post(lab, "revisions", {"target": pid, "stage": "prototype"}, status=409)
    assert err["error"] == "no_change"
    thread = lab.client.get(f"{V1}/projects/{pid}").json()
    p = thread["project"]
    assert (p["stage"], p["licence"], p["licence_known"], p["revisions"]) == (
        "prototype", "CERN-OHL-S-2.0", True, 1)
    h = lab.client.get(f"{V1}/projects/{pid}/history").json()
    assert h["total"] == 1 and h["heads"] == [rev["id"]] and h["next"] is None
    assert h["entries"][0]["changes"]["body"] == {"old": "v1", "new": "v2"}
    pledge = post(lab, "pledges", {"target": pid, "type": "build", "need": "sand"})
    assert pledge["object"]["type_label"] == "I can build it"
    items = lab.client.get(f"{V1}/projects/{pid}/pledges").json()["items"]
    assert [x["id"] for x in items] == [pledge["id"]] and items[0]["raw"]
    thread = lab.client.get(f"{V1}/projects/{pid}").json()
    assert thread["needs"] == [{"need": "sand", "pledges": thread["pledges"]}]
    assert all(x["raw"] for x in thread["pledges"])  # every object view carries its bytes
    fork = post(lab, "forks", {"target": pid, "lab": lab.lab_id, "title": "Filter v2",
                               "how": "remix"})  # fmt: skip
    lin = lab.client.get(f"{V1}/projects/{pid}").json()["lineage"]
    assert [(x["project"], x["how"]) for x in lin["descendants"]] == [(fork["id"], "remix")]
    f = lab.client.get(f"{V1}/projects/{fork['id']}").json()["project"]
    assert f["derives"][0]["title"] == "Water filter" and f["licence"] == "CERN-OHL-S-2.0"
    err = post(lab, "revisions", {"target": pid, "stage": "bogus"}, status=400)
    assert err["error"] == "bad_request"
    err = post(lab, "revisions", {"target": pid, "licence": "MIT AND"}, status=422)
    assert err["error"] == "invalid_object"


def test_revision_and_pledge_update_the_atom_entry(lab: Lab) -> None:
    pid = post(lab, "projects", {"lab": lab.lab_id, "title": "Kiln", "licence": "CC0-1.0"})["id"]

    def entry() -> Any:
        parsed = feed(lab, f"/feeds/lab/{lab.lab_id}.atom")
        (e,) = [x for x in parsed.entries if x.id == f"urn:percolab:{pid}"]
        return e, parsed

    e, parsed = entry()
    assert e.rights == "CC0-1.0" and e.updated == e.published
    time.sleep(0.002)  # a later millisecond for the revision
    post(lab, "revisions", {"target": pid, "title": "Electric kiln"})
    e, parsed = entry()
    assert e.title == "Electric kiln" and e.updated > e.published
    assert parsed.feed.updated >= e.updated
    revised = e.updated
    time.sleep(0.002)
    post(lab, "pledges", {"target": pid, "type": "host"})
    e, _ = entry()
    assert e.updated > revised and e.id == f"urn:percolab:{pid}"

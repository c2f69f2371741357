"""A lab without a chief over HTTP (issue 24) against a real node: its members, log (paged) and
queue, decisions posted (approve, hide, admit, rules, refused ones: 400, 403, 404),
`show_hidden` on the lists, the response cache following this node's own moderation, and
every new answer checked against its OpenAPI schema. A second member (Bob) is a member of the
same machine (a seat), posting through the CLI."""

from __future__ import annotations

from typing import Any

import pytest

from node.http.schemas import SCHEMAS
from node.http.validate import check
from tests.http.conftest import Lab
from tests.http.helpers import percolab

V1 = "/api/v1"


def conforms(name: str, body: Any) -> Any:
    """The body fits the OpenAPI component schema `name` (the one the description names)."""
    check(SCHEMAS[name], body, "response")
    return body


def get(lab: Lab, path: str, schema: str, status: int = 200) -> Any:
    r = lab.client.get(f"{V1}/{path}")
    assert r.status_code == status, r.text
    return conforms(schema if status == 200 else "Error", r.json())


def decide(lab: Lab, body: dict[str, Any], status: int = 201, where: str | None = None) -> Any:
    r = lab.client.post(f"{V1}/labs/{where or lab.lab_id}/decisions", json=body,
                        headers=lab.node.auth)  # fmt: skip
    assert r.status_code == status, r.text
    out = conforms("Created" if status == 201 else "Error", r.json())
    if status == 201:
        assert out["object"]["kind"] == "decision" and out["object"]["act"] == body["act"]
        assert r.headers["location"] == f"/api/v1/objects/{out['id']}"
    return out


def cli(lab: Lab, *args: str) -> str:
    return percolab(lab.node.data_dir, *args).stdout.strip()


@pytest.fixture(scope="module")
def bob(lab: Lab) -> dict[str, str]:
    """Bob, a newcomer (a seat of the node's machine), and his project waiting in the queue."""
    cli(lab, "members", "add", "bob", "--name", "Bob", "--unencrypted-key")
    pid = cli(lab, "--as", "bob", "post", "--lab", lab.lab_id, "--title", "Solar dryer",
              "--tag", "sun")  # fmt: skip
    return {"project": pid}


def ids(page: dict[str, Any]) -> list[str]:
    return [x["id"] for x in page["items"]]


def in_feed(lab: Lab, pid: str) -> bool:
    r = lab.client.get(f"/feeds/lab/{lab.lab_id}.atom")
    assert r.status_code == 200
    return f"urn:percolab:{pid}" in r.text


def test_members_and_queue(lab: Lab, bob: dict[str, str]) -> None:
    m = get(lab, f"labs/{lab.lab_id}/members", "LabMembers")
    assert m["role"] == "steward" and [s["name"] for s in m["stewards"]] == ["Ada"]
    assert m["rules"]["posts"] == "queued" and m["proposals"] == []
    assert get(lab, "labs/Fab%20Lab/members", "LabMembers") == m  # by name
    q = get(lab, f"labs/{lab.lab_id}/queue", "LabQueue")
    (waiting,) = q["objects"]
    assert waiting["id"] == bob["project"] and waiting["moderation"] == "queued"
    assert waiting["raw"]  # every object view carries its signed bytes
    assert (q["total"], q["next"]) == (1, None)
    page = get(lab, f"labs/{lab.lab_id}/queue?limit=1", "LabQueue")
    assert [o["id"] for o in page["objects"]] == [bob["project"]] and page["next"] is None
    get(lab, f"labs/{lab.lab_id}/queue?limit=0", "", status=400)
    get(lab, f"labs/{lab.lab_id}/queue?cursor=abc", "", status=400)
    get(lab, "labs/Nowhere/members", "", status=404)
    get(lab, "labs/Nowhere/queue", "", status=404)


def test_show_hidden_on_lists(lab: Lab, bob: dict[str, str]) -> None:
    pid = bob["project"]
    for path in (f"labs/{lab.lab_id}/projects", "projects"):
        assert pid not in ids(get(lab, path, "ProjectPage"))
        page = get(lab, f"{path}?show_hidden=1", "ProjectPage")
        (v,) = [x for x in page["items"] if x["id"] == pid]
        assert v["moderation"] == "queued" and v["raw"]
    assert pid not in ids(get(lab, "search?q=solar", "ProjectList"))
    assert pid in ids(get(lab, "search?q=solar&show_hidden=1", "ProjectList"))
    author = v["author"]
    for path in ("tags/sun/objects", f"authors/{author}/objects"):
        assert pid not in ids(get(lab, path, "ObjectPage"))
        assert pid in ids(get(lab, f"{path}?show_hidden=1", "ObjectPage"))
    assert not in_feed(lab, pid)  # feeds honour moderation too
    thread = get(lab, f"projects/{pid}?show_hidden=1", "Thread")
    assert thread["project"]["moderation"] == "queued"
    get(lab, "projects?show_hidden=yes", "", status=400)


def test_decisions(lab: Lab, bob: dict[str, str]) -> None:
    pid = bob["project"]
    decide(lab, {"act": "approve", "target": pid})
    assert pid in ids(get(lab, f"labs/{lab.lab_id}/projects", "ProjectPage"))
    assert get(lab, f"labs/{lab.lab_id}/queue", "LabQueue")["objects"] == []
    assert in_feed(lab, pid)
    hidden = decide(lab, {"act": "hide", "target": pid[:16], "reason": "duplicate"})
    assert hidden["object"]["reason"] == "duplicate"
    assert pid not in ids(get(lab, f"labs/{lab.lab_id}/projects", "ProjectPage"))
    assert not in_feed(lab, pid)
    page = get(lab, f"labs/{lab.lab_id}/projects?show_hidden=1", "ProjectPage")
    (v,) = [x for x in page["items"] if x["id"] == pid]
    assert (v["moderation"], v["hidden_reason"]) == ("hidden", "duplicate")
    assert v["hidden_by"] == get(lab, f"labs/{lab.lab_id}/members", "LabMembers")[
        "stewards"][0]["member"]  # fmt: skip
    decide(lab, {"act": "unhide", "target": pid})
    assert pid in ids(get(lab, f"labs/{lab.lab_id}/projects", "ProjectPage"))
    decide(lab, {"act": "admit", "member": "Bob"})
    m = get(lab, f"labs/{lab.lab_id}/members", "LabMembers")
    assert {x["name"] for x in m["members"]} == {"Ada", "Bob"}
    decide(lab, {"act": "admit", "member": "Bob", "role": "steward"})
    proposal = decide(lab, {"act": "rules", "rules": {"posts": "shown", "admit_vouches": 1}})
    (p,) = get(lab, f"labs/{lab.lab_id}/members", "LabMembers")["proposals"]
    assert (p["id"], p["backing"], p["needed"]) == (proposal["id"], 1, 2)

    # Refused: a body off its act's schema (400), no lab (404), a target of another lab (400).
    for body in ({"act": "admit"}, {"act": "rules", "rules": {}}, {"act": "vote"},
                 {"act": "vouch", "member": "Bob", "reason": "no such field"}):  # fmt: skip
        assert decide(lab, body, 400)["error"] == "bad_request"
    decide(lab, {"act": "admit", "member": "Bob"}, 404, where="Nowhere")
    other = cli(lab, "--as", "bob", "lab", "create", "Bob's lab", "--open")
    err = decide(lab, {"act": "approve", "target": pid}, 400, where=other)
    assert "not an object of the lab" in err["message"]
    # Ada is no steward (nor member) of Bob's lab: refused before signing.
    err = decide(lab, {"act": "admit", "member": "Ada"}, 403, where=other)
    assert err["error"] in ("not_steward", "not_member")
    err = decide(lab, {"act": "vouch", "member": "Ada"}, 403, where=other)
    assert err["error"] == "not_member"
    r = lab.client.post(f"{V1}/labs/{lab.lab_id}/decisions", json={"act": "approve",
                                                                   "target": pid})
    assert r.status_code == 401


def test_log_pages(lab: Lab, bob: dict[str, str]) -> None:
    log = get(lab, f"labs/{lab.lab_id}/log", "LabLog")
    acts = [e["act"] for e in log["entries"]]
    # newest first, back to the creator's members-only rules of `lab create`
    assert acts[0] == "rules" and acts[-1] == "rules" and "approve" in acts
    assert log["entries"][0]["effect"] == "pending" and log["next"] is None
    assert {e["effect"] for e in log["entries"][1:]} == {"applied"}
    first = get(lab, f"labs/{lab.lab_id}/log?limit=2", "LabLog")
    assert [e["id"] for e in first["entries"]] == [e["id"] for e in log["entries"][:2]]
    rest = get(lab, f"labs/{lab.lab_id}/log?limit=200&cursor={first['next']}", "LabLog")
    assert [e["id"] for e in first["entries"] + rest["entries"]] == [
        e["id"] for e in log["entries"]]
    get(lab, f"labs/{lab.lab_id}/log?cursor=zz", "", status=400)


def test_local_moderation_reaches_cached_answers(lab: Lab, bob: dict[str, str]) -> None:
    """A hide on this node is a setting, not an object: cached lists must still follow it."""
    pid, path = bob["project"], f"labs/{lab.lab_id}/projects"
    assert pid in ids(get(lab, path, "ProjectPage"))
    cli(lab, "hide", pid)
    assert pid not in ids(get(lab, path, "ProjectPage"))
    page = get(lab, f"{path}?show_hidden=1", "ProjectPage")
    assert [x["hidden_by"] for x in page["items"] if x["id"] == pid] == ["node"]
    cli(lab, "unhide", pid)
    assert pid in ids(get(lab, path, "ProjectPage"))


def test_openapi_lists_the_new_operations(lab: Lab) -> None:
    spec = lab.client.get(f"{V1}/openapi.json").json()
    for sub in ("members", "log", "queue"):
        assert "get" in spec["paths"][f"{V1}/labs/{{lab}}/{sub}"]
    post = spec["paths"][f"{V1}/labs/{{lab}}/decisions"]["post"]
    assert {"201", "400", "401", "403", "404"} <= set(post["responses"])
    acts = {alt["properties"]["act"]["enum"][0]
            for alt in spec["components"]["schemas"]["NewDecision"]["oneOf"]}
    assert acts == {"admit", "remove", "vouch", "rules", "endorse", "approve", "hide",
                    "unhide", "suspend", "unsuspend"}
    params = {p["name"] for p in spec["paths"][f"{V1}/projects"]["get"]["parameters"]}
    assert "show_hidden" in params

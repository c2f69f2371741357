"""The store side of living projects (issue 23): a revision's words and derives are indexed
with it (and go with its retraction), revisions and pledges stored opaque by the release
before are shown once this release reviews them, and a store made before the `derives` index
gets it built at open."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from node.ingest.pipeline import Ingest
from node.service import living, pages, queries, search
from node.store.read import prefix_keys
from node.store.store import Store
from protocols import kinds
from protocols.objects import SignedObject
from tests.node.helpers import member

ADA = member("ada")


def _lab_and_project(**kw: Any) -> tuple[SignedObject, SignedObject]:
    lab = ADA.lab()
    return lab, ADA.project(lab, "Solar oven", "a box", **kw)


def _revision(project: SignedObject, changes: dict[str, Any]) -> SignedObject:
    return ADA.make("revision", {"lab": project.body["lab"], "target": project.id,
                                 "supersedes": [project.id], "set": changes})


def _search(store: Store, q: str) -> list[str]:
    with store.read() as txn:
        return [v["title"] for v in search.search(store, queries.Views(store, txn), q, 10)]


def test_revision_words_and_derives_come_and_go(store: Store, ingest: Ingest) -> None:
    lab, origin = _lab_and_project()
    other = ADA.project(lab, "Cooker")
    rev = _revision(other, {"title": "Parabolic cooker",
                            "derives": [{"project": origin.id, "how": "remix"}]})
    ingest.ingest([lab.raw, origin.raw, other.raw, rev.raw])
    assert _search(store, "parabolic") == ["Parabolic cooker"]
    with store.read() as txn:
        assert len(list(prefix_keys(txn, store.db["derives"], origin.id))) == 1
    ingest.ingest([ADA.retract(rev).raw])
    assert _search(store, "parabolic") == []
    assert _search(store, "cooker") == ["Cooker"]
    with store.read() as txn:
        assert list(prefix_keys(txn, store.db["derives"], origin.id)) == []


def test_opaque_revisions_and_pledges_are_shown_after_the_review(tmp_path: Path) -> None:
    """Stored by the release before (opaque: an unknown kind), then opened by this one."""
    path = tmp_path / "store"
    lab, project = _lab_and_project()
    rev = _revision(project, {"title": "Solar kiln"})
    pledge = ADA.make("pledge", {"lab": lab.id, "target": project.id, "type": "build"})
    store = Store(path, map_size=1 << 30)
    store.write_batch([(lab, kinds.kind_spec("lab")), (project, kinds.kind_spec("project")),
                       (rev, "unknown_kind"), (pledge, "unknown_kind")])  # fmt: skip
    with store.env.begin(write=True) as txn:  # as if reviewed by the release before
        txn.delete(b"review:stamp", db=store.db["meta"])
    store.close()
    store = Store(path, map_size=1 << 30)
    try:
        with store.read() as txn:
            views = queries.Views(store, txn)
            view = views.view(store.get(txn, project.id))
        assert (view["title"], view["revisions"], view["pledges"]) == ("Solar kiln", 1, 1)
        assert _search(store, "kiln") == ["Solar kiln"]
    finally:
        store.close()


def test_derives_index_built_for_an_older_store(tmp_path: Path) -> None:
    path = tmp_path / "store"
    lab, origin = _lab_and_project()
    child = ADA.project(lab, "Fork", derives=[{"project": origin.id, "how": "fork"}])
    store = Store(path, map_size=1 << 30)
    store.write_batch([(o, kinds.kind_spec(o.kind)) for o in (lab, origin, child)])
    with store.env.begin(write=True) as txn:  # a store from before the index
        txn.drop(store.db["derives"], delete=False)
        txn.delete(b"derives:v1", db=store.db["meta"])
    store.close()
    store = Store(path, map_size=1 << 30)
    try:
        with store.read() as txn:
            views = queries.Views(store, txn, living=living.of_store(store))
            lin = pages.show(store, views, origin)["lineage"]
        assert [x["project"] for x in lin["descendants"]] == [child.id_hex]
    finally:
        store.close()

"""The `percolab` console script, run for real in temporary data directories."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from protocols.exportfile import MAGIC, decode_export
from protocols.objects import decode

PERCOLAB = Path(sys.prefix) / "bin" / "percolab"
HEX64 = r"^[0-9a-f]{64}$"


def run(*args: str, data: Path | None = None, home: Path | None = None,
        ok: bool = True) -> subprocess.CompletedProcess[str]:  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "PERCOLAB_HOME"}
    if home is not None:
        env["PERCOLAB_HOME"] = str(home)
    cmd = [str(PERCOLAB), *(["--data-dir", str(data)] if data is not None else []), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)
    assert "Traceback" not in proc.stderr, proc.stderr
    if ok:
        assert proc.returncode == 0, f"{args}: {proc.stderr}"
    return proc


def out(*args: str, data: Path) -> str:
    return run(*args, data=data).stdout.strip()


def js(*args: str, data: Path) -> Any:
    return json.loads(run(*args, "--json", data=data).stdout)


def fails(*args: str, data: Path | None = None, home: Path | None = None,
          status: int = 1) -> str:  # fmt: skip
    """Run a command that must fail cleanly; returns its one-line error."""
    proc = run(*args, data=data, home=home, ok=False)
    assert proc.returncode == status, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("percolab: error: ")
    return lines[0]


def relay_dir(path: Path) -> Path:
    """A data directory where only a node ran (a node key, no member key): commands work on
    it, and it holds nothing an export would carry."""
    from p2p.identity import load_or_create_node_key

    path.mkdir(mode=0o700)
    load_or_create_node_key(path / "node.key")
    return path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One data directory with an identity, a lab, projects, a thread and tags."""
    d = tmp_path_factory.mktemp("a")
    who = js("init", "--unencrypted-key", "--name", "Ada", "--about", "maker", data=d)
    lab = out("lab", "create", "Fablab Nord", "--place", "Lille", data=d)
    other_lab = out("lab", "create", "Hackerspace Sud", data=d)
    p1 = out("post", "--lab", "fablab nord", "--title", "Solar oven", "--summary",
             "cooks with sunlight", "--tag", "Solar", "--tag", "open data", "--need", "mirrors",
             data=d)  # fmt: skip
    p2 = out("post", "--lab", lab[:10], "--title", "Bike generator", "--stage", "prototype",
             data=d)  # fmt: skip
    p3 = out("post", "--lab", other_lab, "--title", "Rain gauge", data=d)
    t1 = out("tag", p2, "energy", "Pedal Power", data=d)
    c1 = out("comment", p1, "--body", "first!", data=d)  # p1 is now the most active
    c2 = out("comment", p1[:12], "--body", "a reply", "--parent", c1, data=d)
    return {"dir": d, "who": who, "lab": lab, "other_lab": other_lab, "p1": p1, "p2": p2,
            "p3": p3, "c1": c1, "c2": c2, "t1": t1}  # fmt: skip


def test_init_creates_a_private_key(world) -> None:
    d = world["dir"]
    key = d / "member.keys"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert world["who"]["name"] == "Ada" and world["who"]["about"] == "maker"
    assert len(world["who"]["author"]) == 64
    assert "already" in fails("init", "--unencrypted-key", "--name", "Again", data=d)


def test_ids_are_printed(world) -> None:
    for name in ("lab", "other_lab", "p1", "p2", "p3", "c1", "c2", "t1"):
        assert len(world[name]) == 64 and int(world[name], 16) >= 0


def test_lab_list_and_follow(world, tmp_path: Path) -> None:
    labs = js("lab", "list", data=world["dir"])
    assert [lab["name"] for lab in labs] == ["Fablab Nord", "Hackerspace Sud"]
    assert [lab["projects"] for lab in labs] == [2, 1]
    assert all(lab["followed"] for lab in labs)
    assert "Fablab Nord" in out("lab", "list", data=world["dir"])
    # follow/unfollow on a fresh copy (import), by name and by id
    b = relay_dir(tmp_path / "b")
    exported = tmp_path / "all.percolab"
    run("export", str(exported), data=world["dir"])
    run("import", str(exported), data=b)
    assert not any(lab["followed"] for lab in js("lab", "list", data=b))
    run("lab", "follow", "hackerspace sud", data=b)
    labs = js("lab", "list", data=b)
    assert labs[0]["name"] == "Hackerspace Sud" and labs[0]["followed"]
    assert not labs[1]["followed"]
    run("lab", "unfollow", world["other_lab"], data=b)
    assert not any(lab["followed"] for lab in js("lab", "list", data=b))


def test_show_json_has_threaded_comments(world) -> None:
    shown = js("show", world["p1"][:16], data=world["dir"])
    p = shown["project"]
    assert p["id"] == world["p1"] and p["title"] == "Solar oven"
    assert p["tags"] == ["solar", "open-data"] and p["needs"] == ["mirrors"]
    assert p["lab_name"] == "Fablab Nord" and p["author_name"] == "Ada"
    assert p["comments"] == 2
    assert [c["id"] for c in shown["comments"]] == [world["c1"]]
    assert [c["id"] for c in shown["comments"][0]["replies"]] == [world["c2"]]
    assert shown["comments"][0]["replies"][0]["body"] == "a reply"
    text = out("show", world["p1"], data=world["dir"])
    assert "Solar oven" in text and "first!" in text and "a reply" in text


def test_list_with_filters(world) -> None:
    d = world["dir"]

    def ids(*args: str) -> list[str]:
        return [p["id"] for p in js("list", *args, data=d)["items"]]

    assert ids() == [world["p3"], world["p2"], world["p1"]]
    assert ids("--lab", "Fablab Nord") == [world["p2"], world["p1"]]
    assert ids("--lab", world["other_lab"]) == [world["p3"]]
    assert ids("--tag", "solar") == [world["p1"]]
    assert ids("--tag", "Pedal Power") == [world["p2"]]  # normalised like the tag was
    assert ids("--author", world["who"]["author"]) == [world["p3"], world["p2"], world["p1"]]
    assert ids("--author", "00" * 32) == []
    assert ids("--limit", "1") == [world["p3"]]
    assert ids("--lab", "Fablab Nord", "--order", "active") == [world["p1"], world["p2"]]
    assert "Solar oven" in out("list", "--tag", "open-data", data=d)
    hits = js("search", "sunl", data=d)
    assert [h["id"] for h in hits] == [world["p1"]]


def test_retract(tmp_path: Path) -> None:
    d = tmp_path / "r"
    run("init", "--unencrypted-key", "--name", "Bob", data=d)
    lab = out("lab", "create", "Lab", data=d)
    pid = out("post", "--lab", lab, "--title", "Going away", data=d)
    keep = out("post", "--lab", lab, "--title", "Staying", data=d)
    cid = out("comment", keep, "--body", "hello", data=d)
    rid = out("retract", pid, data=d)
    assert len(rid) == 64
    assert [p["id"] for p in js("list", data=d)["items"]] == [keep]
    assert "withdrawn" in fails("show", pid, data=d)
    out("retract", cid, data=d)
    assert js("show", keep, data=d)["comments"] == []
    assert js("status", data=d)["counts"]["project"] == 1


def test_export_import_is_byte_exact(world, tmp_path: Path) -> None:
    a_file, b_file = tmp_path / "a.percolab", tmp_path / "b.percolab"
    b = relay_dir(tmp_path / "b")
    summary = js("export", str(a_file), data=world["dir"])
    data = a_file.read_bytes()
    assert data.startswith(MAGIC) and summary["bytes"] == len(data)
    objects = decode_export(data)
    assert summary["objects"] == len(objects)
    ids = {decode(raw).id.hex() for raw in objects}
    assert {world[k] for k in ("lab", "p1", "p2", "p3", "c1", "c2", "t1")} <= ids
    result = js("import", str(a_file), data=b)
    assert result == {"accepted": len(objects), "known": 0, "rejected": [], "unindexed": []}
    run("export", str(b_file), data=b)
    assert b_file.read_bytes() == data
    assert js("list", data=b) == js("list", data=world["dir"])  # same ids, same views
    assert [p["id"] for p in js("list", data=b)["items"]] == [world["p3"], world["p2"],
                                                               world["p1"]]  # fmt: skip
    again = js("import", str(a_file), data=b)
    assert again == {"accepted": 0, "known": len(objects), "rejected": [], "unindexed": []}
    # A lab-only export holds the lab and what lives in it, nothing of the other lab.
    lab_file = tmp_path / "lab.percolab"
    run("export", str(lab_file), "--lab", "Hackerspace Sud", data=world["dir"])
    lab_ids = {decode(raw).id.hex() for raw in decode_export(lab_file.read_bytes())}
    assert world["other_lab"] in lab_ids and world["p3"] in lab_ids
    assert world["p1"] not in lab_ids and world["lab"] not in lab_ids


def test_percolab_home_is_the_default_data_dir(tmp_path: Path) -> None:
    home = tmp_path / "home"
    run("init", "--unencrypted-key", "--name", "Env", home=home)
    assert (home / "member.keys").exists()
    lab = run("lab", "create", "Env Lab", home=home).stdout.strip()
    assert [x["id"] for x in js("lab", "list", data=home)] == [lab]
    # --data-dir wins over PERCOLAB_HOME (and a directory that is not there stays so)
    other = tmp_path / "other"
    assert str(other) in fails("--data-dir", str(other), "lab", "list", home=home)
    assert not other.exists()


# ---- errors: one line on stderr, non-zero exit, no traceback ----------------------------------


def test_bad_arguments(world, tmp_path: Path) -> None:
    d = world["dir"]
    for args in (["list", "--limit", "many"], ["list", "--order", "oldest"], ["frobnicate"],
                 ["post", "--lab", "x"], ["tag", world["p1"]], ["list", "--limit", "0"],
                 ["list", "--limit", "-5"], ["search", "x", "--limit", "201"]):  # fmt: skip
        assert "--help" in fails(*args, data=d, status=2)  # one line, usage status
    assert "stage" in fails("post", "--lab", world["lab"], "--title", "t", "--stage", "soon",
                            data=d)  # fmt: skip
    fails("post", "--lab", "No Such Lab", "--title", "t", data=d)
    fails("post", "--lab", world["lab"], "--title", " ", data=d)
    fails("tag", world["p1"], "!!", data=d)
    fails("show", "xyz", data=d)
    fails("show", "abc", data=d)
    fails("comment", world["p1"], "--body", "x", "--parent", "0" * 64, data=d)
    fails("post", "--lab", "Lab", "--title", "t", data=tmp_path / "no-identity")


def test_non_hex_author_is_a_clean_error(world) -> None:
    fails("list", "--author", "zz", data=world["dir"])


def test_unknown_id(world) -> None:
    assert "no object" in fails("show", "ab" * 32, data=world["dir"])
    fails("show", "abababab", data=world["dir"])
    fails("comment", "cd" * 32, "--body", "x", data=world["dir"])
    fails("retract", "ef" * 32, data=world["dir"])


def test_corrupt_export_file(world, tmp_path: Path) -> None:
    d = relay_dir(tmp_path / "c")
    good = tmp_path / "good.percolab"
    run("export", str(good), data=world["dir"])
    data = good.read_bytes()
    for name, bad in [("magic", b"NOT-AN-EXPORT" + data), ("truncated", data[:-7]),
                      ("empty", b""), ("length", MAGIC + b"\xff\xff\xff\xff")]:  # fmt: skip
        path = tmp_path / f"{name}.percolab"
        path.write_bytes(bad)
        assert str(path) in fails("import", str(path), data=d)
    assert "cannot read" in fails("import", str(tmp_path / "missing.percolab"), data=d)
    # Well framed, but one object damaged: the others are imported, the bad one reported.
    objs = decode_export(data)
    broken = bytearray(objs[1])
    broken[-3] ^= 0xFF
    path = tmp_path / "one-bad.percolab"
    path.write_bytes(
        MAGIC + b"".join(len(o).to_bytes(4, "big") + o for o in [objs[0], bytes(broken), *objs[2:]])
    )
    # Exit status 3: the import stored what it could, refused some.
    proc = run("import", str(path), "--json", data=relay_dir(tmp_path / "d"), ok=False)
    assert proc.returncode == 3 and "1 of" in proc.stderr and len(proc.stderr.splitlines()) == 1
    result = json.loads(proc.stdout)
    assert result["accepted"] == len(objs) - 1 and [r["index"] for r in result["rejected"]] == [1]


@pytest.mark.parametrize("content", [b"garbage\n", b"", b"\x00\xff" * 40,
                                     b"-----BEGIN PRIVATE KEY-----\nAAAA\n"
                                     b"-----END PRIVATE KEY-----\n"])  # fmt: skip
def test_corrupt_member_key_file(tmp_path: Path, content: bytes) -> None:
    d = tmp_path / "k"
    run("init", "--unencrypted-key", "--name", "Key", data=d)
    (d / "member.keys").write_bytes(content)
    assert "key file" in fails("lab", "list", data=d)
    assert "key file" in fails("lab", "create", "X", data=d)


@pytest.mark.parametrize("content", ["[node\n", "node = 5\n", "[node]\nmdns = 'yes'\n",
                                     "[node]\nlisten = '/ip4/1.2.3.4'\n", "[node]\nbogus = 1\n",
                                     "\udcff"])  # fmt: skip
def test_corrupt_config_toml(tmp_path: Path, content: str) -> None:
    d = tmp_path / "cfg"
    d.mkdir()
    (d / "config.toml").write_bytes(content.encode("utf-8", "surrogateescape"))
    err = fails("node", "--no-mdns", "--no-http", "--listen", "/ip4/127.0.0.1/tcp/0", data=d)
    assert "config.toml" in err

"""Issue 21, "No traceback": each input that used to end in a Python traceback, run through
the real `percolab` console script (and the error boundary in process for crash reports)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest

from node.cli import commands as cli
from node.cli import errors as cli_errors
from node.cli.backend import LocalBackend
from node.identity import NODE_KEY_FILE
from node.service.api import ServiceError
from protocols.exportfile import decode_export
from protocols.objects import decode
from tests.node.test_cli import PERCOLAB, fails, js, out, relay_dir, run

REPO = Path(__file__).resolve().parents[2]
NODE_START_S = 30.0
NODE_STOP_S = 15.0
UNUSED_PEER = "12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A member, two labs of one name (but for case), one more lab, a thread and a tag."""
    d = tmp_path_factory.mktemp("w") / "data"
    run("init", "--unencrypted-key", "--name", "Ada", data=d)
    w: dict[str, Any] = {"dir": d}
    w["lab"] = out("lab", "create", "Fablab", "--place", "Lyon", data=d)
    w["twin"] = out("lab", "create", "FABLAB", data=d)
    w["solo"] = out("lab", "create", "Hackerspace Sud", data=d)
    w["p"] = out("post", "--lab", w["lab"], "--title", "Solar oven", data=d)
    w["c1"] = out("comment", w["p"], "--body", "first", data=d)
    w["c2"] = out("comment", w["p"], "--body", "a reply", "--parent", w["c1"], data=d)
    w["t"] = out("tag", w["p"], "solar", "food", data=d)
    return w


def one_line(proc: subprocess.CompletedProcess[Any]) -> str:
    err = proc.stderr if isinstance(proc.stderr, str) else proc.stderr.decode()
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("percolab: error: "), err
    assert "Traceback" not in err
    return lines[0]


def raw_run(args: list[str | bytes], **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
    """The console script with byte arguments (undecodable ones included)."""
    env = {k: v for k, v in os.environ.items() if k != "PERCOLAB_HOME"} | kwargs.pop("env", {})
    return subprocess.run([str(PERCOLAB), *args], capture_output=True, env=env, timeout=60,
                          **kwargs)  # fmt: skip


# ---- show: every kind, under a key named after it ---------------------------------------------


def test_show_a_lab_lists_its_projects(world) -> None:
    shown = js("show", world["lab"], data=world["dir"])
    assert shown["kind"] == "lab" and "project" not in shown
    assert shown["lab"]["name"] == "Fablab" and shown["lab"]["projects"] == 1
    assert [p["id"] for p in shown["projects"]] == [world["p"]]
    assert shown["more_projects"] is False
    text = out("show", world["lab"], data=world["dir"])
    assert "lab Fablab" in text and "Solar oven" in text and "Lyon" in text


def test_show_a_comment_within_its_thread(world) -> None:
    shown = js("show", world["c2"], data=world["dir"])
    assert shown["kind"] == "comment" and shown["comment"]["body"] == "a reply"
    assert shown["target"]["id"] == world["p"] and shown["target"]["title"] == "Solar oven"
    assert [c["id"] for c in shown["thread"]] == [world["c1"]]
    assert [c["id"] for c in shown["thread"][0]["replies"]] == [world["c2"]]
    text = out("show", world["c2"], data=world["dir"])
    assert "on project Solar oven" in text and "> Ada" in text and "- Ada" in text


def test_show_a_tag_with_its_target(world) -> None:
    shown = js("show", world["t"], data=world["dir"])
    assert shown["kind"] == "tag" and shown["tag"]["labels"] == ["solar", "food"]
    assert shown["target"]["id"] == world["p"]
    assert "#solar #food" in out("show", world["t"], data=world["dir"])


def test_show_a_project_keeps_its_shape(world) -> None:
    shown = js("show", world["p"][:10], data=world["dir"])
    assert shown["kind"] == "project" and shown["project"]["title"] == "Solar oven"
    assert set(shown) == {"kind", "project", "tags", "comments", "pledges", "needs", "lineage"}


def test_show_a_profile_and_a_retraction(tmp_path: Path) -> None:
    d = tmp_path / "r"
    run("init", "--unencrypted-key", "--name", "Bea", "--about", "welder", data=d)
    exported = raw_run([b"--data-dir", str(d).encode(), b"export", b"-"]).stdout
    # the device certificate (signed by the root), then the profile (by the device)
    (_, profile) = [decode(raw) for raw in decode_export(exported)]
    shown = js("show", profile.id_hex, data=d)
    assert shown["kind"] == "profile" and shown["profile"]["about"] == "welder"
    assert "about: welder" in out("show", profile.id_hex, data=d)
    lab = out("lab", "create", "Lab", data=d)
    pid = out("post", "--lab", lab, "--title", "Gone", data=d)
    rid = out("retract", pid, data=d)
    shown = js("show", rid, data=d)
    assert shown["kind"] == "retraction" and shown["target"] is None
    assert "not here" in out("show", rid, data=d)


def test_rpc_project_is_for_projects_only(world) -> None:
    backend = LocalBackend(world["dir"])
    try:
        assert backend.call("project", id=world["p"])["project"]["id"] == world["p"]
        with pytest.raises(ServiceError) as exc:
            backend.call("project", id=world["c1"])
        assert exc.value.code == "not_found" and "comment" in exc.value.message
    finally:
        backend.close()


# ---- labs by name -----------------------------------------------------------------------------


def test_two_labs_of_one_name_are_listed_not_guessed(world) -> None:
    err = fails("post", "--lab", "fablab", "--title", "Where?", data=world["dir"])
    assert "2 labs" in err and world["lab"][:12] in err and world["twin"][:12] in err
    fails("list", "--lab", "FabLab", data=world["dir"])
    # A unique name still matches whatever its case.
    run("list", "--lab", "HACKERSPACE sud", data=world["dir"])
    run("list", "--lab", world["twin"][:12], data=world["dir"])


# ---- retract ----------------------------------------------------------------------------------


def test_a_retraction_is_final(tmp_path: Path) -> None:
    d = tmp_path / "r"
    run("init", "--unencrypted-key", "--name", "Bob", data=d)
    lab = out("lab", "create", "Lab", data=d)
    pid = out("post", "--lab", lab, "--title", "Soon gone", data=d)
    rid = out("retract", pid, data=d)
    assert "final" in fails("retract", rid, data=d)


def test_a_lab_with_projects_needs_force(tmp_path: Path) -> None:
    d = tmp_path / "r"
    run("init", "--unencrypted-key", "--name", "Bob", data=d)
    lab = out("lab", "create", "Busy", data=d)
    empty = out("lab", "create", "Empty", data=d)
    out("post", "--lab", lab, "--title", "Still here", data=d)
    err = fails("retract", lab, data=d)
    assert "1 project" in err and "--force" in err
    assert any(x["id"] == lab for x in js("lab", "list", data=d))
    out("retract", empty, data=d)  # nothing in it: no --force needed
    out("retract", lab, "--force", data=d)
    assert js("lab", "list", data=d) == []
    assert [p["title"] for p in js("list", data=d)["items"]] == ["Still here"]


# ---- data directories -------------------------------------------------------------------------


def test_a_mistyped_data_dir_is_not_created(world, tmp_path: Path) -> None:
    typo = tmp_path / "typo"
    for args in (["list"], ["show", world["p"]], ["post", "--lab", "x", "--title", "t"],
                 ["status"], ["lab", "follow", world["lab"]], ["import", "x"],
                 ["tui"]):  # fmt: skip
        assert "no data directory" in fails(*args, data=typo)
        assert not typo.exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "holds no identity" in fails("list", data=empty)
    assert list(empty.iterdir()) == []


def test_a_data_dir_that_is_a_file_or_under_proc(tmp_path: Path) -> None:
    f = tmp_path / "file"
    f.write_text("not a directory")
    for args in (["list"], ["init", "--unencrypted-key", "--name", "X"], ["node", "--no-http"],
                 ["lab", "list"]):
        assert "not a directory" in fails(*args, data=f)
    for d in (Path("/proc"), Path("/proc/percolab-nowhere")):
        fails("list", data=d)
        fails("init", "--unencrypted-key", "--name", "X", data=d)
        fails("node", "--no-mdns", "--no-http", "--listen", "/ip4/127.0.0.1/tcp/0", data=d)


def test_odd_data_dir_values(tmp_path: Path) -> None:
    assert "empty" in fails("list", "--data-dir", "", status=2)
    assert "home directory" in fails("list", "--data-dir", "~nobody-percolab/x")
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    fails("list", "--data-dir", str(loop / "d"))


def test_new_data_dirs_are_private(tmp_path: Path) -> None:
    d = tmp_path / "new" / "data"
    run("init", "--unencrypted-key", "--name", "Private", data=d)
    assert stat.S_IMODE(d.stat().st_mode) == 0o700


def test_non_utf8_arguments_and_names(world, tmp_path: Path) -> None:
    d = str(world["dir"]).encode()
    proc = raw_run([b"--data-dir", d, b"post", b"--lab", world["lab"].encode(), b"--title",
                    b"caf\xe9"])  # fmt: skip
    assert proc.returncode == 2 and "UTF-8" in one_line(proc)
    bad_dir = os.fsencode(tmp_path) + b"/d\xff"
    for args in ([b"list"], [b"init", b"--name", b"X"]):
        proc = raw_run([b"--data-dir", bad_dir, *args])
        assert proc.returncode == 2 and "UTF-8" in one_line(proc)
    assert list(tmp_path.iterdir()) == []
    proc = raw_run([b"list"], env={"PERCOLAB_HOME": os.fsdecode(bad_dir)})
    assert proc.returncode == 1 and "UTF-8" in one_line(proc)
    # A file name may hold any bytes: it is written there, and echoed back escaped.
    name = os.fsencode(tmp_path) + b"/out\xff.percolab"
    proc = raw_run([b"--data-dir", d, b"export", name])
    assert proc.returncode == 0 and b"\\udcff" in proc.stdout
    assert os.path.exists(name)


def _readonly_cmd(d: Path, how: str) -> list[str]:
    """A prefix that runs the CLI where `d` cannot be written."""
    if os.geteuid() != 0:
        return []
    if how == "permissions":  # root without capabilities honours the mode bits
        return ["setpriv", "--bounding-set=-all"]
    return ["unshare", "--mount", "sh", "-c", f'mount --bind -o ro "{d}" "{d}" && exec "$@"',
            "sh"]  # fmt: skip


@pytest.mark.parametrize("how", ["permissions", "mount"])
def test_a_read_only_data_dir_reads(world, tmp_path: Path, how: str) -> None:
    if os.geteuid() == 0 and not shutil.which("setpriv" if how == "permissions" else "unshare"):
        pytest.skip("no way to take write access away from root here")
    if os.geteuid() != 0 and how == "mount":
        pytest.skip("a read-only mount needs root")
    d = tmp_path / "ro"
    shutil.copytree(world["dir"], d)
    if how == "permissions":  # no lock file (never used by a node): nothing to lock
        (d / "node.lock").unlink()
    if how == "permissions":
        for p in [d, *d.rglob("*")]:
            p.chmod(stat.S_IMODE(p.stat().st_mode) & ~0o222)
    prefix = _readonly_cmd(d, how)
    probe = subprocess.run([*prefix, "touch", str(d / "probe")], capture_output=True)
    if probe.returncode == 0:
        pytest.skip(f"could not make {d} read-only here ({how})")

    def ro(*args: str) -> subprocess.CompletedProcess[str]:
        cmd = [*prefix, str(PERCOLAB), "--data-dir", str(d), *args]
        return subprocess.run(cmd, capture_output=True, text=True, errors="surrogateescape",
                              timeout=60)  # fmt: skip

    try:
        listed = ro("list", "--json")
        assert listed.returncode == 0, listed.stderr
        assert [p["id"] for p in json.loads(listed.stdout)["items"]] == [world["p"]]
        for args in (["show", world["c1"]], ["search", "solar"], ["status"], ["lab", "list"],
                     ["show", world["lab"]]):  # fmt: skip
            proc = ro(*args)
            assert proc.returncode == 0 and proc.stderr == "", (args, proc.stderr)
        exported = ro("export", "-")
        assert exported.returncode == 0 and exported.stdout.startswith("PERCOLAB")
        for args in (["post", "--lab", world["solo"], "--title", "t"], ["lab", "create", "X"],
                     ["comment", world["p"], "--body", "x"], ["retract", world["t"]],
                     ["lab", "follow", world["solo"]],
                     ["node", "--no-mdns", "--no-http", "--listen",
                      "/ip4/127.0.0.1/tcp/0"]):  # fmt: skip
            proc = ro(*args)
            assert proc.returncode == 1 and "read-only" in one_line(proc), args
    finally:
        for p in [d, *d.rglob("*")]:
            p.chmod(stat.S_IMODE(p.stat().st_mode) | 0o200)


# ---- node options -----------------------------------------------------------------------------


@pytest.mark.parametrize(("args", "named"), [
    (["--listen", "garbage"], "--listen"),
    (["--listen", "/ip4/127.0.0.1/udp/4001"], "--listen"),
    (["--listen", "/ip4/127.0.0.1/tcp/99999"], "--listen"),
    (["--http", "nonsense"], "--http"),
    (["--http", "127.0.0.1:65536"], "--http"),
    (["--http", "bad host:80"], "--http"),
    (["--bootstrap", "junk"], "--bootstrap"),
    (["--bootstrap", "/ip4/127.0.0.1/tcp/4001"], "--bootstrap"),  # no /p2p/ peer id
    (["--log-level", "chatty"], "--log-level"),
])  # fmt: skip
def test_malformed_node_options_stop_the_start(tmp_path: Path, args: list[str],
                                               named: str) -> None:  # fmt: skip
    d = tmp_path / "n"
    base = {"--listen": "/ip4/127.0.0.1/tcp/0", "--http": "127.0.0.1:0"}
    argv = [*args]
    for option, value in base.items():
        if option not in args:
            argv += [option, value]
    started = time.monotonic()
    err = fails("node", "--no-mdns", *argv, data=d, status=2 if named == "--log-level" else 1)
    assert named in err
    assert time.monotonic() - started < 20  # refused at start, not after a wait
    assert not (d / "node.sock").exists()


@pytest.mark.parametrize(("setting", "value"), [
    ("listen", '["/ip4/1.2.3.4/tcp/x"]'),
    ("bootstrap", '["/dns4/example.org/tcp/4001"]'),
    ("http", '"localhost"'),
])  # fmt: skip
def test_malformed_config_addresses_stop_the_start(tmp_path: Path, setting: str,
                                                   value: str) -> None:  # fmt: skip
    d = tmp_path / "cfg"
    d.mkdir()
    (d / "config.toml").write_text(f"[node]\n{setting} = {value}\n")
    err = fails("node", "--no-mdns", data=d)
    assert f"config.toml: node.{setting}" in err


def test_a_node_tightens_its_data_dir(tmp_path: Path) -> None:
    """Valid addresses start the node; an existing world-readable directory becomes 0700."""
    d = tmp_path / "open"
    d.mkdir(mode=0o755)
    d.chmod(0o755)
    bootstrap = f"/ip4/127.0.0.1/tcp/9/p2p/{UNUSED_PEER}"
    proc = subprocess.Popen(
        [str(PERCOLAB), "--data-dir", str(d), "node", "--no-mdns", "--no-http",
         "--listen", "/ip4/127.0.0.1/tcp/0", "--bootstrap", bootstrap],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + NODE_START_S
        while not (d / "node.sock").exists():
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "the node did not start"
            time.sleep(0.05)
        assert stat.S_IMODE(d.stat().st_mode) == 0o700
        assert "was mode 0755" in (d / "node.log").read_text()
        assert (d / NODE_KEY_FILE).is_file()
        assert js("status", data=d)["running"] is True  # a node's directory needs no init
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(NODE_STOP_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.stderr is not None and b"Traceback" not in proc.stderr.read()


# ---- smaller ones -----------------------------------------------------------------------------


def test_export_dash_is_stdout_and_import_dash_is_stdin(world, tmp_path: Path) -> None:
    to_file = tmp_path / "all.percolab"
    run("export", str(to_file), data=world["dir"])
    proc = raw_run([b"--data-dir", str(world["dir"]).encode(), b"export", b"-"])
    assert proc.returncode == 0 and proc.stdout == to_file.read_bytes()
    assert not Path("-").exists() and not (tmp_path / "-").exists()
    b = relay_dir(tmp_path / "b")
    into = raw_run([b"--data-dir", str(b).encode(), b"import", b"-", b"--json"],
                   input=proc.stdout)  # fmt: skip
    assert into.returncode == 0, into.stderr
    objects = decode_export(to_file.read_bytes())
    assert json.loads(into.stdout)["accepted"] == len(objects)
    assert js("status", data=b)["objects"] == len(objects)


def test_version() -> None:
    assert run("--version").stdout.strip() == f"percolab {version('percolab')}"


def test_license_is_mit() -> None:
    text = (REPO / "LICENSE").read_text()
    assert text.startswith("MIT License") and "Percolab contributors" in text


def test_node_key_name_matches_the_runtime() -> None:
    from node.runtime import NODE_KEY_FILE as RUNTIME_NODE_KEY

    assert RUNTIME_NODE_KEY == NODE_KEY_FILE


# ---- the boundary: an unexpected exception is a crash report ---------------------------------


def test_a_bug_is_one_line_and_a_crash_report(world, tmp_path: Path) -> None:
    """In a real process: `status` made to raise, as a bug would."""
    d = tmp_path / "crash"
    shutil.copytree(world["dir"], d)
    code = ("import sys, node.cli.commands as c\n"
            "def boom(b, a): raise ZeroDivisionError('planted bug')\n"
            "c.DATA_COMMANDS['status'] = boom\n"
            f"sys.exit(c.main(['--data-dir', {str(d)!r}, 'status']))\n")  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, cwd=REPO)  # fmt: skip
    assert proc.returncode == cli_errors.EXIT_INTERNAL
    line = one_line(proc)
    assert "ZeroDivisionError: planted bug" in line
    reports = list(d.glob(f"{cli_errors.CRASH_PREFIX}*.txt"))
    assert len(reports) == 1 and str(reports[0]) in line
    report = reports[0].read_text()
    assert "Traceback" in report and "planted bug" in report and "'status'" in report
    assert stat.S_IMODE(reports[0].stat().st_mode) == 0o600


def test_a_crash_report_falls_back_to_the_temp_dir(monkeypatch, tmp_path: Path, capsys) -> None:
    """No usable data directory (not there): the report goes to the temp directory."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(temp))

    def boom(data_dir: Path) -> bool:
        raise KeyError("title")

    monkeypatch.setattr(cli, "holds_identity", boom)
    status = cli.main(["--data-dir", str(tmp_path / "missing"), "list"])
    assert status == cli_errors.EXIT_INTERNAL
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "KeyError" in err
    reports = list(temp.glob(f"{cli_errors.CRASH_PREFIX}*.txt"))
    assert len(reports) == 1 and str(reports[0]) in err
    assert not (tmp_path / "missing").exists()


def test_error_lines_stay_one_line() -> None:
    line = cli_errors._one_line("a\nb\u2028c\x1b[31md\udcff" + "x" * 10_000)
    assert "\n" not in line and "\u2028" not in line and "\x1b" not in line
    assert len(line.splitlines()) == 1 and len(line) < cli_errors.MAX_ERROR_CHARS + 50
    assert line.startswith("a\\nb\\u2028c\\x1b[31md\\udcff")

"""Keys at rest through the real `percolab` entry point: init with a passphrase or the
explicit unencrypted mode, `identity show|backup|restore`, migration of a legacy member.key,
and the one-line errors (no traceback, exit 1)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

from node.identity import create_member_key
from node.keys import keyfile

PERCOLAB = Path(sys.prefix) / "bin" / "percolab"
PASS = "lab passphrase"
ENV_NAMES = ("PERCOLAB_HOME", "PERCOLAB_PASSPHRASE", "PERCOLAB_PASSPHRASE_FD",
             "PERCOLAB_BACKUP_PASSPHRASE")  # fmt: skip


def run(data: Path, *args: str, passphrase: str | None = None,
        status: int = 0) -> subprocess.CompletedProcess[str]:  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k not in ENV_NAMES}
    if passphrase is not None:
        env["PERCOLAB_PASSPHRASE"] = passphrase
    proc = subprocess.run([str(PERCOLAB), "--data-dir", str(data), *args], env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == status, f"{args}: {proc.returncode} {proc.stderr}"
    return proc


def error(data: Path, *args: str, passphrase: str | None = None) -> str:
    proc = run(data, *args, passphrase=passphrase, status=1)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("percolab: error: "), proc.stderr
    return lines[0]


def show(data: Path) -> Any:
    return json.loads(run(data, "identity", "show", "--json").stdout)


def test_encrypted_init_sign_and_errors(tmp_path: Path) -> None:
    d = tmp_path / "d"
    assert "PERCOLAB_PASSPHRASE" in error(d, "init", "--name", "Ada")
    assert not (d / "member.keys").exists()
    run(d, "init", "--name", "Ada", passphrase=PASS)
    shown = show(d)
    assert shown["encrypted"] and shown["file"] == str(d / "member.keys")
    assert len(shown["member"]) == 64 and shown["fingerprint"].count("-") == 3
    assert "warning" not in shown
    run(d, "lab", "list")  # reading needs no passphrase
    assert "needs a passphrase" in error(d, "lab", "create", "Fab")
    before = (d / "member.keys").read_bytes()
    assert f"wrong passphrase for {d / 'member.keys'}" in error(d, "lab", "create", "Fab",
                                                               passphrase="nope")  # fmt: skip
    assert (d / "member.keys").read_bytes() == before
    pw = tmp_path / "pw"
    pw.write_text(PASS + "\n")
    run(d, "--passphrase-file", str(pw), "lab", "create", "Fab")
    assert "key_warning" not in json.loads(run(d, "status", "--json").stdout)
    assert "already" in error(d, "init", "--name", "Again", passphrase=PASS)
    # A node does not start without the passphrase, in one line.
    assert "needs a passphrase" in error(d, "node", "--no-http", "--no-mdns", "--listen",
                                         "/ip4/127.0.0.1/tcp/0")  # fmt: skip


def test_unencrypted_is_explicit_and_flagged(tmp_path: Path) -> None:
    d = tmp_path / "u"
    run(d, "init", "--unencrypted-key", "--name", "Lab node")
    assert not keyfile.is_encrypted(d / "member.keys")
    run(d, "lab", "create", "Fab")  # no passphrase needed
    assert "unencrypted" in json.loads(run(d, "status", "--json").stdout)["key_warning"]
    shown = show(d)
    assert not shown["encrypted"] and "unencrypted" in shown["warning"]
    # The config's explicit choice serves an init without the flag.
    c = tmp_path / "c"
    c.mkdir()
    (c / "config.toml").write_text("[identity]\nunencrypted = true\n")
    run(c, "init", "--name", "Configured")
    assert not show(c)["encrypted"]


def test_open_permissions_are_fixed_and_said(tmp_path: Path) -> None:
    d = tmp_path / "p"
    run(d, "init", "--unencrypted-key", "--name", "Perm")
    (d / "member.keys").chmod(0o644)
    proc = run(d, "identity", "show")
    assert "fixed permissions of" in proc.stderr
    assert stat.S_IMODE((d / "member.keys").stat().st_mode) == 0o600


def test_legacy_member_key_is_migrated(tmp_path: Path) -> None:
    d = tmp_path / "legacy"
    old = create_member_key(d)
    public = old.public_key().public_bytes_raw().hex()
    shown = show(d)
    assert shown["member"] == public and not shown["encrypted"] and "legacy" in shown["warning"]
    proc = run(d, "lab", "create", "Fab", passphrase=PASS)
    assert "member key migrated" in proc.stderr and "removed" in proc.stderr
    assert not (d / "member.key").exists()
    shown = show(d)
    assert shown["member"] == public and shown["encrypted"]


def test_backup_and_restore(tmp_path: Path) -> None:
    d = tmp_path / "d"
    run(d, "init", "--name", "Ada", passphrase=PASS)
    member = show(d)["member"]
    bpw = tmp_path / "bpw"
    bpw.write_text("backup passphrase\n")
    target = tmp_path / "ada.backup"
    made = json.loads(run(d, "identity", "backup", str(target), "--backup-passphrase-file",
                          str(bpw), "--json", passphrase=PASS).stdout)  # fmt: skip
    assert made["file"] == str(target) and len(made["phrase"].replace(" ", "")) == 60
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert "already exists" in error(d, "identity", "backup", str(target),
                                     "--backup-passphrase-file", str(bpw), passphrase=PASS)
    # From the file, encrypted with a new passphrase.
    r1 = tmp_path / "r1"
    run(r1, "identity", "restore", str(target), "--backup-passphrase-file", str(bpw),
        passphrase="new pass")  # fmt: skip
    assert show(r1) | {"file": ""} == show(d) | {"file": ""}
    assert keyfile.load(r1 / "member.keys", "new pass").public_key().hex() == member
    # From the phrase; then a phrase with one wrong character is named as such.
    r2 = tmp_path / "r2"
    run(r2, "identity", "restore", "--phrase", made["phrase"], "--unencrypted-key")
    assert show(r2)["member"] == member
    chars = made["phrase"]
    typo = chars[:3] + ("Z" if chars[3] != "Z" else "Y") + chars[4:]
    message = error(tmp_path / "r3", "identity", "restore", "--phrase", typo,
                    "--unencrypted-key")  # fmt: skip
    assert "mistyped character" in message and "character 4 of group 1" in message
    assert "already has a member key" in error(r2, "identity", "restore", "--phrase",
                                               made["phrase"], "--unencrypted-key")
    wrong = tmp_path / "wrong"
    wrong.write_text("not it\n")
    assert "wrong passphrase" in error(tmp_path / "r4", "identity", "restore", str(target),
                                       "--backup-passphrase-file", str(wrong),
                                       "--unencrypted-key")  # fmt: skip
    assert not (tmp_path / "r4" / "member.keys").exists()

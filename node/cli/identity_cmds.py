"""`percolab identity show|backup|restore`, and the passphrase side of `init` (docs/keys.md);
`identity rotate` is in node/cli/device_cmds.py (it needs the store).

The key commands work on the key files alone: they never open the store, so they run next to
a running node (restore excepted: a node must not be running while its key changes).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from node.cli.backend import data_dir_lock
from node.cli.errors import CliError
from node.identity import fingerprint
from node.keys import backup, passphrase
from node.keys import member as member_keys
from node.keys.keyfile import UNENCRYPTED, KeyRing, Secret
from node.keys.member import KeyState
from node.keys.phrase import decode_phrase, encode_phrase

log = logging.getLogger(__name__)
ENV_BACKUP_PASSPHRASE = "PERCOLAB_BACKUP_PASSPHRASE"


def add_identity_commands(add: Callable[[str, str], argparse.ArgumentParser],
                          common: argparse.ArgumentParser) -> None:  # fmt: skip
    s = add("identity", "show, back up or restore your member key")
    sub = s.add_subparsers(dest="identity_cmd", metavar="ACTION", required=True)
    sub.add_parser("show", parents=[common], help="member id, fingerprint, key file, encryption")
    b = sub.add_parser("backup", parents=[common],
                       help="write an encrypted backup of the key ring; print a recovery phrase")
    b.add_argument("file", help="the backup file to create (never overwritten)")
    b.add_argument("--no-phrase", action="store_true", help="do not print the recovery phrase")
    r = sub.add_parser("restore", parents=[common],
                       help="restore the key ring from a backup file or a recovery phrase into "
                            "a data directory that has no member key")  # fmt: skip
    what = r.add_mutually_exclusive_group(required=True)
    what.add_argument("file", nargs="?", help="a backup written by `identity backup`")
    what.add_argument("--phrase", help="the recovery phrase (60 characters, spaces ignored)")
    r.add_argument("--unencrypted-key", action="store_true",
                   help="store the restored key unencrypted (headless lab nodes only)")
    for p in (b, r):
        p.add_argument("--backup-passphrase-file", metavar="FILE",
                       help="the backup's passphrase (else $PERCOLAB_BACKUP_PASSPHRASE, or asked)")
    b.add_argument("--same-passphrase", action="store_true",
                   help="encrypt the backup with the member key's own passphrase")
    sub.add_parser("rotate", parents=[common],
                   help="replace your root key with a new one (the old one signs it over)")


def _print(args: argparse.Namespace, data: dict[str, Any], human: str) -> None:
    print(json.dumps(data) if getattr(args, "json", False) else human)


def new_key_params(data_dir: Path, unencrypted: bool) -> dict[str, Any]:
    """`init`'s choice for the new key, as parameters of the init call: unencrypted when
    asked for, else a passphrase from the usual sources (asked twice on a terminal); {} when
    there is none, so the node applies its own (config) or says how to give one."""
    if member_keys.key_state(data_dir) is not KeyState.NONE:
        return {}  # init fails with "already exists" before any passphrase is asked
    if unencrypted:
        return {"unencrypted": True}
    found = passphrase.non_interactive()
    if found is None and passphrase.can_prompt():
        found = passphrase.prompt("Passphrase for your new member key", confirm=True)
    return {} if found is None else {"passphrase": found}


def _backup_secret(args: argparse.Namespace, *, new: bool) -> str:
    if args.backup_passphrase_file:
        return passphrase.read_passphrase_file(Path(args.backup_passphrase_file))
    if getattr(args, "same_passphrase", False):
        found = passphrase.non_interactive()
        if found is None:
            raise CliError("--same-passphrase: the member key's passphrase is needed from "
                           f"a non-interactive source ({passphrase.HOW_TO_PROVIDE})")
        return found
    if os.environ.get(ENV_BACKUP_PASSPHRASE):
        return os.environ[ENV_BACKUP_PASSPHRASE]
    if passphrase.can_prompt():
        return passphrase.prompt("Passphrase for the backup", confirm=new)
    raise CliError("the backup needs a passphrase: --backup-passphrase-file FILE, "
                   f"{ENV_BACKUP_PASSPHRASE}, --same-passphrase (backup only), or a terminal")


def cmd_show(data_dir: Path, args: argparse.Namespace) -> None:
    state = member_keys.key_state(data_dir)
    public = member_keys.root_public(data_dir)
    if public is None:
        raise CliError(f"{data_dir} holds no member key; `percolab init --name NAME` creates one")
    path = (member_keys.pem_path(data_dir) if state is KeyState.LEGACY_PEM
            else member_keys.ring_path(data_dir))  # fmt: skip
    data = {"member": public.hex(), "fingerprint": fingerprint(public), "file": str(path),
            "encrypted": state is KeyState.ENCRYPTED, "format": state.value}  # fmt: skip
    warning = member_keys.key_warning(data_dir)
    lines = [f"member      {data['member']}", f"fingerprint {data['fingerprint']}",
             f"key file    {path}",
             f"encrypted   {'yes' if data['encrypted'] else 'NO (' + state.value + ')'}"]
    if warning:
        data["warning"] = warning
        lines.append(f"warning     {warning}")
    _print(args, data, "\n".join(lines))


def cmd_backup(data_dir: Path, args: argparse.Namespace) -> None:
    ring = member_keys.unlock(data_dir)
    if ring is None:
        raise CliError(f"{data_dir} holds no member key to back up")
    target = Path(args.file)
    if target.exists():
        raise CliError(f"{target} already exists; a backup never overwrites a file")
    backup.write_backup(target, ring, _backup_secret(args, new=True))
    phrase = None if args.no_phrase else encode_phrase(ring.seeds["root"])
    data = {"file": str(target), "phrase": phrase}
    human = f"backup written to {target} (encrypted; read back and checked)"
    if phrase:
        human += ("\nrecovery phrase of your root key (write it down, keep it offline; anyone "
                  f"holding it can sign as you):\n\n    {phrase}\n")
    _print(args, data, human)


def cmd_restore(data_dir: Path, args: argparse.Namespace) -> None:
    if member_keys.key_state(data_dir) is not KeyState.NONE:
        raise CliError(f"{data_dir} already has a member key; restore into a data directory "
                       "without one")  # fmt: skip
    with data_dir_lock(data_dir) as free:
        if not free:
            raise CliError(f"a node is running for {data_dir}; stop it before restoring")
        if args.phrase is not None:
            ring = KeyRing({"root": decode_phrase(args.phrase)})
        else:
            ring = backup.read_backup(Path(args.file), _backup_secret(args, new=False))
        secret: Secret
        if args.unencrypted_key:
            secret = UNENCRYPTED
        else:
            found = passphrase.non_interactive()
            if found is None and passphrase.can_prompt():
                found = passphrase.prompt("Passphrase for the restored member key", confirm=True)
            secret = found if found is not None else member_keys.secret_for_new_key(data_dir)
        member_keys.create(data_dir, secret, ring)
    public = ring.public_key()
    how = "encrypted" if secret is not UNENCRYPTED else "UNENCRYPTED, as asked"
    path = member_keys.ring_path(data_dir)
    data = {"member": public.hex(), "fingerprint": fingerprint(public), "file": str(path),
            "encrypted": secret is not UNENCRYPTED}  # fmt: skip
    _print(args, data, f"restored member {fingerprint(public)} into {path} ({how})")


def run_identity(data_dir: Path, args: argparse.Namespace) -> int:
    {"show": cmd_show, "backup": cmd_backup, "restore": cmd_restore}[args.identity_cmd](
        data_dir, args
    )
    return 0


class StderrNotices(logging.Handler):
    """Warnings of node.keys (fixed permissions, a migration) as one line on stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(Exception):  # a closed stderr: no crash for a notice
            print(f"percolab: warning: {record.getMessage()}", file=sys.stderr)


def show_key_notices() -> None:
    logger = logging.getLogger("node.keys")
    if not any(isinstance(h, StderrNotices) for h in logger.handlers):
        handler = StderrNotices(logging.WARNING)
        logger.addHandler(handler)

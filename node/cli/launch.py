"""Long-running commands: `percolab node`, `percolab tui`, `percolab demo`, and `percolab`
with no command (an embedded node in a child process plus the TUI on it).

The embedded node runs as a child process, not a thread: DESIGN.md measured CPU work on the
trio side freezing a same-process UI (≤15 ms with a thread, 0 with a process), and a process
keeps libp2p's and LMDB's state out of the TUI entirely.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path

from node.cli.backend import DataDirError, data_dir_lock, data_dir_writable, prepare_data_dir
from node.cli.process import (
    NODE_START_TIMEOUT_S,
    socket_answers,
    spawn_node,
    stop_node,
    wait_for_socket,
)
from node.config import (
    CONFIG_FILE,
    LOG_FILE,
    SOCKET_FILE,
    STORE_DIR,
    Config,
    ConfigError,
    check_bootstrap_addr,
    check_http_addr,
    check_listen_addr,
    load_config,
    load_extensions,
)
from node.identity import tighten_private_dir
from node.keys import member as member_keys
from node.keys import passphrase
from node.keys.member import KeyState

log = logging.getLogger(__name__)
# A CLI command (status, post...) holds the data directory while it reads or writes the store
# itself: a node started meanwhile waits for it this long rather than failing at once.
DATA_DIR_WAIT_S = 10.0
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
UNLOCK_LATER = "--unlock-later"


def add_arguments(add: Callable[[str, str], argparse.ArgumentParser]) -> None:
    s = add("node", "run the node headless (a lab's always-on node)")
    s.add_argument("--listen", action="append", metavar="MULTIADDR",
                   help="listen address (repeatable; default /ip4/0.0.0.0/tcp/4001)")
    s.add_argument("--bootstrap", action="append", metavar="MULTIADDR",
                   help="peer to dial at start (repeatable; also node.bootstrap in config)")
    s.add_argument("--no-mdns", action="store_true", help="no LAN discovery")
    s.add_argument("--http", metavar="HOST:PORT", help="HTTP API address (default 127.0.0.1:8480)")
    s.add_argument("--no-http", action="store_true", help="no HTTP API")
    s.add_argument("--log-stderr", action="store_true", help="also log to stderr")
    s.add_argument("--log-level", default="INFO", type=str.upper, choices=LOG_LEVELS)
    # The app's embedded node: an encrypted key without a passphrase at hand does not stop
    # the start; the node serves reads and waits for the `unlock` RPC (the TUI asks).
    s.add_argument(UNLOCK_LATER, action="store_true", help=argparse.SUPPRESS)
    add("tui", "open the TUI on the running node of the data directory")
    s = add("demo", "three local lab nodes with sample projects, and the TUI on one")
    s.add_argument("--no-tui", action="store_true", help="seed and keep running, no TUI")


def setup_logging(data_dir: Path, *, stderr: bool, level: str = "INFO") -> None:
    """Logs go to a file in the data directory; to stderr only when asked. Installing a
    root handler also stops libp2p's warnings reaching stderr via the last-resort handler."""
    prepare_data_dir(data_dir)
    handlers: list[logging.Handler] = [logging.FileHandler(data_dir / LOG_FILE)]
    if stderr:
        handlers.append(logging.StreamHandler(sys.stderr))
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO), handlers=handlers, force=True,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )  # fmt: skip
    logging.captureWarnings(True)


def node_addresses(
    data_dir: Path, args: argparse.Namespace, cfg: Config
) -> tuple[list[str], list[str], str | None]:
    """(listen, bootstrap, http) from the options and the config, each checked: a malformed
    one stops the start with one line naming where it came from."""

    def checked(check: Callable[[str], str], values: list[str], source: str) -> list[str]:
        try:
            return [check(v) for v in values]
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from None

    conf = f"{data_dir / CONFIG_FILE}: node."
    listen = (checked(check_listen_addr, args.listen, "--listen") if args.listen
              else checked(check_listen_addr, cfg.listen, conf + "listen"))  # fmt: skip
    bootstrap = (checked(check_bootstrap_addr, args.bootstrap or [], "--bootstrap")
                 + checked(check_bootstrap_addr, cfg.bootstrap, conf + "bootstrap"))  # fmt: skip
    http = None if args.no_http else (args.http or cfg.http)
    if http is not None:
        checked(check_http_addr, [http], "--http" if args.http else conf + "http")
    return listen, bootstrap, http


def prepare_node_dir(data_dir: Path) -> None:
    """The node writes its store, keys, log and socket here: create it (0700), or refuse a
    read-only one at once rather than start a node that dies."""
    prepare_data_dir(data_dir)
    if not data_dir_writable(data_dir):
        raise DataDirError(f"{data_dir} is read-only: a node needs to write there")


def run_node(data_dir: Path, args: argparse.Namespace) -> int:
    cfg = load_config(data_dir)
    listen, bootstrap, http = node_addresses(data_dir, args, cfg)
    prepare_node_dir(data_dir)
    setup_logging(data_dir, stderr=args.log_stderr, level=args.log_level)
    old_mode = tighten_private_dir(data_dir)
    if old_mode is not None:
        log.warning("data directory %s was mode %04o, open to other users; now %04o",
                    data_dir, old_mode, old_mode & 0o700)  # fmt: skip
    # The passphrase is checked now (a wrong one stops the start with one line), and a
    # legacy member.key is migrated when a passphrase is at hand. The app's node starts
    # locked instead when it has none (node/service/unlock_ops.py).
    if (getattr(args, "unlock_later", False)
            and member_keys.key_state(data_dir) is KeyState.ENCRYPTED
            and passphrase.non_interactive() is None):  # fmt: skip
        log.info("the member key is locked: reading works, signing waits for its passphrase "
                 "(the app asks for it; RPC unlock)")  # fmt: skip
    else:
        member_keys.unlock(data_dir)
    warning = member_keys.key_warning(data_dir)
    if warning:
        log.warning("%s", warning)

    import trio

    from node.runtime import NodeOptions, serve_until_signal
    from node.store.store import Store

    if cfg.extensions:
        log.info("extensions loaded: %s", ", ".join(load_extensions(data_dir)))
    opts = NodeOptions(
        data_dir=data_dir,
        listen=listen,
        listen_explicit=bool(args.listen) or cfg.listen_explicit,  # else: may move if taken
        bootstrap=bootstrap,
        mdns=cfg.mdns and not args.no_mdns,
        http=http,
    )
    deadline, waited = time.monotonic() + DATA_DIR_WAIT_S, False
    while True:
        with data_dir_lock(data_dir) as free:
            if free:
                store = Store(data_dir / STORE_DIR)
                try:
                    trio.run(serve_until_signal, opts, store)
                finally:
                    store.close()
                return 0
        # Held: by a node (its socket answers), or by a CLI command for a moment.
        if socket_answers(data_dir / SOCKET_FILE) or time.monotonic() > deadline:
            raise ConfigError(f"a node is already running for {data_dir}")
        if not waited:
            log.info("%s is in use by a command; waiting for it (up to %.0f s)",
                     data_dir, DATA_DIR_WAIT_S)  # fmt: skip
            waited = True
        time.sleep(0.05)


def run_app(data_dir: Path) -> int:
    """`percolab`: attach to this data directory's node, starting one if none runs."""
    from tui.app import run_tui

    sock = data_dir / SOCKET_FILE
    proc = None
    with data_dir_lock(data_dir) as free:
        pass
    if free:
        prepare_node_dir(data_dir)  # a read-only directory: one line, not a node that dies
        proc = spawn_node(data_dir, [UNLOCK_LATER], passphrase=_passphrase_for_node(data_dir))
    try:
        wait_for_socket(sock, proc, NODE_START_TIMEOUT_S)
        return run_tui(sock)
    finally:
        if proc is not None:
            stop_node(proc)


def _passphrase_for_node(data_dir: Path) -> str | None:
    """The passphrase the app hands its node (through a pipe, never argv), from a source
    that asks nothing ($PERCOLAB_PASSPHRASE, --passphrase-file): checked here against an
    encrypted key, so a wrong one is said on the terminal before the TUI opens. None: nothing
    is asked on the terminal; the node starts locked and the TUI asks for the passphrase (its
    unlock screen), or its onboarding form has one chosen for a new identity."""
    found = passphrase.non_interactive()
    if found is not None and member_keys.key_state(data_dir) is KeyState.ENCRYPTED:
        member_keys.unlock(data_dir, interactive=False)
    return found


def run_command(command: str, data_dir: Path, args: argparse.Namespace) -> int:
    if command == "node":
        return run_node(data_dir, args)
    if command == "tui":
        from tui.app import run_tui

        with data_dir_lock(data_dir) as free:
            pass
        if free:
            raise ConfigError(
                f"no node is running for {data_dir}: start one with `percolab node`, "
                "or run `percolab` to start one with the app"
            )
        wait_for_socket(data_dir / SOCKET_FILE, None, NODE_START_TIMEOUT_S)
        return run_tui(data_dir / SOCKET_FILE)
    if command == "demo":
        from node.cli.demo import run_demo

        return run_demo(no_tui=args.no_tui)
    if command == "app":
        return run_app(data_dir)
    raise ConfigError(f"unknown command {command}")

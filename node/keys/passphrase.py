"""Where a passphrase comes from, in this order: `--passphrase-file FILE`, the
PERCOLAB_PASSPHRASE environment variable, an inherited file descriptor named by
PERCOLAB_PASSPHRASE_FD (how the app hands it to its node child without argv or environment
value), or a prompt when stdin is a terminal.

A process asks at most once: the passphrase found is kept for the process (a descriptor can
be read only once anyway).
"""

from __future__ import annotations

import contextlib
import getpass
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from node.keys.keyfile import KeyFileError

log = logging.getLogger(__name__)

ENV_PASSPHRASE: Final = "PERCOLAB_PASSPHRASE"
ENV_PASSPHRASE_FD: Final = "PERCOLAB_PASSPHRASE_FD"
# A passphrase file or descriptor holds one line; more is not a passphrase.
MAX_PASSPHRASE_BYTES: Final = 4096
HOW_TO_PROVIDE: Final = (
    "set PERCOLAB_PASSPHRASE, pass --passphrase-file FILE, or run in a terminal to be asked"
)


class NoPassphrase(KeyFileError):
    """A passphrase is needed and no source gives one."""


@dataclass
class _Process:
    file: Path | None = None
    cached: str | None = None
    fd_read: bool = False


_process = _Process()


def set_passphrase_file(path: Path | None) -> None:
    """`--passphrase-file`: the first source from now on in this process."""
    _process.file = path
    _process.cached = None


def forget() -> None:
    """Drop the kept passphrase (tests; after a wrong one, so the next call asks again)."""
    _process.cached = None


def remember(text: str) -> None:
    """Keep `text`, checked against the key by the caller, as this process's passphrase (one
    given over the node's control socket after it started locked)."""
    _process.cached = text


def _one_line(raw: bytes, where: str) -> str:
    if len(raw) > MAX_PASSPHRASE_BYTES:
        raise KeyFileError(f"{where} holds more than {MAX_PASSPHRASE_BYTES} bytes: not a "
                           "passphrase")  # fmt: skip
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise KeyFileError(f"the passphrase in {where} is not UTF-8 text") from None
    text = text.removesuffix("\n").removesuffix("\r")
    if not text:
        raise KeyFileError(f"{where} holds an empty passphrase")
    return text


def read_passphrase_file(path: Path) -> str:
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_PASSPHRASE_BYTES + 1)
    except OSError as exc:
        raise KeyFileError(f"cannot read the passphrase file {path}: {exc.strerror}") from exc
    return _one_line(raw, f"the passphrase file {path}")


def _from_fd(text: str) -> str:
    where = f"{ENV_PASSPHRASE_FD}={text}"
    try:
        fd = int(text)
    except ValueError:
        raise KeyFileError(f"{where} is not a file descriptor number") from None
    chunks, size = [], 0
    try:
        while size <= MAX_PASSPHRASE_BYTES:
            chunk = os.read(fd, MAX_PASSPHRASE_BYTES + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise KeyFileError(f"cannot read the passphrase from {where}: {exc.strerror}") from exc
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)
    return _one_line(b"".join(chunks), where)


def non_interactive() -> str | None:
    """The passphrase from a file, the environment or a descriptor, or None."""
    if _process.cached is not None:
        return _process.cached
    found: str | None = None
    if _process.file is not None:
        found = read_passphrase_file(_process.file)
    elif os.environ.get(ENV_PASSPHRASE):
        found = os.environ[ENV_PASSPHRASE]
    elif not _process.fd_read and os.environ.get(ENV_PASSPHRASE_FD):
        _process.fd_read = True
        # Children of this process must not try the (now closed) descriptor again.
        found = _from_fd(os.environ.pop(ENV_PASSPHRASE_FD))
    _process.cached = found
    return found


def can_prompt() -> bool:
    return sys.stdin is not None and sys.stdin.isatty()


def prompt(question: str, *, confirm: bool = False) -> str:
    """Ask on the terminal (no echo); `confirm`: ask twice (a new passphrase)."""
    try:
        text = getpass.getpass(f"{question}: ")
        if not text:
            raise KeyFileError("no passphrase given (it must not be empty)")
        if confirm and getpass.getpass("again, to confirm: ") != text:
            raise KeyFileError("the two passphrases differ; nothing was changed")
    except EOFError:
        raise KeyFileError("no passphrase given (end of input)") from None
    return text


def get(purpose: str, *, confirm: bool = False, required: bool = True) -> str | None:
    """The passphrase `purpose` needs ("the passphrase of /x/member.keys"): from a
    non-interactive source, else the terminal; NoPassphrase (or None when not `required`)
    when neither is there."""
    found = non_interactive()
    if found is None and can_prompt():
        found = _process.cached = prompt(f"Passphrase for {purpose}", confirm=confirm)
    if found is None and required:
        raise NoPassphrase(f"{purpose} needs a passphrase: {HOW_TO_PROVIDE}")
    return found


def child_env_with_passphrase(passphrase: str, env: dict[str, str]) -> tuple[dict[str, str], int]:
    """An environment for a child process that hands it `passphrase` through a pipe: returns
    (env with PERCOLAB_PASSPHRASE_FD set, the read end to pass in `pass_fds` and close in the
    parent after spawning). The passphrase never appears in argv or the environment."""
    data = passphrase.encode("utf-8")
    if len(data) > MAX_PASSPHRASE_BYTES:
        raise KeyFileError("the passphrase is too long")
    read_fd, write_fd = os.pipe()
    try:
        os.write(write_fd, data)  # well under a pipe's buffer: never blocks
    finally:
        os.close(write_fd)
    child_env = {k: v for k, v in env.items() if k != ENV_PASSPHRASE}
    child_env[ENV_PASSPHRASE_FD] = str(read_fd)
    return child_env, read_fd

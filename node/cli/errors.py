"""The CLI's error boundary pieces: exit statuses, the one-line error, the crash report.
`node.cli.commands.main` is the boundary itself: every `percolab` run returns one of
EXIT_CODES and prints at most one error line, never a traceback (issue 21)."""

from __future__ import annotations

import os
import sys
import tempfile
import time
import traceback
import unicodedata
from collections.abc import Sequence
from pathlib import Path

# Exit statuses (README, "The command line").
EXIT_OK = 0
EXIT_ERROR = 1  # a refused value, an unknown id or lab, an unusable data directory...
EXIT_USAGE = 2  # the command line does not parse (argparse's own status)
EXIT_PARTIAL = 3  # `import` stored what it could but refused some objects
EXIT_INTERNAL = 70  # a bug: one line names the crash report (EX_SOFTWARE, sysexits.h)
EXIT_INTERRUPTED = 130  # ctrl-c (128 + SIGINT, as shells report it)
EXIT_CODES = frozenset({EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_PARTIAL, EXIT_INTERNAL,
                        EXIT_INTERRUPTED})  # fmt: skip

# An error line echoes user input (ids, names): bound it so a huge argument stays readable.
MAX_ERROR_CHARS = 400
# Line and paragraph separators and controls would break "one line"; surrogates (undecodable
# bytes) cannot be printed as they are.
_ESCAPED_CATEGORIES = frozenset({"Cc", "Zl", "Zp", "Cs"})
CRASH_PREFIX = "crash-"


class CliError(Exception):
    """A one-line error (EXIT_ERROR)."""


class UsageError(CliError):
    """The command line itself is wrong (EXIT_USAGE)."""


def _one_line(text: str) -> str:
    """`text` as one printable, bounded line: controls, line separators and undecodable
    bytes escaped (\\n, \\u2028, \\udcff), the middle of a long text cut."""
    if len(text) > MAX_ERROR_CHARS:
        half = MAX_ERROR_CHARS // 2
        text = f"{text[:half]} … {text[-half:]}"
    return "".join(
        c.encode("unicode_escape").decode("ascii")
        if unicodedata.category(c) in _ESCAPED_CATEGORIES else c
        for c in text
    )  # fmt: skip


def _error(message: str) -> None:
    print(f"percolab: error: {_one_line(message)}", file=sys.stderr)


def _os_error(exc: OSError) -> str:
    where = f": {exc.filename}" if exc.filename is not None else ""
    return f"{exc.strerror or exc}{where}"


def write_crash_report(exc: BaseException, argv: Sequence[str], data_dir: Path | None) -> Path:
    """The traceback and what led to it, in `crash-<UTC time>-<pid>.txt` (mode 0600: the
    arguments may be private) in the data directory, or the temp directory when that is
    unusable. Raises OSError when neither can be written."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    name = f"{CRASH_PREFIX}{stamp}-{os.getpid()}.txt"
    text = (
        f"percolab crash report, {stamp}\n"
        f"python {sys.version.split()[0]} on {sys.platform}\n"
        f"argv: {[*argv]!r}\n\n" + "".join(traceback.format_exception(exc))
    )
    folders = [d for d in (data_dir, Path(tempfile.gettempdir())) if d is not None]
    last: OSError | None = None
    for folder in folders:
        path = folder / name
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as err:
            last = err
            continue
        with os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace") as f:
            f.write(text)
        return path
    assert last is not None
    raise last



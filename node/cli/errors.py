"""The CLI's error boundary pieces: exit statuses, the one-line error, the crash report.
`node.cli.commands.main` is the boundary itself: every `percolab` run returns one of
EXIT_CODES and prints at most one error line, never a traceback (issue 21)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from tui import crash

# Exit statuses (README, "The command line").
EXIT_OK = 0
EXIT_ERROR = 1  # a refused value, an unknown id or lab, an unusable data directory...
EXIT_USAGE = 2  # the command line does not parse (argparse's own status)
EXIT_PARTIAL = 3  # `import` stored what it could but refused some objects
EXIT_INTERNAL = 70  # a bug: one line names the crash report (EX_SOFTWARE, sysexits.h)
EXIT_INTERRUPTED = 130  # ctrl-c (128 + SIGINT, as shells report it)
EXIT_CODES = frozenset({EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_PARTIAL, EXIT_INTERNAL,
                        EXIT_INTERRUPTED})  # fmt: skip

# The error line (bounded, controls escaped) and the crash report are the TUI's crash
# boundary's too: one implementation, in tui/crash.py (the TUI may not import node).
MAX_ERROR_CHARS = crash.MAX_ERROR_CHARS
CRASH_PREFIX = crash.CRASH_PREFIX
_one_line = crash.one_line


class CliError(Exception):
    """A one-line error (EXIT_ERROR)."""


class UsageError(CliError):
    """The command line itself is wrong (EXIT_USAGE)."""


def _error(message: str) -> None:
    print(f"percolab: error: {_one_line(message)}", file=sys.stderr)


def _os_error(exc: OSError) -> str:
    where = f": {exc.filename}" if exc.filename is not None else ""
    return f"{exc.strerror or exc}{where}"


def write_crash_report(exc: BaseException, argv: Sequence[str], data_dir: Path | None) -> Path:
    """The traceback and the arguments, in a crash report (mode 0600) in the data directory,
    or the temp directory when that is unusable. Raises OSError when neither can be written."""
    return crash.write_crash_report(exc, data_dir, program="percolab", argv=argv)



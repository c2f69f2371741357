"""`python -m node ...` is the `percolab` command (used to spawn child nodes)."""

import sys

from node.cli.commands import main

if __name__ == "__main__":
    sys.exit(main())

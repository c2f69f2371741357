#!/usr/bin/env bash
# Launch Percolab: sets up .venv on first use, then runs `percolab` with your arguments.
#   ./run.sh demo      three local lab nodes and the TUI on one of them
#   ./run.sh           your own node and the TUI on it
#   ./run.sh --help    every command
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
"$here/scripts/bootstrap.sh"
exec "$here/.venv/bin/percolab" "$@"

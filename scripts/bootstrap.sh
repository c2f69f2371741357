#!/usr/bin/env bash
# Creates (or reuses) the project's virtualenv in .venv and installs Percolab into it.
# Usage: scripts/bootstrap.sh [test]   ("test" adds the test extras)
# System packages needed to build libp2p's fastecdsa (gcc, libgmp-dev) are installed when missing.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
extras="${1:-}"

need_apt=()
command -v gcc >/dev/null 2>&1 || need_apt+=(gcc)
[[ -e /usr/include/gmp.h || -e /usr/include/x86_64-linux-gnu/gmp.h ]] || need_apt+=(libgmp-dev)
if [[ "$extras" == "test" ]]; then
    command -v tmux >/dev/null 2>&1 || need_apt+=(tmux)
    command -v ip >/dev/null 2>&1 || need_apt+=(iproute2)
fi
if ((${#need_apt[@]})); then
    sudo=""
    [[ $(id -u) -eq 0 ]] || sudo="sudo"
    echo "percolab: installing system packages: ${need_apt[*]}" >&2
    $sudo apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need_apt[@]}" >&2
fi

python="${PYTHON:-python3}"
if [[ ! -x .venv/bin/python ]]; then
    "$python" -m venv .venv
    .venv/bin/python -m pip install -q --upgrade pip >&2
fi

# Reinstall only when pyproject.toml or the wanted extras changed: second runs are fast.
spec="."
[[ "$extras" == "test" ]] && spec=".[test]"
stamp=".venv/.percolab-installed-${extras:-base}"
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
    echo "percolab: installing into .venv ($spec)" >&2
    if ! .venv/bin/python -m pip install -q -e "$spec" > .venv/install.log 2>&1; then
        cat .venv/install.log >&2
        echo "percolab: installation failed (log above, also in .venv/install.log)" >&2
        exit 1
    fi
    echo "$want" > "$stamp"
fi

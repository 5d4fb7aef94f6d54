#!/usr/bin/env bash
# Create (or reuse) the project virtual environment .venv with a Python >= 3.12 found on this
# machine, and install tumorpde with its extras. Re-running is cheap: the install is skipped while
# pyproject.toml and the interpreter are unchanged (a stamp file in .venv records both).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${TUMORPDE_VENV:-.venv}"
EXTRAS="${TUMORPDE_EXTRAS:-all}"
MIN_MINOR=12

ok_python() {  # $1: candidate interpreter; succeeds if it is CPython >= 3.12 with venv+ensurepip
    "$1" -c "import sys, venv, ensurepip; sys.exit(0 if sys.version_info >= (3, $MIN_MINOR) else 1)" \
        >/dev/null 2>&1
}

find_python() {
    local c
    if [[ -n "${TUMORPDE_PYTHON:-}" ]]; then
        ok_python "$TUMORPDE_PYTHON" && { echo "$TUMORPDE_PYTHON"; return 0; }
        echo "error: TUMORPDE_PYTHON=$TUMORPDE_PYTHON is not a Python >= 3.$MIN_MINOR with venv" >&2
        return 1
    fi
    # 1) PATH (pyenv shims of unselected versions fail the probe and are skipped)
    for c in python3.14 python3.13 python3.12 python3 python; do
        if command -v "$c" >/dev/null 2>&1 && ok_python "$(command -v "$c")"; then
            command -v "$c"; return 0
        fi
    done
    # 2) pyenv's installed versions, newest first
    local root="${PYENV_ROOT:-}"
    if [[ -z "$root" ]] && command -v pyenv >/dev/null 2>&1; then root="$(pyenv root)"; fi
    [[ -z "$root" && -d "$HOME/.pyenv" ]] && root="$HOME/.pyenv"
    if [[ -n "$root" && -d "$root/versions" ]]; then
        for c in $(ls -d "$root"/versions/3.* 2>/dev/null | sort -t. -k2,2nr -k3,3nr); do
            if [[ -x "$c/bin/python3" ]] && ok_python "$c/bin/python3"; then
                echo "$c/bin/python3"; return 0
            fi
        done
    fi
    return 1
}

if [[ -x "$VENV/bin/python" ]] && ok_python "$VENV/bin/python"; then
    PY="$VENV/bin/python"
else
    if ! BASE="$(find_python)"; then
        echo "error: tumorpde needs Python >= 3.$MIN_MINOR with the venv module; none found on PATH or in pyenv. Install one (Debian 13: apt-get install python3 python3-venv; Debian 12: pyenv install 3.12, or set TUMORPDE_PYTHON=/path/to/python3.12)." >&2
        exit 2
    fi
    echo "setup: creating $VENV with $BASE ($("$BASE" -V 2>&1))"
    rm -rf "$VENV"
    "$BASE" -m venv "$VENV"
    PY="$VENV/bin/python"
fi

STAMP="$VENV/.tumorpde-install"
WANT="$( { cat pyproject.toml; "$PY" -V; echo "$EXTRAS"; } | sha256sum | cut -d' ' -f1)"
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$WANT" ]]; then
    exit 0
fi
echo "setup: installing tumorpde[$EXTRAS] into $VENV (first run takes about a minute)"
"$PY" -m pip install --quiet --disable-pip-version-check --upgrade pip
"$PY" -m pip install --quiet --disable-pip-version-check -e ".[$EXTRAS]"
"$PY" - <<'PY'
import dolfinx_solver  # noqa: F401  (must precede dolfinx)
import dolfinx
print(f"setup: DOLFINx {dolfinx.__version__} ready")
PY
echo "$WANT" > "$STAMP"

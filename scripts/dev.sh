#!/usr/bin/env bash
# Entry point behind `make demo` and `make test`: set up the venv, then run the demo or the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
VENV="${TUMORPDE_VENV:-.venv}"
BIN="$VENV/bin"
export PYVISTA_OFF_SCREEN=true
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
NP="${NP:-2}"

case "${1:-}" in
demo)
    OUT="${OUT:-runs/demo}"
    start=$(date +%s)
    timeout 900 "$BIN/mpiexec" -n "$NP" "$BIN/tumorpde" run benchmarks/cases/default.toml -o "$OUT" --overwrite
    echo "demo: finished in $(( $(date +%s) - start )) s on $NP MPI ranks"
    ;;
test)
    start=$(date +%s)
    "$BIN/ruff" check tumorpde tests benchmarks meshes
    "$BIN/mypy"
    echo "== serial test run =="
    timeout 1500 "$BIN/python" -m pytest -q tests
    echo "== MPI test run: mpiexec -n $NP =="
    timeout 1500 "$BIN/mpiexec" -n "$NP" "$BIN/python" -m pytest -q -p no:cacheprovider -m "not serial" tests
    echo "tests: finished in $(( $(date +%s) - start )) s"
    ;;
*)
    echo "usage: scripts/dev.sh demo|test" >&2
    exit 2
    ;;
esac

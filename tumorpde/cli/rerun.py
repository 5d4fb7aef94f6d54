"""``tumorpde rerun DIR``: run a run directory's ``resolved.toml`` again and compare the QoIs.

Every run directory holds ``resolved.toml``, the case as it ran (after ``extends``, library,
organ profile and ``--set``, in internal units, mesh path absolute). ``rerun`` runs it into
``-o OUT`` (default ``DIR-rerun``) with as many ranks as it is launched with, then prints the
largest relative difference of the final QoIs against ``DIR/qoi.csv`` (differences below
``--atol``, 1e-12, such as the round-off balance residuals, count as none; ``wall_s`` is
ignored). Exit code 0 if it is at
most ``--rtol`` (1e-10; expect bitwise agreement only at the rank count of the original run),
1 if larger, 2 for a directory without ``resolved.toml`` or an unusable ``-o``, 3 for a failed
time step, 4 for an output write error, 128 + signal number when interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import math
from pathlib import Path
from typing import Any

from tumorpde.cli import _mpi
from tumorpde.config import ConfigError, load_config

__all__ = ["max_relative_difference", "read_final_row", "register"]

#: Columns that measure the machine, not the result.
IGNORED = ("wall_s",)


def read_final_row(path: str | Path) -> dict[str, float]:
    """The last row of a ``qoi.csv`` as floats.

    Raises:
        ConfigError: If the file is missing or has no rows.
    """
    p = Path(path)
    try:
        with p.open(newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError as exc:
        raise ConfigError(str(p), [("(file)", f"cannot read the QoI table: {exc}")]) from None
    if not rows:
        raise ConfigError(str(p), [("(file)", "the QoI table has no rows")])
    return {k: float(v) for k, v in rows[-1].items() if k is not None and v not in (None, "")}


def max_relative_difference(
    a: dict[str, float],
    b: dict[str, float],
    ignore: tuple[str, ...] = IGNORED,
    atol: float = 0.0,
) -> tuple[float, str | None]:
    """Largest ``|a - b| / max(|a|, |b|)`` over the columns of the two rows.

    NaN equals NaN; differences of at most ``atol`` count as none (round-off residuals such as
    the balance columns); a column in one row only counts as a difference of ``inf``.

    Returns:
        The difference and the column where it occurs (None for identical rows).
    """
    worst, where = 0.0, None
    for key in sorted(set(a) | set(b)):
        if key in ignore:
            continue
        if key not in a or key not in b:
            return math.inf, key
        x, y = a[key], b[key]
        if math.isnan(x) and math.isnan(y):
            continue
        scale = max(abs(x), abs(y))
        d = 0.0 if abs(x - y) <= atol else (abs(x - y) / scale if scale > 0 else math.inf)
        if math.isnan(d):
            d = math.inf
        if d > worst:
            worst, where = d, key
    return worst, where


def _cmd_rerun(args: argparse.Namespace) -> int:
    comm = _mpi.install_abort_hook()
    from tumorpde.output.rundir import MANIFEST, RESOLVED
    from tumorpde.simulation import Simulation, interrupt

    src = Path(args.dir)
    resolved = src / RESOLVED
    if not resolved.is_file():
        raise ConfigError(
            str(src), [("(dir)", f"no {RESOLVED}: not a run directory of tumorpde >= 0.1")]
        )
    reference = read_final_row(src / "qoi.csv")
    ranks0: Any = None
    with contextlib.suppress(OSError, ValueError):
        ranks0 = json.loads((src / MANIFEST).read_text()).get("mpi_ranks")
    cfg = load_config(resolved)
    out = args.output or src.with_name(src.name + "-rerun")
    if out.resolve() == src.resolve():
        raise ConfigError(str(src), [("-o", "the rerun must go to another directory")])
    installed = interrupt.install()
    try:
        with Simulation(cfg, comm) as sim:
            res = sim.run(
                out, overwrite=args.overwrite, case_text=resolved.read_text(), progress=True
            )
    except Exception as exc:
        code = _mpi.exit_code(comm, exc, interrupted=f"{out} is marked interrupted")
        if code is None:
            raise
        return code
    finally:
        if installed:
            interrupt.restore()
    final = {k: float(v) for k, v in res.final().items()}
    diff, where = max_relative_difference(reference, final, atol=args.atol)
    ok = diff <= args.rtol
    if comm.rank == 0:
        same = ranks0 is None or ranks0 == comm.size
        note = "" if same else f" (the original ran on {ranks0} rank(s), this on {comm.size})"
        at = f" (in {where}: {reference.get(where)!r} vs {final.get(where)!r})" if where else ""
        print(f"tumorpde rerun: {src} -> {out}{note}")
        print(
            f"  max relative difference of the final QoIs: {diff:.3g}{at}; "
            f"{'within' if ok else 'ABOVE'} rtol {args.rtol:g}"
        )
    return 0 if ok else 1


def register(subparsers: Any) -> None:
    """Add ``rerun`` to the main parser's subparsers.

    Args:
        subparsers: The object returned by ``ArgumentParser.add_subparsers``.
    """
    r = subparsers.add_parser(
        "rerun",
        help="rerun a run directory's resolved.toml and compare the final QoIs (mpiexec ok)",
    )
    r.add_argument("dir", type=Path, help="a run directory (with resolved.toml and qoi.csv)")
    r.add_argument("-o", "--output", type=Path, help="run directory (default DIR-rerun)")
    r.add_argument("--overwrite", action="store_true", help="replace an earlier run in -o")
    r.add_argument(
        "--rtol", type=float, default=1e-10, help="largest accepted relative difference (1e-10)"
    )
    r.add_argument(
        "--atol",
        type=float,
        default=1e-12,
        help="differences below this count as none (round-off residuals; 1e-12)",
    )
    r.set_defaults(func=_cmd_rerun)

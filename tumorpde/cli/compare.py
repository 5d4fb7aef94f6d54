"""``tumorpde compare CASE``: run a case under several therapy arms and compare the outcomes.

Forwards to :func:`tumorpde.studies.compare.run_comparison`; works under ``mpiexec`` (rank 0
prints). The simulation stack is imported only when the command runs. Existing comparison files
or arm directories in ``-o`` are refused (exit 2, naming the file) unless ``--overwrite``; a
failed time step exits 3, an output write error 4.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from tumorpde.cli import _mpi
from tumorpde.config import ConfigError, load_config

__all__ = ["register"]


def _cmd_compare(args: argparse.Namespace) -> int:
    comm = _mpi.install_abort_hook()
    from tumorpde.output.rundir import OutputDirError, OutputWriteError
    from tumorpde.simulation.stepper import StepFailedError
    from tumorpde.studies.compare import default_arms, run_comparison

    cfg = load_config(args.case, _mpi.overrides(args.set))
    arms = default_arms(cfg)
    if args.arms:
        wanted = [a.strip() for a in args.arms.split(",") if a.strip()]
        unknown = [a for a in wanted if a not in arms]
        if unknown:
            raise ConfigError(
                str(args.case), [("--arms", f"unknown arm(s) {unknown}; arms: {', '.join(arms)}")]
            )
        arms = {a: arms[a] for a in wanted}
    out = args.output or Path("runs") / f"{cfg.name}-compare"
    try:
        res = run_comparison(
            cfg,
            out,
            arms=arms,
            comm=comm,
            overwrite=args.overwrite,
            case_text=Path(args.case).read_text(),
            progress=args.progress,
        )
    except OutputDirError as exc:  # refused before anything ran (or an arm directory)
        _mpi.say(comm, f"error: {exc}", err=True)
        return 2
    except StepFailedError as exc:
        _mpi.say(comm, f"error: {exc}", err=True)
        return 3
    except OutputWriteError as exc:
        _mpi.say(comm, f"error: {exc}", err=True)
        return 4
    if comm.rank == 0:
        print("\narm                      final burden (mm^3)   vs control")
        for r in res["rows"]:
            print(f"{r['arm']:24s} {r['final_burden_mm3']:20.6g} {r['burden_vs_control']:12.4f}")
        for key, path in res["files"].items():
            print(f"  {key:15s} {path}")
    return 0


def register(subparsers: Any) -> None:
    """Add ``compare`` to the main parser's subparsers.

    Args:
        subparsers: The object returned by ``ArgumentParser.add_subparsers``.
    """
    c = subparsers.add_parser(
        "compare", help="run a case under several therapy arms and compare (works under mpiexec)"
    )
    c.add_argument("case", type=Path, help="TOML case file with [therapy] (and [compare.arms])")
    c.add_argument("-o", "--output", type=Path, help="directory (default runs/<case>-compare)")
    c.add_argument("--arms", help="comma-separated subset of the arms (default: all)")
    _mpi.add_set_option(c)
    c.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an earlier comparison in -o (its files and tumorpde arm runs)",
    )
    c.add_argument("--progress", action="store_true", help="print per-step progress")
    c.set_defaults(func=_cmd_compare)

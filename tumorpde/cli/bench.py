"""``tumorpde bench``: run the benchmark kernels at the current MPI size, as JSON records.

Registered into the main parser by :func:`register`. The kernels live in
:mod:`tumorpde.studies.bench`; the command runs them once on ``MPI.COMM_WORLD`` (so ``mpiexec
-n N tumorpde bench`` measures N ranks) and prints the records as JSON lines on rank 0, or
appends them to ``--json``. Strong scaling over several rank counts, the targets table and the
scaling plot are ``python benchmarks/scaling.py`` of a checkout, which spawns this command.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from tumorpde.cli._mpi import install_abort_hook
from tumorpde.studies.bench import PROBLEMS, SIZES

__all__ = ["register"]


def _cmd_bench(args: argparse.Namespace) -> int:
    """Run the selected problems; rank 0 prints or appends the records.

    Returns:
        0 (a benchmark that cannot run, such as an organ mesh that cannot be built, is recorded
        as skipped).
    """
    from tumorpde.studies.bench import run_all

    comm = install_abort_hook()
    problems = args.problem or list(PROBLEMS)
    # absolute: the organ case refers to its mesh relative to the case file, not to the cwd
    cache = args.mesh_cache.resolve() if args.mesh_cache is not None else None
    pcs = [s.strip() for s in args.coupled_pc.split(",") if s.strip()]
    records = run_all(comm, args.size, problems, args.json, args.case, cache, coupled_pcs=pcs)
    if comm.rank == 0:
        if args.json is None or args.print:
            for r in records:
                print(json.dumps(r), flush=True)
        if args.json is not None:
            print(f"bench: {len(records)} records ({comm.size} rank(s)) appended to {args.json}")
    return 0


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``tumorpde bench [--size S] [--problem P ...] [--json FILE] [--case TOML]``.

    Args:
        subparsers: The main parser's ``add_subparsers()`` object.

    Returns:
        The ``bench`` parser.
    """
    p = subparsers.add_parser(
        "bench",
        help="benchmark kernels at this MPI size (JSON records; works under mpiexec)",
        description=(
            "Run the benchmark kernels once on this process's communicator (mpiexec -n N for N "
            "ranks). Records go to stdout as JSON lines, or are appended to --json. For strong "
            "scaling, targets and plots run `python benchmarks/scaling.py` from a checkout."
        ),
    )
    p.add_argument("--size", choices=list(SIZES), default="small", help="default: small")
    p.add_argument("--problem", nargs="+", choices=PROBLEMS, help="default: all")
    p.add_argument("--json", type=Path, help="append the records to this JSON-lines file")
    p.add_argument("--print", action="store_true", help="print the records also with --json")
    p.add_argument(
        "--case",
        type=Path,
        help="case of --problem organ (default: the packaged HER2 brain-metastasis case)",
    )
    p.add_argument(
        "--mesh-cache",
        type=Path,
        help="where the organ's atlas mesh is found or built once (default "
        "~/.cache/tumorpde/meshes; a checkout's meshes/ holds the coarse ones)",
    )
    p.add_argument(
        "--coupled-pc",
        default="default",
        help="comma-separated [solver] preconditioners the coupled problem runs with, each "
        "recorded separately (e.g. default,condensed; default: the case's default)",
    )
    p.set_defaults(func=_cmd_bench)
    return p

"""``tumorpde verify``: run the verification suite and print its table (MPI-aware).

Registered into the main parser by :func:`register` (which loads nothing heavy); the cases and
the driver live in :mod:`tumorpde.studies.verification`, imported when the command runs.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from tumorpde.cli._mpi import install_abort_hook

__all__ = ["register"]


def _cmd_verify(args: argparse.Namespace) -> int:
    """Run the selected cases; rank 0 prints the table and writes ``--json``.

    Returns:
        0 if every row passed, 1 if any failed, 2 for an unknown case name.
    """
    from tumorpde.studies import verification  # loads tumorpde.fem.backend before mpi4py

    comm = install_abort_hook()
    cases = verification.CASES
    names = args.case or None
    if names:
        bad = [n for n in names if n not in cases]
        if bad:
            if comm.rank == 0:
                print(f"error: unknown case(s) {bad}; known: {', '.join(cases)}", file=sys.stderr)
            return 2

    def progress(name: str, sec: float) -> None:
        if comm.rank == 0:
            print(f"  {name}: {sec:.1f} s", flush=True)

    t0 = time.perf_counter()
    rows = verification.run_cases(comm, names, full=args.full, progress=progress)
    wall = time.perf_counter() - t0
    if comm.rank == 0:
        print(verification.format_table(rows))
        print(f"{comm.size} rank(s), {wall:.1f} s", flush=True)
        if args.json:
            meta = {
                "ranks": comm.size,
                "full": bool(args.full),
                "wall_s": wall,
                "cases": names or list(cases if args.full else verification.QUICK),
            }
            verification.write_json(rows, args.json, meta)
    return 0 if all(r.passed for r in rows) else 1


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``tumorpde verify [--quick|--full] [--json FILE] [--case NAME ...]``.

    Args:
        subparsers: The main parser's ``add_subparsers()`` object.

    Returns:
        The ``verify`` parser.
    """
    v = subparsers.add_parser("verify", help="run the verification suite (works under mpiexec)")
    level = v.add_mutually_exclusive_group()
    level.add_argument("--quick", action="store_true", help="CI subset (default)")
    level.add_argument("--full", action="store_true", help="all cases, finer refinement studies")
    v.add_argument("--json", type=Path, help="write the table as JSON")
    v.add_argument(
        "--case",
        nargs="+",
        metavar="NAME",
        help="cases to run (default: the quick subset; an unknown name lists them)",
    )
    v.set_defaults(func=_cmd_verify)
    return v

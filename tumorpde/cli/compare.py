"""``tumorpde compare CASE``: run a case under several therapy arms and compare the outcomes.

Forwards to :func:`tumorpde.studies.compare.run_comparison`, which runs the arms through the
batch runner; works under ``mpiexec`` (rank 0 prints; ``--procs-per-run K`` runs N // K arms at
once). The simulation stack is imported only when the command runs. Existing comparison files
or arm directories in ``-o`` are refused (exit 2, naming the file) unless ``--overwrite`` or
``--resume`` (keep complete arms, continue the others); an arm that failed (e.g. a failed time
step) is recorded in the table while the other arms run, and the command exits 3; an output write
error exits 4; SIGTERM/SIGINT checkpoints the running arms and exits 128 + signal (continue with
``--resume``).
"""

from __future__ import annotations

import argparse
import signal
from pathlib import Path
from typing import Any

from tumorpde.cli import _mpi
from tumorpde.config import ConfigError, load_config

__all__ = ["register"]


def _cmd_compare(args: argparse.Namespace) -> int:
    comm = _mpi.install_abort_hook()
    from tumorpde.simulation import interrupt
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
    interrupt.install()
    try:
        res = run_comparison(
            cfg,
            out,
            arms=arms,
            comm=comm,
            overwrite=args.overwrite,
            resume=args.resume,
            procs_per_run=args.procs_per_run,
            case_text=Path(args.case).read_text(),
            progress=args.progress,
        )
    except ValueError as exc:  # an arm directory refused before anything ran
        _mpi.say(comm, f"error: {exc}", err=True)
        return 2
    except Exception as exc:
        code = _mpi.exit_code(comm, exc)
        if code is None:
            raise
        return code
    finally:
        interrupt.restore()
    if comm.rank == 0:
        print("\narm                      final burden (mm^3)   vs control")
        for r in res["rows"]:
            print(f"{r['arm']:24s} {r['final_burden_mm3']:20.6g} {r['burden_vs_control']:12.4f}")
        for key, path in res["files"].items():
            print(f"  {key:15s} {path}")
    if res["interrupted"]:
        _mpi.say(
            comm,
            f"tumorpde compare: interrupted ({res['interrupted']}); run it again with --resume "
            "to continue",
            err=True,
        )
        return 128 + int(signal.Signals[str(res["interrupted"])])
    if res["failed"]:
        for r in res["rows"]:
            if r["status"] != "complete":
                _mpi.say(comm, f"error: arm {r['arm']} {r['status']}: {r['error']}", err=True)
        return 3
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
    c.add_argument(
        "--resume",
        action="store_true",
        help="keep the complete arms of an earlier comparison in -o and continue the others",
    )
    c.add_argument(
        "--procs-per-run",
        type=int,
        metavar="K",
        help="MPI ranks per arm: N ranks run N // K arms at once (default N: one arm at a time)",
    )
    c.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="print each arm's percentage and ETA while running (default; --quiet also "
        "turns it off)",
    )
    c.set_defaults(func=_cmd_compare)

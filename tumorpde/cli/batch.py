"""``tumorpde batch SWEEP`` and ``tumorpde sensitivity SWEEP``: many runs on MPI sub-groups.

``batch`` forwards to :func:`tumorpde.studies.batch.run_batch`, ``sensitivity`` to the SALib
design of :mod:`tumorpde.studies.sensitivity` run through the same machinery. Both work under
``mpiexec -n N`` (``--procs-per-run K``: N // K groups); rank 0 prints progress. Exit codes: 0
every run complete, 1 some run failed (recorded in ``summary.csv``), 2 invalid sweep or
unusable ``-o``, 128 + signal number when SIGTERM/SIGINT stopped the batch (rerun the same
command to continue).
"""

from __future__ import annotations

import argparse
import signal
from pathlib import Path
from typing import Any

from tumorpde.cli import _mpi

__all__ = ["register"]


def _shard(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    try:
        i, m = (int(x) for x in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError("expected I/M, e.g. 0/4") from None
    if not 0 <= i < m:
        raise argparse.ArgumentTypeError(f"need 0 <= I < M (got {i}/{m})")
    return i, m


def _load(comm: Any, path: Path, builder: Any) -> Any:
    """Build the sweep on rank 0 and broadcast it (or its error, raised on every rank)."""
    from tumorpde.config import ConfigError

    sweep, err, exc_0 = None, None, None
    if comm.rank == 0:
        try:
            sweep = builder()
        except ConfigError as exc:
            # an exception with two-argument __init__ does not unpickle: send its parts
            err, exc_0 = (type(exc), exc.source, exc.problems), exc
    sweep, err = comm.bcast((sweep, err), root=0)
    if err is not None:
        if exc_0 is not None:
            raise exc_0
        cls, source, problems = err
        raise cls(source, problems)
    return sweep


def _run(args: argparse.Namespace, comm: Any, sweep: Any) -> dict[str, Any] | int:
    from tumorpde.output.rundir import OutputDirError
    from tumorpde.simulation import interrupt
    from tumorpde.studies.batch import run_batch

    interrupt.install()
    try:
        return run_batch(
            sweep,
            args.output,
            comm=comm,
            procs_per_run=args.procs_per_run,
            leftover=args.leftover,
            retry_failed=not args.no_retry_failed,
            shard=getattr(args, "shard", None),
        )
    except (OutputDirError, ValueError) as exc:
        _mpi.say(comm, f"error: {exc}", err=True)
        return 2
    finally:
        interrupt.restore()


def _report(comm: Any, res: dict[str, Any]) -> int:
    counts = res["counts"]
    if comm.rank == 0:
        rate = len(res["executed"]) / res["wall_s"] * 3600 if res["wall_s"] > 0 else 0.0
        print(
            "tumorpde batch: "
            + ", ".join(f"{n} {s}" for s, n in counts.items())
            + f"; ran {len(res['executed'])} run(s) in {res['wall_s']:.1f} s "
            f"({rate:.0f} runs/h) on {res['groups']} group(s)"
        )
        for key, path in res["files"].items():
            print(f"  summary {key:8s} {path}")
        failed = [r for r in res["rows"] if r["status"] == "failed"]
        for r in failed[:20]:
            print(f"  failed {r['run']}: {str(r['error'])[:200]}")
    if res["interrupted"]:
        _mpi.say(
            comm,
            f"tumorpde batch: interrupted ({res['interrupted']}); run the same command again "
            "to continue",
            err=True,
        )
        return 128 + int(signal.Signals[str(res["interrupted"])])
    return 1 if counts.get("failed") else 0


def _cmd_batch(args: argparse.Namespace) -> int:
    comm = _mpi.install_abort_hook()
    from tumorpde.studies.sweep import load_sweep

    sweep = _load(comm, args.sweep, lambda: load_sweep(args.sweep))
    if args.dry_run:
        if comm.rank == 0:
            print(f"{args.sweep}: valid sweep '{sweep.name}', {len(sweep.runs)} run(s)")
            for r in sweep.runs:
                arm = f" [{r.arm}]" if r.arm else ""
                print(f"  {r.id}{arm} cost {r.cost:.3g}: {r.values}")
        return 0
    res = _run(args, comm, sweep)
    if isinstance(res, int):
        return res
    rc = _report(comm, res)
    if comm.rank == 0 and not res["interrupted"]:
        _analyze(sweep, res["rows"], Path(args.output))
    return rc


def _analyze(sweep: Any, rows: list[dict[str, Any]], out: Path) -> None:
    """Rank 0, after the batch: the virtual-cohort response and the plots (OUT/plots)."""
    from tumorpde.studies.batch_plots import write_batch_plots
    from tumorpde.studies.cohort import batch_cohort, format_response

    cohort: dict[str, Any] = {}
    try:
        cohort = batch_cohort(sweep, rows, out)
    except (OSError, ValueError) as exc:
        print(f"tumorpde batch: cohort response not written: {exc}")
    if cohort.get("response"):
        print("\n" + format_response(cohort["response"], cohort["control"]))
        for key, path in cohort["files"].items():
            print(f"  cohort  {key:8s} {path}")
    elif cohort:
        print(f"tumorpde batch: no complete treated/untreated ('{cohort['control']}') pair yet")
    try:
        files, note = write_batch_plots(
            out,
            rows,
            sweep.params,
            control=cohort.get("control"),
            pairs=cohort.get("pairs"),
        )
    except (OSError, ValueError) as exc:
        files, note = {}, f"plots not written: {exc}"
    if note:
        print(f"tumorpde batch: {note}")
    for key, path in files.items():
        print(f"  plot    {key[:24]:24s} {path}")


def _cmd_sensitivity(args: argparse.Namespace) -> int:
    comm = _mpi.install_abort_hook()
    import numpy as np

    from tumorpde.studies import sensitivity as sa
    from tumorpde.studies.sweep import load_sweep

    def build() -> Any:
        base = load_sweep(args.sweep, validate=False)
        n = args.n or (base.spec.sample.n if base.spec.sample else 8)
        return sa.design_sweep(base, args.method, n, seed=args.seed, num_levels=args.levels)

    sweep, X, maps = _load(comm, args.sweep, build)
    if comm.rank == 0:
        print(
            f"tumorpde sensitivity: {args.method} over {len(sweep.params)} parameter(s) "
            f"({', '.join(sweep.params)}): {X.shape[0]} design point(s) -> {len(sweep.runs)} run(s)"
        )
    res = _run(args, comm, sweep)
    if isinstance(res, int):
        return res
    rc = _report(comm, res)
    if res["interrupted"]:
        return rc
    if comm.rank == 0:
        arms = list(sweep.spec.arms) or [None]
        out = Path(args.output)
        ranking: list[dict[str, Any]] = []
        for arm, rows_of in zip(arms, maps, strict=True):
            ids = [sweep.runs[i].id for i in rows_of]
            try:
                Y = sa.qoi_vector(res["rows"], args.qoi, ids)
            except KeyError as exc:
                print(f"error: {exc.args[0]}")
                return 2
            X_arm = X
            if not np.all(np.isfinite(Y)):
                bad = sorted({ids[i] for i in np.flatnonzero(~np.isfinite(Y))})
                if args.method == "sobol":
                    print(
                        f"error: the Sobol' design needs every run; failed or missing: "
                        f"{', '.join(bad)}"
                    )
                    return 1
                # Morris: drop the trajectories that contain a failed run
                d = X.shape[1]
                keep = np.ones(len(Y), dtype=bool)
                for t in range(len(Y) // (d + 1)):
                    sl = slice(t * (d + 1), (t + 1) * (d + 1))
                    if not np.all(np.isfinite(Y[sl])):
                        keep[sl] = False
                print(
                    f"note: dropped {int((~keep).sum()) // (d + 1)} Morris trajectories "
                    f"with failed runs ({', '.join(bad)})"
                )
                if not keep.any():
                    print("error: every trajectory has a failed run")
                    return 1
                X_arm, Y = X[keep], Y[keep]
            rows = sa.indices(
                args.method, X_arm, Y, sweep.params, num_levels=args.levels, seed=args.seed
            )
            for r in rows:
                r["arm"] = arm or ""
            ranking += rows
            title = f" (arm {arm})" if arm else ""
            print(f"\n{args.method} indices of {args.qoi}{title}:")
            print(sa.format_ranking(args.method, rows))
        meta = {
            "method": args.method,
            "qoi": args.qoi,
            "seed": args.seed,
            "levels": args.levels,
            "params": sweep.params,
            "design_points": int(X.shape[0]),
            "runs": len(sweep.runs),
        }
        files = sa.write_ranking(out, ranking, meta)
        for key, path in files.items():
            print(f"  ranking {key:8s} {path}")
    return rc


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("sweep", type=Path, help="sweep file (TOML, see docs/batch.md)")
    p.add_argument("-o", "--output", type=Path, required=True, help="batch directory")
    p.add_argument(
        "--procs-per-run",
        type=int,
        default=1,
        metavar="K",
        help="MPI ranks per run: N ranks make N // K groups (default 1)",
    )
    p.add_argument(
        "--leftover",
        choices=("fold", "idle"),
        default="fold",
        help="the N %% K leftover ranks join the last group (fold, default) or wait (idle)",
    )
    p.add_argument(
        "--no-retry-failed",
        action="store_true",
        help="keep recorded failures as they are instead of running them again",
    )


def register(subparsers: Any) -> None:
    """Add ``batch`` and ``sensitivity`` to the main parser's subparsers.

    Args:
        subparsers: The object returned by ``ArgumentParser.add_subparsers``.
    """
    b = subparsers.add_parser(
        "batch", help="run a sweep of cases on MPI sub-groups, resumable (mpiexec -n N)"
    )
    _common(b)
    b.add_argument(
        "--shard",
        type=_shard,
        metavar="I/M",
        help="only runs with index %% M == I (one task of a job array)",
    )
    b.add_argument("--dry-run", action="store_true", help="validate and list the runs only")
    b.set_defaults(func=_cmd_batch)

    s = subparsers.add_parser(
        "sensitivity",
        help="Morris or Sobol' sensitivity of a QoI to the sweep's sampled parameters",
    )
    _common(s)
    s.add_argument("--method", choices=("morris", "sobol"), default="morris")
    s.add_argument(
        "--qoi",
        default="tumor_burden_mm3",
        help="summary column, or a QoI name meaning its final value (default tumor_burden_mm3)",
    )
    s.add_argument(
        "-n",
        "--n",
        type=int,
        help="Morris trajectories or Sobol' base samples (default [sample].n of the sweep)",
    )
    s.add_argument("--seed", type=int, default=0, help="seed of the design (default 0)")
    s.add_argument("--levels", type=int, default=4, help="Morris grid levels (default 4)")
    s.set_defaults(func=_cmd_sensitivity)

"""Command-line interface: ``tumorpde run | validate | info`` (MPI-aware; rank 0 prints).

Under ``mpiexec`` an uncaught exception on any rank aborts the whole job (exit 1) instead of
leaving the other ranks waiting forever; expected errors (bad case, bad output directory) are
detected identically on every rank and end the job with exit code 2 and a one-screen message.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tumorpde import __version__
from tumorpde.config import ConfigError, load_config, mesh_region_names, parse_override

__all__ = ["main"]


def _comm() -> Any:
    from mpi4py import MPI

    import tumorpde.backend  # noqa: F401

    return MPI.COMM_WORLD


def _abort_on_uncaught(exc_type: Any, exc: Any, tb: Any) -> None:
    sys.__excepthook__(exc_type, exc, tb)
    sys.stderr.flush()
    comm = _comm()
    if comm.size > 1:
        comm.Abort(1)


def _say(comm: Any, *args: Any, err: bool = False) -> None:
    if comm is None or comm.rank == 0:
        print(*args, file=sys.stderr if err else sys.stdout, flush=True)


def _overrides(items: Sequence[str] | None) -> dict[str, Any]:
    return dict(parse_override(s) for s in items or [])


def _cmd_validate(args: argparse.Namespace) -> int:
    cfg = load_config(args.case, _overrides(args.set))
    regions = mesh_region_names(cfg.mesh)
    print(f"{args.case}: valid case '{cfg.name}'")
    print(f"  mesh regions: {', '.join(regions)}")
    print(
        f"  time: t_end = {cfg.time.t_end:g} h ({cfg.time.t_end / 24:g} d), dt = {cfg.time.dt:g} h"
    )
    print(
        f"  scheme: {cfg.time.scheme}"
        + (f", adaptive (tol {cfg.time.tolerance:g})" if cfg.time.adaptive else "")
    )
    if cfg.organ:
        print(f"  organ profile: {cfg.organ}")
    from tumorpde.model import species

    for p, pw in cfg.pathways.items():
        lig = f"ligand {pw.ligand.name}, " if pw.ligand else "no ligand, "
        print(
            f"  pathway {p}: {lig}{pw.receptor.receptors_per_cell:g} receptors/cell = "
            f"{cfg.receptor_total_nM(p):.6g} nM at carrying capacity"
        )
    names = [s.name for s in species(cfg)]
    print(f"  species ({len(names)}): {', '.join(names)}")
    for region, values in cfg.regions.items():
        print(
            f"  region {region}: "
            + ", ".join(
                f"{k} = {v:g}" if isinstance(v, float) else f"{k} = {v}" for k, v in values.items()
            )
        )
    if args.json:
        print(json.dumps(cfg.model_dump(mode="json"), indent=2))
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    comm = _comm()
    sys.excepthook = _abort_on_uncaught
    from tumorpde.io import OutputDirError
    from tumorpde.simulation import Simulation
    from tumorpde.solver import SolverOptionsError
    from tumorpde.stepper import StepFailedError

    cfg = load_config(args.case, _overrides(args.set))
    text = Path(args.case).read_text()
    outdir = args.output or Path("runs") / cfg.name
    try:
        sim = Simulation(cfg, comm)
    except SolverOptionsError as exc:
        _say(comm, f"error: {exc}", err=True)
        return 2
    try:
        res = sim.run(outdir, overwrite=args.overwrite, case_text=text)
    except OutputDirError as exc:
        _say(comm, f"error: {exc}", err=True)
        return 2
    except StepFailedError as exc:
        _say(comm, f"error: {exc}", err=True)
        return 3
    finally:
        sim.solver.destroy()
    if comm.rank == 0:
        fin = res.final()
        tm = res.manifest["timings_s"]
        print(
            f"tumorpde: done in {tm['total_s']:.1f} s ({res.manifest['steps']} steps, "
            f"solve {tm['solve_s']:.1f} s, {comm.size} rank(s))"
        )
        parts = [f"tumor burden {fin['tumor_burden_mm3']:.6g} mm^3"]
        for key, value in fin.items():
            if key.startswith(("mean_", "occupancy_", "signal_")):
                parts.append(f"{key} {value:.6g}")
        parts.append(f"min u {fin['min_tumor']:.3g}")
        worst = max((v for k, v in fin.items() if k.startswith("balance_")), default=None)
        if worst is not None:
            parts.append(f"max balance residual {worst:.2g}")
        print(f"  final t = {fin['t_h']:g} h: " + ", ".join(parts))
        print(f"  results: {res.outdir}")
        for key, path in res.files.items():
            print(f"    {key:9s} {path}")
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    comm = _comm()
    from petsc4py import PETSc

    import dolfinx

    from tumorpde.io import versions

    info: dict[str, Any] = {
        "tumorpde": __version__,
        "dolfinx": dolfinx.__version__,
        "petsc": ".".join(str(v) for v in PETSc.Sys.getVersion()),
        "scalar": PETSc.ScalarType.__name__,
        "mpi_size": comm.size,
        "mpi_library": _mpi_library(),
        "solvers": {
            p: bool(PETSc.Sys.hasExternalPackage(p))
            for p in ("mumps", "superlu_dist", "hypre", "scalapack", "ptscotch", "parmetis")
        },
        "preconditioners": ["gamg", "ilu", "bjacobi", "asm", "jacobi", "fieldsplit", "lu"],
        "jit_cache": str(dolfinx.jit.get_options()["cache_dir"]),
        "versions": versions(),
    }
    if comm.rank == 0:
        if args.json:
            print(json.dumps(info, indent=2))
        else:
            for k, v in info.items():
                print(f"{k:12s} {v}")
    return 0


def _mpi_library() -> str:
    from mpi4py import MPI

    return MPI.Get_library_version().splitlines()[0].strip()


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation and tests)."""
    p = argparse.ArgumentParser(
        prog="tumorpde",
        description="Spatial reaction-diffusion models of the tumor microenvironment.",
    )
    p.add_argument("--version", action="version", version=f"tumorpde {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="run a case (works under mpiexec -n N)")
    r.add_argument("case", type=Path, help="TOML case file")
    r.add_argument("-o", "--output", type=Path, help="run directory (default runs/<case name>)")
    r.add_argument("--overwrite", action="store_true", help="replace an earlier run in -o")
    r.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a case value")
    r.set_defaults(func=_cmd_run)

    v = sub.add_parser("validate", help="check a case file without running it")
    v.add_argument("case", type=Path)
    v.add_argument("--set", action="append", metavar="KEY=VALUE")
    v.add_argument("--json", action="store_true", help="print the resolved case (internal units)")
    v.set_defaults(func=_cmd_validate)

    i = sub.add_parser("info", help="versions, MPI size and available PETSc solvers")
    i.add_argument("--json", action="store_true")
    i.set_defaults(func=_cmd_info)
    __import__("tumorpde.verify").verify.register_cli(sub)  # adds `tumorpde verify`

    from tumorpde import bench

    bench.register_cli(sub)
    __import__("tumorpde.mesh_cli").mesh_cli.register_cli(sub)  # adds `tumorpde mesh`
    __import__("tumorpde.pk").pk.register_cli(sub)  # adds `tumorpde drug`
    __import__("tumorpde.params_cli").params_cli.register_cli(sub)  # adds `tumorpde params`
    __import__("tumorpde.compare").compare.register_cli(sub)  # adds `tumorpde compare`
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI.

    Args:
        argv: Arguments (default ``sys.argv[1:]``).

    Returns:
        Exit code: 0 success, 2 invalid input, 3 solver failure.
    """
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        # Every rank validated the same file and failed alike: no rank is left waiting.
        rank = 0
        if args.command in ("run", "compare"):
            rank = _comm().rank
        if rank == 0:
            print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2


if __name__ == "__main__":
    sys.exit(main())

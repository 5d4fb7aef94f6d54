"""``tumorpde run | validate | info``: run a case, check a case, report the installation.

``run`` works under ``mpiexec`` (rank 0 prints); expected errors (bad solver options, a foreign
output directory) end it with exit code 2 on every rank alike, a failed time step with 3.
DOLFINx, PETSc and the simulation are imported only when a command runs.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from tumorpde._version import __version__
from tumorpde.cli import _mpi
from tumorpde.config import load_config, mesh_region_names
from tumorpde.model import build_model

__all__ = ["register"]


def _cmd_validate(args: argparse.Namespace) -> int:
    cfg = load_config(args.case, _mpi.overrides(args.set))
    model = build_model(cfg, source=str(args.case))
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
    for p, pw in cfg.pathways.items():
        lig = f"ligand {pw.ligand.name}, " if pw.ligand else "no ligand, "
        print(
            f"  pathway {p}: {lig}{pw.receptor.receptors_per_cell:g} receptors/cell = "
            f"{cfg.receptor_total_nM(p):.6g} nM at carrying capacity"
        )
    names = model.names
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
    comm = _mpi.install_abort_hook()
    from tumorpde.fem.solver import SolverOptionsError
    from tumorpde.output.rundir import OutputDirError
    from tumorpde.simulation import Simulation
    from tumorpde.simulation.stepper import StepFailedError

    cfg = load_config(args.case, _mpi.overrides(args.set))
    text = Path(args.case).read_text()
    outdir = args.output or Path("runs") / cfg.name
    model = build_model(cfg, source=str(args.case))  # checks output.fields before any compute
    try:
        with Simulation(cfg, comm, model=model) as sim:
            res = sim.run(outdir, overwrite=args.overwrite, case_text=text)
    except (SolverOptionsError, OutputDirError) as exc:
        _mpi.say(comm, f"error: {exc}", err=True)
        return 2
    except StepFailedError as exc:
        _mpi.say(comm, f"error: {exc}", err=True)
        return 3
    if comm.rank == 0:
        _print_summary(res, comm.size)
    return 0


def _print_summary(res: Any, ranks: int) -> None:
    """Timings, final quantities of interest and the files of a finished run."""
    fin = res.final()
    tm = res.manifest["timings_s"]
    print(
        f"tumorpde: done in {tm['total_s']:.1f} s ({res.manifest['steps']} steps, "
        f"solve {tm['solve_s']:.1f} s, {ranks} rank(s))"
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


def _cmd_info(args: argparse.Namespace) -> int:
    comm = _mpi.comm()
    from mpi4py import MPI
    from petsc4py import PETSc

    import dolfinx

    from tumorpde.output.rundir import versions

    info: dict[str, Any] = {
        "tumorpde": __version__,
        "dolfinx": dolfinx.__version__,
        "petsc": ".".join(str(v) for v in PETSc.Sys.getVersion()),
        "scalar": PETSc.ScalarType.__name__,
        "mpi_size": comm.size,
        "mpi_library": MPI.Get_library_version().splitlines()[0].strip(),
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


def register(subparsers: Any) -> None:
    """Add ``run``, ``validate`` and ``info`` to the main parser's subparsers.

    Args:
        subparsers: The object returned by ``ArgumentParser.add_subparsers``.
    """
    r = subparsers.add_parser("run", help="run a case (works under mpiexec -n N)")
    r.add_argument("case", type=Path, help="TOML case file")
    r.add_argument("-o", "--output", type=Path, help="run directory (default runs/<case name>)")
    r.add_argument("--overwrite", action="store_true", help="replace an earlier run in -o")
    _mpi.add_set_option(r)
    r.set_defaults(func=_cmd_run)

    v = subparsers.add_parser("validate", help="check a case file without running it")
    v.add_argument("case", type=Path, help="TOML case file")
    _mpi.add_set_option(v)
    v.add_argument("--json", action="store_true", help="print the resolved case (internal units)")
    v.set_defaults(func=_cmd_validate)

    i = subparsers.add_parser("info", help="versions, MPI size and available PETSc solvers")
    i.add_argument("--json", action="store_true", help="machine-readable output")
    i.set_defaults(func=_cmd_info)

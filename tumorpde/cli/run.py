"""``tumorpde run | validate | info``: run a case, check a case, report the installation.

``run`` works under ``mpiexec`` (rank 0 prints); expected errors (bad solver options, a foreign
output directory) end it with exit code 2 on every rank alike, a failed time step with 3, a
write error with 4, SIGTERM/SIGINT with 128 + the signal number after a checkpoint
(``--resume`` continues; ``--restart-from DIR --at T`` branches from another run). DOLFINx,
PETSc and the simulation are imported only when a command runs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from tumorpde._version import __version__
from tumorpde.cli import _mpi
from tumorpde.config import ConfigError, load_config, mesh_region_names, region_keys
from tumorpde.model import build_model
from tumorpde.units import format_quantity, to_internal

__all__ = ["register"]


def _cmd_validate(args: argparse.Namespace) -> int:
    """Validate a case: schema, cross-field checks, region names, the whole mesh and the seed.

    With ``--json`` stdout carries one JSON object only (``valid``, and the resolved case or
    the problems); the human-readable error still goes to stderr.
    """
    from tumorpde.config import ConfigError
    from tumorpde.config.meshcheck import mesh_problems

    try:
        cfg = load_config(args.case, _mpi.overrides(args.set))
        problems, notes = mesh_problems(cfg)
        try:
            model = build_model(cfg, source=str(args.case))
        except ConfigError as exc:
            problems += exc.problems
        if not problems:  # the seeds on the loaded mesh (dolfinx; this rank alone)
            problems, seeds = _seed_check(cfg, None, args.allow_coarse_seed)
            notes += seeds
        if problems:
            raise ConfigError(str(args.case), problems)
    except ConfigError as exc:
        if args.json:
            bad = [{"field": f, "message": m} for f, m in exc.problems]
            print(json.dumps({"case": str(args.case), "valid": False, "problems": bad}, indent=2))
        raise
    regions = mesh_region_names(cfg.mesh)
    if args.json:
        out = {
            "case": str(args.case),
            "valid": True,
            "name": cfg.name,
            "mesh_regions": regions,
            "species": list(model.names),
            "notes": notes,
            "config": cfg.model_dump(mode="json"),
        }
        print(json.dumps(out, indent=2))
        return 0
    print(f"{args.case}: valid case '{cfg.name}'")
    print(f"  mesh regions: {', '.join(regions)}")
    t = cfg.time
    print(
        f"  time: t_end = {format_quantity(t.t_end, 'time')}, dt = {format_quantity(t.dt, 'time')}"
    )
    print(f"  scheme: {t.scheme}" + (f", adaptive (tol {t.tolerance:g})" if t.adaptive else ""))
    tumor = cfg.tumor
    print(
        f"  tumor: proliferation {format_quantity(tumor.proliferation_rate, 'rate')}, "
        f"motility {format_quantity(tumor.motility, 'diffusivity')}, "
        f"carrying capacity {format_quantity(tumor.carrying_capacity, 'cell_density')}"
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
    kinds = region_keys(cfg.model_dump())
    for region, values in cfg.regions.items():
        print(
            f"  region {region}: " + ", ".join(_with_unit(k, v, kinds) for k, v in values.items())
        )
    for note in notes:
        print(f"  note: {note}")
    return 0


def _with_unit(key: str, value: Any, kinds: dict[str, str]) -> str:
    """``key = value unit`` of a per-region value (internal units, plus per day where apt)."""
    kind = kinds.get(key)
    if isinstance(value, float) and kind is not None and kind != "text":
        return f"{key} = {format_quantity(value, kind)}"
    return f"{key} = {value:g}" if isinstance(value, float) else f"{key} = {value}"


def _cmd_run(args: argparse.Namespace) -> int:
    """Run a case into a run directory; resume it, or branch it from another run's checkpoint.

    Exit codes: 0 done, 2 invalid input or unusable directory, 3 the solver failed, 4 a file
    could not be written, 128 + signal number when SIGTERM/SIGINT stopped it (its state is in a
    checkpoint: ``--resume`` continues).
    """
    comm = _mpi.install_abort_hook()
    from tumorpde.config.meshcheck import mesh_problems
    from tumorpde.output import fields
    from tumorpde.simulation import Simulation, checkpoint, interrupt

    cfg = load_config(args.case, _mpi.overrides(args.set))
    text = Path(args.case).read_text()
    outdir = args.output or Path("runs") / cfg.name
    model = build_model(cfg, source=str(args.case))  # checks output.fields before any compute
    problems = mesh_problems(cfg)[0] if comm.rank == 0 else None
    problems = comm.bcast(problems, root=0)
    if problems:
        raise ConfigError(str(args.case), problems)  # e.g. a seed outside the mesh
    if (args.at is None) != (args.restart_from is None):
        raise ConfigError(str(args.case), [("--at", "--restart-from DIR and --at T go together")])
    if args.resume and args.restart_from is not None:
        raise ConfigError(str(args.case), [("--resume", "use --resume or --restart-from")])
    interrupt.install()
    rc = 0
    try:
        branch = None
        if args.restart_from is not None:
            try:
                t_at = to_internal(args.at, "time")
            except ValueError as exc:
                raise ConfigError(str(args.case), [("--at", str(exc))]) from None
            branch = checkpoint.find_at(Path(args.restart_from) / "checkpoints", t_at, comm)
        with Simulation(cfg, comm, model=model) as sim:
            problems, notes = _seed_check(cfg, sim.domain, args.allow_coarse_seed)
            if problems:  # the same on every rank (reduced)
                raise ConfigError(str(args.case), problems)
            for note in notes[len(_seed_lines(notes)) :]:  # allowed coarse seeds
                _mpi.say(comm, f"warning: {note}", err=True)
            res = sim.run(
                outdir,
                overwrite=args.overwrite,
                case_text=text,
                resume=args.resume,
                branch_from=branch,
            )
    except Exception as exc:
        hint = f"state saved, continue with: tumorpde run {args.case} -o {outdir} --resume"
        code = _mpi.exit_code(comm, exc, interrupted=hint)
        if code is None:
            raise
        rc = code
    finally:
        interrupt.restore()
    if rc == 0 and comm.rank == 0:
        _print_summary(res, comm.size)
    if fields.stale_handles():  # HDF5 would abort at exit on a handle it could not close
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(rc)
    return rc


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


def _seed_lines(notes: list[str]) -> list[str]:
    """The per-seed report lines at the head of :func:`_seed_check`'s notes."""
    return [n for n in notes if n.startswith("seed ")]


def _seed_check(
    cfg: Any, domain: Any, allow_coarse: bool
) -> tuple[list[tuple[str, str]], list[str]]:
    """Delivered vs requested initial mass and peak of the Gaussian seeds on the loaded mesh.

    Args:
        cfg: The case.
        domain: The loaded domain, or None to load it here on this rank alone (validate).
        allow_coarse: ``--allow-coarse-seed``.

    Returns:
        ``(problems, notes)``: refusals, and the per-seed lines followed by the warnings of
        allowed coarse seeds.
    """
    from tumorpde.config import FileMesh
    from tumorpde.config.seedcheck import seed_problems

    if not any(s.kind == "gaussian" for _, s in cfg.tumor.seed_list()):
        return [], []
    from tumorpde.fem.domain import load_domain
    from tumorpde.fem.seeds import seed_reports

    if domain is None:
        import signal

        # PETSc replaces Python's SIGPIPE handling (ignore -> BrokenPipeError) with an abort:
        # restore it so that `validate --json | head -1` stays quiet
        pipe = signal.getsignal(signal.SIGPIPE)
        try:
            from mpi4py import MPI

            reports = seed_reports(cfg, load_domain(cfg.mesh, MPI.COMM_SELF))
        finally:
            signal.signal(signal.SIGPIPE, pipe)
    else:
        reports = seed_reports(cfg, domain)
    hint = cfg.mesh.path.name if isinstance(cfg.mesh, FileMesh) else "MESH"
    problems, warnings = seed_problems(cfg, reports, allow_coarse=allow_coarse, mesh_hint=hint)
    return problems, [r.line() for r in reports] + warnings


def _add_seed_option(parser: argparse.ArgumentParser) -> None:
    """``--allow-coarse-seed``: warn instead of refusing a seed the mesh cannot carry."""
    parser.add_argument(
        "--allow-coarse-seed",
        action="store_true",
        help="warn instead of refusing when the mesh delivers a Gaussian seed's initial mass "
        "or peak beyond tumor.initial_tolerance (default 10 %%)",
    )


def register(subparsers: Any) -> None:
    """Add ``run``, ``validate`` and ``info`` to the main parser's subparsers.

    Args:
        subparsers: The object returned by ``ArgumentParser.add_subparsers``.
    """
    r = subparsers.add_parser("run", help="run a case (works under mpiexec -n N)")
    r.add_argument("case", type=Path, help="TOML case file")
    r.add_argument("-o", "--output", type=Path, help="run directory (default runs/<case name>)")
    r.add_argument("--overwrite", action="store_true", help="replace an earlier run in -o")
    r.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in -o from its newest checkpoint (from the start if none; "
        "nothing to do if it is complete)",
    )
    r.add_argument(
        "--restart-from",
        type=Path,
        metavar="DIR",
        help="start from the checkpoint of the run in DIR at time --at (a branch: e.g. a "
        "therapy arm from a grown tumor)",
    )
    r.add_argument("--at", metavar="T", help='time of the checkpoint to branch from ("21 day")')
    _add_seed_option(r)
    _mpi.add_set_option(r)
    r.set_defaults(func=_cmd_run)

    v = subparsers.add_parser("validate", help="check a case file without running it")
    v.add_argument("case", type=Path, help="TOML case file")
    _add_seed_option(v)
    _mpi.add_set_option(v)
    v.add_argument(
        "--json",
        action="store_true",
        help="print only JSON: the resolved case (internal units) or the problems",
    )
    v.set_defaults(func=_cmd_validate)

    i = subparsers.add_parser("info", help="versions, MPI size and available PETSc solvers")
    i.add_argument("--json", action="store_true", help="machine-readable output")
    i.set_defaults(func=_cmd_info)

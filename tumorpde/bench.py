"""Benchmarks: timed solver kernels against the memory-bandwidth limit, as JSON lines.

Problems (``tumorpde bench --problem ...``):

* ``stream``: PETSc ``VecWAXPY`` triad, the bandwidth reference (GB/s) measured in the same run;
* ``diffusion``: BioFVM's diffusion-decay test (D = 0.1 mm²/min, decay 0.1/min, dt = 0.01 min)
  on a P1 box, backward Euler with the operator and mass matrix assembled once and the
  right-hand side as a mass-matrix product; 1 and 4 substrates;
* ``coupled``: the product's coupled tumor-ligand-receptor Newton step (4 species) on a box;
* ``setup``: mesh, spaces and form compilation, cold (empty JIT cache) and warm.

Each record carries machine info, MPI ranks, sizes and times split into set-up, assembly and
solve, and the achieved Krylov bandwidth as a fraction of the STREAM triad. Run under
``mpiexec -n N`` for strong scaling; :func:`main` with ``--ranks 1,2`` spawns those runs itself.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["main", "register_cli"]

#: Per-step/iteration targets on one core (issue "Performance"), checked in the summary.
TARGETS = {
    "diffusion_1_s_per_Mdof": 1.0,
    "diffusion_4_s_per_Munknown": 0.8,
    "coupled_s_per_Munknown_1rank": 5.0,
    "coupled_s_per_Munknown_2ranks": 3.0,
    "krylov_stream_fraction": 0.8,
    "speedup_2ranks": 1.6,
    "setup_s_per_Mvertex": 15.0,
    "compile_cold_s": 2.0,
    "compile_warm_s": 0.05,
}

SIZES = {  # cells per side of the unit box for each problem and size preset
    "tiny": {"diffusion": 12, "coupled": 8},
    "small": {"diffusion": 40, "coupled": 24},
    "full": {"diffusion": 99, "coupled": 49},  # ~1.0M dofs; 4 x 125k = 0.5M unknowns
}


def _comm() -> Any:
    # isort: off
    import tumorpde.backend  # noqa: F401  (the wheel's MPI library before mpi4py)
    from mpi4py import MPI

    # isort: on

    return MPI.COMM_WORLD


def machine_info() -> dict[str, Any]:
    """CPU model, cores and memory of this machine."""
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = 0.0
    with contextlib.suppress(ValueError, OSError):
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(mem, 1)}


def _peak_rss_mib(comm: Any) -> float:
    from mpi4py import MPI

    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return float(comm.allreduce(kib, op=MPI.SUM)) / 1024.0


def _max_time(comm: Any, t: float) -> float:
    from mpi4py import MPI

    return float(comm.allreduce(t, op=MPI.MAX))


def stream_triad(comm: Any, n_per_rank: int = 20_000_000, repeats: int = 5) -> float:
    """Aggregate triad bandwidth (GB/s) of all ranks: ``w = a x + y`` counted as 24 B/entry."""
    from petsc4py import PETSc

    x = PETSc.Vec().createMPI((n_per_rank, PETSc.DECIDE), comm=comm)
    y, w = x.duplicate(), x.duplicate()
    x.set(1.0)
    y.set(2.0)
    best = np.inf
    for _ in range(repeats):
        comm.Barrier()
        t0 = time.perf_counter()
        w.waxpy(3.0, x, y)
        best = min(best, _max_time(comm, time.perf_counter() - t0))
    for v in (x, y, w):
        v.destroy()
    return 24.0 * n_per_rank * comm.size / best / 1e9


def _krylov_bytes(A: Any, n_vectors: int = 16) -> float:
    """Bytes moved by one CG iteration: CSR matvec (8+4 B per nonzero, 20 B per row) + vectors."""
    info = A.getInfo()
    n = A.getSize()[0]
    return 12.0 * info["nz_used"] + 20.0 * n + 8.0 * n_vectors * n


def bench_diffusion(comm: Any, n: int, substrates: int, pc: str, steps: int = 10) -> dict[str, Any]:
    """BioFVM diffusion-decay test on a unit-mm box, operators assembled once."""
    from petsc4py import PETSc

    import ufl
    from dolfinx import fem, mesh
    from dolfinx.fem.petsc import assemble_matrix

    t0 = time.perf_counter()
    msh = mesh.create_box(comm, [np.zeros(3), np.ones(3)], [n, n, n], mesh.CellType.tetrahedron)
    V = fem.functionspace(msh, ("Lagrange", 1))
    D, lam, dt = 0.1 * 60, 0.1 * 60, 0.01 / 60  # mm^2/h, 1/h, h
    w, v = ufl.TrialFunction(V), ufl.TestFunction(V)
    a = fem.form((w * v + dt * (D * ufl.inner(ufl.grad(w), ufl.grad(v)) + lam * w * v)) * ufl.dx)
    m = fem.form(w * v * ufl.dx)
    t_setup = time.perf_counter() - t0
    t1 = time.perf_counter()
    A = assemble_matrix(a)
    A.assemble()
    M = assemble_matrix(m)
    M.assemble()
    t_matrix = time.perf_counter() - t1
    ksp = PETSc.KSP().create(comm)
    ksp.setOperators(A)
    ksp.setType("cg")
    ksp.getPC().setType(pc)
    ksp.setTolerances(rtol=1e-8)
    fields = [fem.Function(V) for _ in range(substrates)]
    for k, f in enumerate(fields):
        f.interpolate(lambda x, k=k: np.exp(-((x - 0.5 + 0.05 * k) ** 2).sum(axis=0) / 0.02))
    b = A.createVecLeft()
    x = A.createVecRight()
    ksp.setUp()
    t_rhs = t_solve = 0.0
    its = 0
    for _ in range(steps):
        for f in fields:
            comm.Barrier()
            s0 = time.perf_counter()
            M.mult(f.x.petsc_vec, b)
            s1 = time.perf_counter()
            ksp.solve(b, x)
            s2 = time.perf_counter()
            x.copy(f.x.petsc_vec)
            f.x.scatter_forward()
            t_rhs += s1 - s0
            t_solve += s2 - s1
            its += ksp.getIterationNumber()
    t_rhs, t_solve = _max_time(comm, t_rhs), _max_time(comm, t_solve)
    dofs = V.dofmap.index_map.size_global
    per_step = (t_rhs + t_solve) / steps
    bytes_it = _krylov_bytes(A)
    out = {
        "problem": f"diffusion_{substrates}",
        "pc": pc,
        "dofs": dofs,
        "unknowns": dofs * substrates,
        "steps": steps,
        "krylov_its_per_solve": its / (steps * substrates),
        "setup_s": t_setup,
        "matrix_assembly_s": t_matrix,
        "rhs_s_per_step": t_rhs / steps,
        "solve_s_per_step": t_solve / steps,
        "step_s": per_step,
        "s_per_Munknown": per_step / (dofs * substrates / 1e6),
        "krylov_GBps": bytes_it * its / t_solve / 1e9 if t_solve > 0 else 0.0,
    }
    for obj in (A, M, b, x, ksp):
        obj.destroy()
    return out


def bench_coupled(comm: Any, n: int, newton_steps: int = 3) -> dict[str, Any]:
    """The product's coupled Newton step on a unit-mm box with the default physics."""
    from petsc4py import PETSc

    from tumorpde.config import config_from_dict, example_box_case
    from tumorpde.simulation import Simulation

    case = example_box_case(
        10.0, n, "bench_coupled", time={"t_end": f"{12 * newton_steps} h", "dt": "12 h"}
    )
    cfg = config_from_dict(case)
    t0 = time.perf_counter()
    sim = Simulation(cfg, comm)
    t_setup = _max_time(comm, time.perf_counter() - t0)
    PETSc.Log.begin()
    ev = {k: PETSc.Log.Event(k) for k in ("SNESJacobianEval", "SNESFunctionEval", "KSPSolve")}
    before = {k: e.getPerfInfo()["time"] for k, e in ev.items()}
    t1 = time.perf_counter()
    newton = linear = nsteps = 0
    for info in sim.steps():
        newton += info.newton_iterations
        linear += info.linear_iterations
        nsteps += 1
    t_total = _max_time(comm, time.perf_counter() - t1)
    spent = {k: _max_time(comm, e.getPerfInfo()["time"] - before[k]) for k, e in ev.items()}
    unknowns = sim.state.num_dofs_global()
    solver = sim.solver.describe()
    sim.solver.destroy()
    return {
        "problem": "coupled",
        "unknowns": unknowns,
        "vertices": sim.domain.num_vertices_global(),
        "steps": nsteps,
        "newton_per_step": newton / nsteps,
        "linear_per_newton": linear / max(newton, 1),
        "setup_s": t_setup,
        "step_s": t_total / nsteps,
        "jacobian_s_per_step": spent["SNESJacobianEval"] / nsteps,
        "residual_s_per_step": spent["SNESFunctionEval"] / nsteps,
        "ksp_s_per_step": spent["KSPSolve"] / nsteps,
        "assembly_fraction": (spent["SNESJacobianEval"] + spent["SNESFunctionEval"]) / t_total,
        "s_per_Munknown": t_total / nsteps / (unknowns / 1e6),
        "solver": solver,
    }


def bench_setup(comm: Any, n: int) -> dict[str, Any]:
    """Mesh/space creation per million vertices, form compilation cold (empty cache) and warm."""
    import ufl
    from dolfinx import fem, mesh

    t0 = time.perf_counter()
    msh = mesh.create_box(comm, [np.zeros(3), np.ones(3)], [n, n, n], mesh.CellType.tetrahedron)
    t_mesh = time.perf_counter() - t0
    t1 = time.perf_counter()
    V = fem.functionspace(msh, ("Lagrange", 1))
    t_space = time.perf_counter() - t1
    u, v = fem.Function(V), ufl.TestFunction(V)
    F = (ufl.inner(ufl.grad(u), ufl.grad(v)) + u * (1 - u) * v) * ufl.dx
    cache = tempfile.mkdtemp(prefix="tumorpde-jit-") if comm.rank == 0 else None
    cache = comm.bcast(cache, root=0)
    times = []
    for _ in range(2):
        comm.Barrier()
        s0 = time.perf_counter()
        fem.form(F, jit_options={"cache_dir": cache})
        times.append(_max_time(comm, time.perf_counter() - s0))
    verts = msh.topology.index_map(0).size_global
    t_mesh, t_space = _max_time(comm, t_mesh), _max_time(comm, t_space)
    return {
        "problem": "setup",
        "vertices": verts,
        "mesh_s": t_mesh,
        "space_s": t_space,
        "setup_s_per_Mvertex": (t_mesh + t_space) / (verts / 1e6),
        "compile_cold_s": times[0],
        "compile_warm_s": times[1],
    }


def run_all(comm: Any, size: str, problems: list[str], out: Path | None) -> list[dict[str, Any]]:
    """Run the selected problems on ``comm`` (a communicator from tumorpde.backend's MPI).

    Rank 0 appends JSON lines to ``out``.
    """
    common = {
        "ranks": comm.size,
        "size": size,
        "machine": machine_info(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    bw = stream_triad(comm)
    records: list[dict[str, Any]] = [{"problem": "stream", "triad_GBps": bw}]
    n = SIZES[size]
    if "setup" in problems:
        records.append(bench_setup(comm, n["diffusion"]))
    if "diffusion" in problems:
        for pc in ("jacobi", "sor", "gamg"):
            if comm.size > 1 and pc == "sor":
                continue  # SOR is rank-local in parallel; jacobi and gamg are the comparisons
            records.append(bench_diffusion(comm, n["diffusion"], 1, pc))
        records.append(bench_diffusion(comm, n["diffusion"], 4, "jacobi"))
    if "coupled" in problems:
        records.append(bench_coupled(comm, n["coupled"]))
    for r in records:
        r.update(common)
        r["peak_rss_MiB_all_ranks"] = _peak_rss_mib(comm)
        if "krylov_GBps" in r:
            r["krylov_stream_fraction"] = r["krylov_GBps"] / bw
    if comm.rank == 0 and out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("a") as f:
            for r in records:
                f.write(json.dumps(r) + "\n")
    return records


def summarize(records: list[dict[str, Any]]) -> list[tuple[str, float, float, bool]]:
    """Compare the best measured value per target with :data:`TARGETS`.

    Returns:
        Rows ``(target, measured, target value, met)``.
    """
    rows: list[tuple[str, float, float, bool]] = []

    def best(problem: str, key: str, ranks: int, lower: bool = True) -> float | None:
        vals = [
            r[key] for r in records if r["problem"] == problem and r["ranks"] == ranks and key in r
        ]
        if not vals:
            return None
        return min(vals) if lower else max(vals)

    def add(name: str, value: float | None, lower: bool = True) -> None:
        if value is not None:
            target = TARGETS[name]
            rows.append((name, value, target, value <= target if lower else value >= target))

    add("diffusion_1_s_per_Mdof", best("diffusion_1", "s_per_Munknown", 1))
    add("diffusion_4_s_per_Munknown", best("diffusion_4", "s_per_Munknown", 1))
    add("coupled_s_per_Munknown_1rank", best("coupled", "s_per_Munknown", 1))
    add("coupled_s_per_Munknown_2ranks", best("coupled", "s_per_Munknown", 2))
    add("krylov_stream_fraction", best("diffusion_1", "krylov_stream_fraction", 1, False), False)
    c1, c2 = best("coupled", "step_s", 1), best("coupled", "step_s", 2)
    if c1 and c2:
        add("speedup_2ranks", c1 / c2, False)
    add("setup_s_per_Mvertex", best("setup", "setup_s_per_Mvertex", 1))
    add("compile_cold_s", best("setup", "compile_cold_s", 1))
    add("compile_warm_s", best("setup", "compile_warm_s", 1))
    return rows


def _print_table(rows: list[tuple[str, float, float, bool]]) -> None:
    print(f"{'target':34s} {'measured':>10s} {'target':>8s}  met")
    for name, value, target, met in rows:
        print(f"{name:34s} {value:10.4g} {target:8.3g}  {'yes' if met else 'NO'}")


def _spawn(ranks: list[int], size: str, problems: list[str], out: Path) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    for n in ranks:
        tmp = Path(tempfile.mkdtemp(prefix="tumorpde-bench-")) / "r.jsonl"
        mpiexec = Path(sys.executable).parent / "mpiexec"
        cmd = [str(mpiexec), "-n", str(n), sys.executable, "-m", "tumorpde.bench", "--size", size]
        cmd += ["--problem", *problems, "--json", str(tmp), "--no-spawn"]
        subprocess.run(["timeout", "3000", *cmd], check=True)
        lines = tmp.read_text().splitlines()
        records += [json.loads(s) for s in lines]
        with out.open("a") as f:
            f.write("\n".join(lines) + "\n")
    return records


def _cmd(args: argparse.Namespace) -> int:
    out = Path(args.json)
    problems = args.problem or ["setup", "diffusion", "coupled"]
    if args.no_spawn:
        comm = _comm()
        records = run_all(comm, args.size, problems, out)
        if comm.rank == 0 and args.print:
            for r in records:
                print(json.dumps(r))
        return 0
    out.parent.mkdir(parents=True, exist_ok=True)
    ranks = [int(r) for r in args.ranks.split(",")]
    records = _spawn(ranks, args.size, problems, out)
    rows = summarize(records)
    _print_table(rows)
    summary = out.with_name(out.stem + "_summary.json")
    summary.write_text(
        json.dumps(
            [{"target": n, "measured": v, "goal": t, "met": m} for n, v, t, m in rows], indent=2
        )
    )
    print(f"records: {out}\nsummary: {summary}")
    return 0


def _add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--size", choices=sorted(SIZES), default="full")
    p.add_argument("--problem", nargs="+", choices=["setup", "diffusion", "coupled"])
    p.add_argument("--ranks", default="1,2", help="comma-separated MPI rank counts to run")
    p.add_argument("--json", default="benchmarks/results/bench.jsonl", help="JSON-lines output")
    p.add_argument("--no-spawn", action="store_true", help="run on this process's communicator")
    p.add_argument("--print", action="store_true", help="print records (with --no-spawn)")
    p.set_defaults(func=_cmd)


def register_cli(subparsers: Any) -> None:
    """Add ``tumorpde bench`` to the CLI."""
    p = subparsers.add_parser("bench", help="performance benchmarks (JSON lines + summary)")
    _add_arguments(p)


def main(argv: list[str] | None = None) -> int:
    """Entry point for ``python -m tumorpde.bench``."""
    p = argparse.ArgumentParser(prog="python -m tumorpde.bench", description=__doc__)
    _add_arguments(p)
    args = p.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())

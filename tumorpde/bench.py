"""Benchmarks: timed solver kernels against the memory-bandwidth limit, as JSON lines.

Problems (``tumorpde bench --problem ...``):

* ``stream``: PETSc ``VecWAXPY`` triad, the bandwidth reference (GB/s) measured in the same run;
* ``diffusion``: BioFVM's diffusion-decay test (D = 0.1 mm²/min, decay 0.1/min, dt = 0.01 min)
  on a P1 box, backward Euler with the operator and mass matrix assembled once and the
  right-hand side as a mass-matrix product; 1 and 4 substrates;
* ``coupled``: the product's coupled tumor-ligand-receptor Newton step (4 species) on a box, at
  one or more sizes (``--size full``: 0.5M and 2.05M unknowns);
* ``setup``: mesh, spaces and form compilation, cold (empty JIT cache) and warm: one small form,
  and all the product's forms (construction of a :class:`~tumorpde.simulation.Simulation` of the
  default box case with the JIT pointed at a fresh cache);
* ``organ``: a whole organ case (``benchmarks/cases/her2_brain_metastasis.toml``) end to end for a
  few fixed steps: mesh read, set-up, time stepping and output writing. ``--size full`` uses the
  fine atlas mesh, built once into the mesh cache (``tumorpde mesh build brain --resolution
  fine``); ``tiny`` and ``small`` use the case's shipped coarse mesh.

Each record carries machine info, MPI ranks, sizes and times split into set-up, assembly and
solve, the achieved Krylov bandwidth as a fraction of the STREAM triad, and the peak resident
memory the benchmark added (``bytes_per_unknown``). Run under ``mpiexec -n N`` for strong scaling;
:func:`main` with ``--ranks 1,2`` spawns those runs itself, prints the targets and, with several
rank counts, plots time per step and speedup against the rank count.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["main", "plot_scaling", "register_cli", "summarize"]

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

#: Per size preset: cells per side of the unit box (diffusion; coupled, one run per entry), and
#: the organ problem's mesh resolution and number of fixed time steps.
SIZES: dict[str, dict[str, Any]] = {
    "tiny": {"diffusion": 12, "coupled": [6, 8], "organ_mesh": "coarse", "organ_steps": 1},
    "small": {"diffusion": 40, "coupled": [16, 24], "organ_mesh": "coarse", "organ_steps": 3},
    # diffusion ~1.0M dofs; coupled 4 x 50^3 = 0.5M and 4 x 80^3 = 2.05M unknowns
    "full": {"diffusion": 99, "coupled": [49, 79], "organ_mesh": "fine", "organ_steps": 4},
}

#: The organ problem's case (relative mesh paths resolve against its directory).
ORGAN_CASE = (
    Path(__file__).resolve().parents[1] / "benchmarks" / "cases" / "her2_brain_metastasis.toml"
)

#: Fixed step of the organ problem (the case's own ``dt``; adaptivity is switched off).
ORGAN_DT_H = 6.0

PROBLEMS = ("setup", "diffusion", "coupled", "organ")

#: Highest VmHWM (KiB) seen before a reset by :func:`_memory_probe` (the process-wide peak).
_PEAK_KIB = [0.0]


class MeshUnavailableError(RuntimeError):
    """The organ problem's atlas mesh is not in the cache and could not be built."""


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


def _status_kib(field: str) -> float | None:
    """A ``/proc/self/status`` memory field (``VmRSS``, ``VmHWM``) in KiB, None if unavailable."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return float(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def _maxrss_kib() -> float:
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def _peak_rss_mib(comm: Any) -> float:
    """Peak resident memory of the process so far, summed over ranks (MiB)."""
    from mpi4py import MPI

    kib = max(_maxrss_kib(), _PEAK_KIB[0], _status_kib("VmHWM") or 0.0)
    return float(comm.allreduce(kib, op=MPI.SUM)) / 1024.0


@contextlib.contextmanager
def _memory_probe(comm: Any) -> Iterator[dict[str, Any]]:
    """Measure the peak resident memory a block adds, summed over ranks (collective on exit).

    On Linux the kernel's high-water mark is reset to the current RSS before the block
    (``/proc/self/clear_refs``), after freed memory has been returned to the OS, so the result is
    the block's own peak above what was resident when it started. Elsewhere it falls back to
    the growth of ``ru_maxrss``, which is 0 when an earlier benchmark peaked higher.

    Yields:
        A dict filled on exit with ``increase_kib`` (sum over ranks) and ``method``.
    """
    from mpi4py import MPI

    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    hwm = _status_kib("VmHWM")
    reset = False
    if hwm is not None:
        _PEAK_KIB[0] = max(_PEAK_KIB[0], hwm, _maxrss_kib())
        with contextlib.suppress(OSError):
            Path("/proc/self/clear_refs").write_text("5")
            reset = True
    reset = bool(comm.allreduce(int(reset), op=MPI.MIN))
    before = (_status_kib("VmRSS") or 0.0) if reset else _maxrss_kib()
    info: dict[str, Any] = {}
    yield info
    after = (_status_kib("VmHWM") or 0.0) if reset else _maxrss_kib()
    _PEAK_KIB[0] = max(_PEAK_KIB[0], after)
    info["increase_kib"] = float(comm.allreduce(max(after - before, 0.0), op=MPI.SUM))
    info["method"] = "VmHWM reset" if reset else "ru_maxrss growth"


@contextlib.contextmanager
def _jit_probe(cache_dir: str | None = None) -> Iterator[dict[str, float]]:
    """Time and count DOLFINx JIT calls (forms and expressions); optionally redirect the cache.

    Every compilation in DOLFINx goes through ``dolfinx.jit.ffcx_jit``, which reads its options
    with ``dolfinx.jit.get_options``; both are wrapped for the duration of the block. With
    ``cache_dir`` the cache directory takes priority over the defaults, the JSON option files
    and the callers' ``jit_options``, so code that does not expose ``jit_options`` (the product's
    :class:`~tumorpde.simulation.Simulation`) compiles into it.

    Yields:
        ``{"seconds": time inside the JIT on this rank, "calls": number of JIT calls}``.
    """
    from dolfinx import jit

    get_options, ffcx_jit = jit.get_options, jit.ffcx_jit
    stats = {"seconds": 0.0, "calls": 0.0}

    def timed(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return ffcx_jit(*args, **kwargs)
        finally:
            stats["seconds"] += time.perf_counter() - t0
            stats["calls"] += 1

    def options(priority_options: dict | None = None) -> dict:
        return get_options({**(priority_options or {}), "cache_dir": cache_dir})

    jit.ffcx_jit = timed
    if cache_dir is not None:
        jit.get_options = options
    try:
        yield stats
    finally:
        jit.ffcx_jit, jit.get_options = ffcx_jit, get_options


def _max_time(comm: Any, t: float) -> float:
    from mpi4py import MPI

    return float(comm.allreduce(t, op=MPI.MAX))


def _shared_tempdir(comm: Any, prefix: str) -> Path:
    """A new temporary directory created on rank 0, the same path on every rank."""
    path = tempfile.mkdtemp(prefix=prefix) if comm.rank == 0 else None
    return Path(comm.bcast(path, root=0))


def _remove_shared(comm: Any, path: Path) -> None:
    comm.Barrier()
    if comm.rank == 0:
        shutil.rmtree(path, ignore_errors=True)


def _wait_for_rank0(comm: Any, poll_s: float = 0.5) -> None:
    """Barrier that sleeps instead of spinning (other ranks idle while rank 0 builds a mesh)."""
    req = comm.Ibarrier()
    while not req.Test():
        time.sleep(poll_s)


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


#: Linear tolerance of the ``tuned`` diffusion solves: this fraction of the local time error.
LINEAR_SAFETY = 1e-2


def bench_diffusion(
    comm: Any, n: int, substrates: int, pc: str, mode: str = "tuned", steps: int = 10
) -> dict[str, Any]:
    """BioFVM diffusion-decay test on a unit-mm box, operators assembled once.

    Backward Euler ``(M + dt(D K + lam M)) u^{n+1} = M u^n`` solved by CG.

    Args:
        comm: Communicator.
        n: Cells per side.
        substrates: Independent fields sharing the operator.
        pc: PETSc preconditioner (jacobi, sor, gamg).
        mode: ``"strict"``: zero initial guess, ``rtol = 1e-8`` (the issue's prototype).
            ``"tuned"``: initial guess ``2 u^n - u^{n-1}`` and ``rtol`` tied to the time error:
            :data:`LINEAR_SAFETY` times the last step's local-error estimate
            ``|u^{n+1} - (2u^n - u^{n-1})| / (2|u^{n+1}|)`` (Milne; 1e-8 until there is one).
        steps: Time steps.

    Returns:
        The record, with the linear error of the last solve (against a 1e-12 solve, untimed)
        next to the local time-error estimate of that step.
    """
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
    tuned = mode == "tuned"
    ksp.setInitialGuessNonzero(tuned)  # rtol stays relative to |b| (PETSc's default test)
    fields = [fem.Function(V) for _ in range(substrates)]
    for k, f in enumerate(fields):
        f.interpolate(lambda x, k=k: np.exp(-((x - 0.5 + 0.05 * k) ** 2).sum(axis=0) / 0.02))
    older = [f.x.petsc_vec.copy() for f in fields]  # u^{n-1} (= u^0 before the first step)
    rtol = [1e-8] * substrates
    b = A.createVecLeft()
    x = A.createVecRight()
    ksp.setUp()
    t_rhs = t_solve = 0.0
    its = 0
    err_time = 0.0
    for step in range(steps):
        for k, f in enumerate(fields):
            u = f.x.petsc_vec
            comm.Barrier()
            s0 = time.perf_counter()
            M.mult(u, b)
            if tuned:
                x.waxpy(-1.0, older[k], u)  # x = 2u^n - u^{n-1} (u^n on the first step)
                x.axpy(1.0, u)
                ksp.setTolerances(rtol=rtol[k])
            s1 = time.perf_counter()
            ksp.solve(b, x)
            s2 = time.perf_counter()
            t_rhs += s1 - s0
            t_solve += s2 - s1
            its += ksp.getIterationNumber()
            if step > 0:  # Milne: half the distance to the linear predictor, relative
                pred = u.copy()
                pred.scale(2.0)
                pred.axpy(-1.0, older[k])
                pred.aypx(-1.0, x)
                err_time = 0.5 * pred.norm() / x.norm()
                pred.destroy()
                if tuned:
                    rtol[k] = min(1e-4, max(1e-12, LINEAR_SAFETY * err_time))
            u.copy(older[k])
            x.copy(u)
            f.x.scatter_forward()
    # linear error of the last solve against a tight solve of the same system (not timed)
    ref = x.duplicate()
    ksp.setInitialGuessNonzero(True)
    x.copy(ref)
    ksp.setTolerances(rtol=1e-12)
    ksp.solve(b, ref)
    diff = ref.copy()
    diff.axpy(-1.0, x)
    err_linear = diff.norm() / ref.norm()
    t_rhs, t_solve = _max_time(comm, t_rhs), _max_time(comm, t_solve)
    dofs = V.dofmap.index_map.size_global
    per_step = (t_rhs + t_solve) / steps
    bytes_it = _krylov_bytes(A)
    out = {
        "problem": f"diffusion_{substrates}",
        "pc": pc,
        "mode": mode,
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
        "linear_error_last_step": err_linear,
        "time_error_estimate_last_step": err_time,
    }
    for obj in (A, M, b, x, ksp, ref, diff, *older):
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
        "cells_per_side": n,
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


def product_compile(comm: Any, cells: int = 6) -> dict[str, Any]:
    """Compile the product's forms for the default box case with an empty JIT cache, then again.

    The compilation cannot be isolated from the rest of :class:`~tumorpde.simulation.Simulation`
    construction by an API, so the construction is timed as a whole (``product_setup_*``) and
    the time spent inside ``dolfinx.jit.ffcx_jit`` during it separately (``product_compile_*``:
    FFCx code generation, C compilation and loading; warm = cache hits). The JIT is pointed at
    a fresh temporary cache (removed afterwards), so the user's cache is neither used nor
    filled. The box is small: compilation does not depend on the mesh size.

    Args:
        comm: Communicator (the JIT compiles on rank 0 and loads on the others).
        cells: Cells per side of the box.

    Returns:
        Cold and warm times (max over ranks) and the number of compiled objects.
    """
    from tumorpde.config import config_from_dict, example_box_case
    from tumorpde.simulation import Simulation

    cfg = config_from_dict(example_box_case(10.0, cells, "bench_compile"))
    cache = _shared_tempdir(comm, "tumorpde-jit-product-")
    out: dict[str, Any] = {}
    for label in ("cold", "warm"):
        comm.Barrier()
        t0 = time.perf_counter()
        with _jit_probe(str(cache)) as jit:
            sim = Simulation(cfg, comm)
        t_setup = time.perf_counter() - t0
        sim.solver.destroy()
        out[f"product_setup_{label}_s"] = _max_time(comm, t_setup)
        out[f"product_compile_{label}_s"] = _max_time(comm, jit["seconds"])
        out["product_jit_objects"] = int(jit["calls"])
        del sim
    _remove_shared(comm, cache)
    return out


def bench_setup(comm: Any, n: int, product_cells: int = 6) -> dict[str, Any]:
    """Mesh/space creation per million vertices, form compilation cold (empty cache) and warm.

    Two compilations are timed: one small nonlinear form (``compile_*``) and all the product's
    forms (:func:`product_compile`, ``product_*``).
    """
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
    cache = _shared_tempdir(comm, "tumorpde-jit-")
    times = []
    for _ in range(2):
        comm.Barrier()
        s0 = time.perf_counter()
        fem.form(F, jit_options={"cache_dir": str(cache)})
        times.append(_max_time(comm, time.perf_counter() - s0))
    _remove_shared(comm, cache)
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
        **product_compile(comm, product_cells),
    }


def organ_mesh(
    comm: Any,
    organ: str,
    resolution: str,
    cache_dir: str | Path | None = None,
    size: float | None = None,
) -> Path:
    """The atlas mesh of ``organ`` at ``resolution`` in ``cache_dir``, built there if missing.

    Rank 0 builds (``tumorpde mesh build ORGAN --resolution RES --out CACHE``; minutes for a fine
    mesh) while the other ranks wait; a mesh whose ``.msh`` and ``.json`` both exist is reused.

    Args:
        comm: Communicator.
        organ: Atlas organ (:data:`tumorpde.atlas.ORGANS`).
        resolution: ``coarse`` or ``fine``.
        cache_dir: Directory (default :func:`tumorpde.atlas.default_cache_dir`, as the CLI).
        size: Override the target edge length (mm); for tests of this function only, as the
            result is cached under the resolution's name.

    Returns:
        The ``.msh`` path (same on all ranks).

    Raises:
        MeshUnavailableError: On every rank, if the build failed (the message says why).
    """
    from tumorpde.atlas import build_organ, default_cache_dir

    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    stem = organ if resolution == "coarse" else f"{organ}_{resolution}"
    path = cache / f"{stem}.msh"
    err = None
    if comm.rank == 0 and not (path.is_file() and path.with_suffix(".json").is_file()):
        print(f"bench: building the {resolution} {organ} mesh into {cache} (once)", flush=True)
        try:
            build_organ(organ, resolution, cache, size=size)
        except Exception as exc:  # any failure must reach the waiting ranks, not hang them
            err = f"{type(exc).__name__}: {exc}"
    _wait_for_rank0(comm)
    err = comm.bcast(err, root=0)
    if err is not None:
        raise MeshUnavailableError(
            f"could not build the {resolution} {organ} mesh in {cache}: {err}"
        )
    return path


def bench_organ(
    comm: Any,
    steps: int,
    resolution: str = "coarse",
    case: str | Path = ORGAN_CASE,
    mesh_cache: str | Path | None = None,
    picture: bool = True,
) -> dict[str, Any]:
    """A whole organ case end to end for ``steps`` fixed steps, writing its run directory.

    The case runs as ``tumorpde run`` would, with ``time.dt`` = :data:`ORGAN_DT_H`,
    ``time.t_end`` = ``steps`` dt, adaptivity off and fields written at t = 0 and at the end,
    into a temporary directory (removed afterwards). ``resolution = "fine"`` replaces the case's
    mesh by the atlas's fine mesh of the case's organ (:func:`organ_mesh`); ``coarse`` keeps
    the case's own mesh.

    Times are the max over ranks: ``config_s`` (reading and validating the case), ``mesh_read_s``
    (reading and partitioning the mesh), ``setup_s`` (the rest of the Simulation construction,
    with ``jit_s`` of it in form compilation), ``io_s`` (field files and picture),
    ``stepping_s`` (the run minus I/O: Newton solves, ``newton_solve_s``, plus QoIs and error
    control) and ``total_s`` (wall time of all of it).

    Args:
        comm: Communicator.
        steps: Number of time steps.
        resolution: ``coarse`` (the case's mesh) or ``fine`` (atlas mesh from the cache).
        case: The TOML case.
        mesh_cache: Cache directory of the fine mesh.
        picture: Render ``final.png`` if the case asks for it.

    Returns:
        The record.
    """
    from tumorpde.config import load_config, read_case_tables
    from tumorpde.simulation import Simulation

    case = Path(case)
    overrides: dict[str, Any] = {
        "time.dt": f"{ORGAN_DT_H} h",
        "time.t_end": f"{steps * ORGAN_DT_H} h",
        "time.output_every": f"{steps * ORGAN_DT_H} h",
        "time.adaptive": False,
    }
    if not picture:
        overrides["output.picture"] = False
    if resolution != "coarse":
        organ = read_case_tables(case).get("organ")
        if not organ:
            raise ValueError(f"{case}: no 'organ' key, so no atlas mesh to use")
        overrides["mesh.path"] = str(organ_mesh(comm, organ, resolution, mesh_cache))
    comm.Barrier()
    t0 = time.perf_counter()
    cfg = load_config(case, overrides)
    t_config = time.perf_counter() - t0
    with _jit_probe() as jit:
        sim = Simulation(cfg, comm)
    outdir = _shared_tempdir(comm, "tumorpde-bench-organ-")
    t1 = time.perf_counter()
    try:
        res = sim.run(outdir / "run", progress=False)
        solver = sim.solver.describe()
    finally:
        sim.solver.destroy()
    t_end = time.perf_counter()
    tm = sim.timings
    io = tm.get("output_s", 0.0) + tm.get("picture_s", 0.0)
    steps_done = int(res.manifest["steps"])
    unknowns = int(res.manifest["unknowns"])
    qoi = res.qoi
    newton = int(qoi["newton_iterations"].sum())
    linear = int(qoi["linear_iterations"].sum())
    stepping = _max_time(comm, t_end - t1 - io)
    _remove_shared(comm, outdir)
    return {
        "problem": "organ",
        "case": cfg.name,
        "mesh": cfg.mesh.path.name if hasattr(cfg.mesh, "path") else "box",
        "mesh_resolution": resolution,
        "vertices": res.manifest["mesh"]["vertices"],
        "cells": res.manifest["mesh"]["cells"],
        "species": len(sim.state.species),
        "unknowns": unknowns,
        "dt_h": ORGAN_DT_H,
        "scheme": cfg.time.scheme,
        "steps": steps_done,
        "newton_iterations": newton,
        "linear_iterations": linear,
        "newton_per_step": newton / max(steps_done, 1),
        "linear_per_newton": linear / max(newton, 1),
        "field_writes": 2,
        "picture": bool(cfg.output.picture),
        "config_s": _max_time(comm, t_config),
        "mesh_read_s": _max_time(comm, tm["mesh_s"]),
        "setup_s": _max_time(comm, tm["setup_s"]),
        "jit_s": _max_time(comm, jit["seconds"]),
        "newton_solve_s": _max_time(comm, tm["solve_s"]),
        "stepping_s": stepping,
        "output_s": _max_time(comm, tm.get("output_s", 0.0)),
        "picture_s": _max_time(comm, tm.get("picture_s", 0.0)),
        "io_s": _max_time(comm, io),
        "total_s": _max_time(comm, t_end - t0),
        "s_per_step": stepping / max(steps_done, 1),
        "s_per_step_per_Munknown": stepping / max(steps_done, 1) / (unknowns / 1e6),
        "solver": solver,
    }


def _measured(comm: Any, bench: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    """Run one benchmark and add the peak memory it added (and per unknown, if it has them)."""
    with _memory_probe(comm) as mem:
        record = bench(comm, *args)
    record["peak_rss_increase_MiB_all_ranks"] = mem["increase_kib"] / 1024.0
    record["rss_method"] = mem["method"]
    if record.get("unknowns"):
        record["bytes_per_unknown"] = mem["increase_kib"] * 1024.0 / record["unknowns"]
    return record


def run_all(
    comm: Any,
    size: str,
    problems: list[str],
    out: Path | None,
    organ_case: str | Path = ORGAN_CASE,
    mesh_cache: str | Path | None = None,
) -> list[dict[str, Any]]:
    """Run the selected problems on ``comm`` (a communicator from tumorpde.backend's MPI).

    Rank 0 appends JSON lines to ``out``.

    Args:
        comm: Communicator.
        size: Key of :data:`SIZES`.
        problems: Subset of :data:`PROBLEMS`.
        out: JSON-lines file, or None.
        organ_case: Case of the ``organ`` problem.
        mesh_cache: Cache directory of the fine atlas meshes (``organ`` at ``--size full``).

    Returns:
        The records (same on all ranks).
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
        records.append(_measured(comm, bench_setup, n["diffusion"]))
    if "diffusion" in problems:
        # the prototype set-up once, then initial guess + time-error-tied tolerance
        records.append(_measured(comm, bench_diffusion, n["diffusion"], 1, "jacobi", "strict"))
        for pc in ("jacobi", "sor", "gamg"):
            if comm.size > 1 and pc == "sor":
                continue  # SOR is rank-local in parallel; jacobi and gamg are the comparisons
            records.append(_measured(comm, bench_diffusion, n["diffusion"], 1, pc))
        records.append(_measured(comm, bench_diffusion, n["diffusion"], 4, "jacobi"))
    if "coupled" in problems:
        for cells in n["coupled"]:
            records.append(_measured(comm, bench_coupled, cells))
    if "organ" in problems:
        try:
            records.append(
                _measured(
                    comm,
                    bench_organ,
                    n["organ_steps"],
                    n["organ_mesh"],
                    organ_case,
                    mesh_cache,
                    size != "tiny",  # no picture in the CI-sized run (it costs ~2 s)
                )
            )
        except (
            MeshUnavailableError
        ) as exc:  # the fine mesh could not be built: say so, keep the rest
            if comm.rank == 0:
                print(f"bench: organ problem skipped: {exc}", file=sys.stderr, flush=True)
            records.append({"problem": "organ", "skipped": str(exc)})
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


#: A summary row: name, measured value, target (None: reported only), met (None: no target),
#: note (sizes the value refers to).
Row = tuple[str, float, float | None, bool | None, str]


def _mega(unknowns: float) -> str:
    return f"{unknowns / 1e6:.3g}M unknowns"


def summarize(records: list[dict[str, Any]]) -> list[Row]:
    """Compare the measured values with :data:`TARGETS`; add reported (untargeted) values.

    Coupled targets use the largest size run at each rank count, and the 2-rank speedup the
    largest size run at both 1 and 2 ranks; the note of each row says which size.

    Returns:
        Rows ``(name, measured, target or None, met or None, note)``.
    """
    rows: list[Row] = []

    def pick(problem: str, ranks: int, key: str) -> list[dict[str, Any]]:
        return [r for r in records if r["problem"] == problem and r["ranks"] == ranks and key in r]

    def best(problem: str, key: str, ranks: int, lower: bool = True) -> float | None:
        vals = [r[key] for r in pick(problem, ranks, key)]
        if not vals:
            return None
        return min(vals) if lower else max(vals)

    def largest(problem: str, key: str, ranks: int) -> dict[str, Any] | None:
        cand = pick(problem, ranks, key)
        if not cand:
            return None
        top = max(r["unknowns"] for r in cand)
        return min((r for r in cand if r["unknowns"] == top), key=lambda r: r[key])

    def add(
        name: str, value: float | None, lower: bool = True, note: str = "", target: str = ""
    ) -> None:
        if value is not None:
            goal = TARGETS[target or name]
            rows.append((name, value, goal, value <= goal if lower else value >= goal, note))

    def report(name: str, value: float | None, note: str = "") -> None:
        if value is not None:
            rows.append((name, value, None, None, note))

    def coupled_note(r: dict[str, Any]) -> str:
        return f"n={r.get('cells_per_side', '?')}, {_mega(r['unknowns'])}"

    add("diffusion_1_s_per_Mdof", best("diffusion_1", "s_per_Munknown", 1))
    add("diffusion_4_s_per_Munknown", best("diffusion_4", "s_per_Munknown", 1))
    for ranks, name in ((1, "coupled_s_per_Munknown_1rank"), (2, "coupled_s_per_Munknown_2ranks")):
        r = largest("coupled", "s_per_Munknown", ranks)
        if r is not None:
            add(name, r["s_per_Munknown"], note=coupled_note(r))
    add("krylov_stream_fraction", best("diffusion_1", "krylov_stream_fraction", 1, False), False)
    both = {r["unknowns"] for r in pick("coupled", 1, "step_s")}
    both &= {r["unknowns"] for r in pick("coupled", 2, "step_s")}
    if both:
        size = max(both)
        c1 = min(r["step_s"] for r in pick("coupled", 1, "step_s") if r["unknowns"] == size)
        c2 = min(r["step_s"] for r in pick("coupled", 2, "step_s") if r["unknowns"] == size)
        r = next(r for r in pick("coupled", 1, "step_s") if r["unknowns"] == size)
        if c2 > 0:
            add("speedup_2ranks", c1 / c2, False, note="coupled " + coupled_note(r))
    add("setup_s_per_Mvertex", best("setup", "setup_s_per_Mvertex", 1))
    add("compile_cold_s", best("setup", "compile_cold_s", 1), note="one small form")
    add("compile_warm_s", best("setup", "compile_warm_s", 1), note="one small form")
    setup = pick("setup", 1, "product_compile_cold_s")
    if setup:
        s = setup[0]
        objs = f"default box case, {s['product_jit_objects']} JIT objects"
        for label in ("cold", "warm"):
            add(
                f"product_compile_{label}_s",
                s[f"product_compile_{label}_s"],
                note=f"{objs}; Simulation() {s[f'product_setup_{label}_s']:.3g} s",
                target=f"compile_{label}_s",
            )
    for ranks in sorted({r["ranks"] for r in records}):
        org = pick("organ", ranks, "s_per_step")
        if org:
            o = org[0]
            tag = "1rank" if ranks == 1 else f"{ranks}ranks"
            note = f"{o['mesh']}, {_mega(o['unknowns'])}, {o['steps']} step(s)"
            report(f"organ_s_per_step_{tag}", o["s_per_step"], note)
            report(f"organ_s_per_step_per_Munknown_{tag}", o["s_per_step_per_Munknown"], note)
            report(f"organ_total_s_{tag}", o["total_s"], note)
    for problem in ("diffusion_1", "diffusion_4", "coupled", "organ"):
        r = largest(problem, "bytes_per_unknown", 1)
        if r is not None:
            note = _mega(r["unknowns"]) + (f", pc={r['pc']}" if "pc" in r else "")
            report(f"bytes_per_unknown_{problem}", r["bytes_per_unknown"], note)
    return rows


def _print_table(rows: list[Row]) -> None:
    print(f"{'target':38s} {'measured':>10s} {'target':>8s}  met  note")
    for name, value, target, met, note in rows:
        goal = f"{target:8.3g}" if target is not None else f"{'-':>8s}"
        flag = "rep" if met is None else ("yes" if met else "NO ")
        print(f"{name:38s} {value:10.4g} {goal}  {flag}  {note}".rstrip())


def _series(record: dict[str, Any]) -> tuple[str, float] | None:
    """Scaling-plot series name and time per step of a record (None: not plotted)."""
    p = record["problem"]
    if p.startswith("diffusion") and "step_s" in record:
        mode = record.get("mode", "tuned")
        return f"{p} {record['pc']} ({mode})", record["step_s"]
    if p == "coupled" and "step_s" in record:
        return f"coupled n={record['cells_per_side']}", record["step_s"]
    if p == "organ" and "s_per_step" in record:
        return f"organ ({record['mesh']})", record["s_per_step"]
    return None


def plot_scaling(records: list[dict[str, Any]], path: str | Path) -> Path | None:
    """Plot time per step and speedup against the MPI rank count (strong scaling).

    One line per diffusion preconditioner and substrate count, coupled box size and organ case,
    each with its ideal (time proportional to 1/N from its smallest rank count).

    Args:
        records: Records of runs at several rank counts.
        path: The PNG to write.

    Returns:
        The path, or None if no series has two rank counts or matplotlib is missing (a note
        is printed).
    """
    series: dict[str, dict[int, float]] = {}
    for r in records:
        s = _series(r)
        if s is not None:
            pts = series.setdefault(s[0], {})
            pts[r["ranks"]] = min(s[1], pts.get(r["ranks"], np.inf))
    series = {k: v for k, v in series.items() if len(v) > 1}
    if not series:
        return None
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("scaling plot skipped: matplotlib is not installed")
        return None
    fig, (ax_t, ax_s) = plt.subplots(1, 2, figsize=(12, 4.8))
    all_ranks = sorted({n for pts in series.values() for n in pts})
    for i, (name, pts) in enumerate(sorted(series.items())):
        ranks = sorted(pts)
        t = np.array([pts[n] for n in ranks])
        n0 = ranks[0]
        color = f"C{i % 10}"
        ax_t.loglog(ranks, t, "o-", color=color, label=name)
        ax_t.loglog(ranks, [t[0] * n0 / n for n in ranks], ":", color=color)
        ax_s.plot(ranks, n0 * t[0] / t, "o-", color=color, label=name)
    ax_s.plot(all_ranks, all_ranks, "k:", label="ideal")
    ax_t.set_xlabel("MPI ranks")
    ax_t.set_ylabel("time per step (s)")
    ax_t.set_title("time per step (dotted: ideal 1/N)")
    ax_s.set_xlabel("MPI ranks")
    ax_s.set_ylabel("speedup (vs 1 rank)")
    ax_s.set_title("speedup")
    for ax in (ax_t, ax_s):
        ax.set_xticks(all_ranks, [str(n) for n in all_ranks])
        ax.minorticks_off()
        ax.grid(True, alpha=0.3)
    ax_s.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _spawn(
    ranks: list[int], size: str, problems: list[str], out: Path, extra: list[str]
) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    for n in ranks:
        tmp = Path(tempfile.mkdtemp(prefix="tumorpde-bench-")) / "r.jsonl"
        mpiexec = Path(sys.executable).parent / "mpiexec"
        cmd = [str(mpiexec), "-n", str(n), sys.executable, "-m", "tumorpde.bench", "--size", size]
        cmd += ["--problem", *problems, "--json", str(tmp), "--no-spawn", *extra]
        subprocess.run(["timeout", "3000", *cmd], check=True)
        lines = tmp.read_text().splitlines()
        records += [json.loads(s) for s in lines]
        with out.open("a") as f:
            f.write("\n".join(lines) + "\n")
        shutil.rmtree(tmp.parent, ignore_errors=True)
    return records


def _cmd(args: argparse.Namespace) -> int:
    out = Path(args.json)
    problems = args.problem or list(PROBLEMS)
    if args.no_spawn:
        comm = _comm()
        records = run_all(comm, args.size, problems, out, args.organ_case, args.mesh_cache)
        if comm.rank == 0 and args.print:
            for r in records:
                print(json.dumps(r))
        return 0
    out.parent.mkdir(parents=True, exist_ok=True)
    ranks = [int(r) for r in args.ranks.split(",")]
    extra = ["--organ-case", str(args.organ_case)]
    if args.mesh_cache is not None:
        extra += ["--mesh-cache", str(args.mesh_cache)]
    records = _spawn(ranks, args.size, problems, out, extra)
    rows = summarize(records)
    _print_table(rows)
    summary = out.with_name(out.stem + "_summary.json")
    summary.write_text(
        json.dumps(
            [
                {"target": n, "measured": v, "goal": t, "met": m, "note": note}
                for n, v, t, m, note in rows
            ],
            indent=2,
        )
    )
    print(f"records: {out}\nsummary: {summary}")
    if len(set(ranks)) > 1:
        png = plot_scaling(records, out.with_name(out.stem + "_scaling.png"))
        print(f"scaling: {png}" if png else "scaling: no plot (see above)")
    return 0


def _add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--size", choices=sorted(SIZES), default="full")
    p.add_argument("--problem", nargs="+", choices=PROBLEMS, help="default: all")
    p.add_argument("--ranks", default="1,2", help="comma-separated MPI rank counts to run")
    p.add_argument("--json", default="benchmarks/results/bench.jsonl", help="JSON-lines output")
    p.add_argument("--no-spawn", action="store_true", help="run on this process's communicator")
    p.add_argument("--print", action="store_true", help="print records (with --no-spawn)")
    p.add_argument("--organ-case", type=Path, default=ORGAN_CASE, help="case of --problem organ")
    p.add_argument(
        "--mesh-cache",
        type=Path,
        help="where the fine organ mesh is built once (default ~/.cache/tumorpde/meshes)",
    )
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

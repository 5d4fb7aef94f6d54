"""Benchmark kernels: timed solver problems against the memory-bandwidth limit, as JSON records.

Problems (``tumorpde bench --problem ...``), run on one communicator at its current size:

* ``stream``: PETSc ``VecWAXPY`` triad, the bandwidth reference (GB/s) measured in the same run;
* ``diffusion``: BioFVM's diffusion-decay test (D = 0.1 mm²/min, decay 0.1/min, dt = 0.01 min)
  on a P1 box, backward Euler with the operator and mass matrix assembled once and the
  right-hand side as a mass-matrix product; 1 and 4 substrates (4 also as one block solved by
  :class:`~tumorpde.fem.multisolve.BlockCG`, ``layout: blocked``);
* ``coupled``: the product's coupled tumor-ligand-receptor Newton step (4 species) on a box, at
  one or more sizes (``--size full``: 0.5M and 2.05M unknowns);
* ``setup``: mesh, spaces and form compilation, cold (empty JIT cache) and warm: one small form,
  and all the product's forms (construction of a :class:`~tumorpde.simulation.Simulation` of the
  default box case with the JIT pointed at a fresh cache);
* ``organ``: a whole organ case (:data:`ORGAN_CASE`, the HER2 brain-metastasis case shipped as
  package data) end to end for a few fixed steps: mesh read, set-up, time stepping and output
  writing, on the atlas mesh of the case's organ (:func:`organ_mesh`: found in or built once
  into the mesh cache; coarse at ``tiny`` and ``small``, fine at ``full``).

Each record carries machine info, MPI ranks, sizes and times split into set-up, assembly and
solve, the achieved Krylov bandwidth as a fraction of the STREAM triad, and the peak resident
memory the benchmark added (``bytes_per_unknown``). :func:`run_all` runs the selected problems
and appends one JSON line per record for this rank count. Strong scaling (spawning ``mpiexec -n
N`` per rank count, the targets table and the scaling plot) is ``benchmarks/scaling.py`` of a
checkout; the command line is :mod:`tumorpde.cli.bench`.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import json
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from tumorpde.progress import Meter

__all__ = [
    "ORGAN_CASE",
    "PROBLEMS",
    "SIZES",
    "TARGETS",
    "TARGET_SIZE",
    "MeshUnavailableError",
    "bench_coupled",
    "bench_diffusion",
    "bench_organ",
    "bench_setup",
    "judge",
    "machine_info",
    "organ_mesh",
    "run_all",
    "stream_triad",
]

#: Per size preset: cells per side of the unit box (diffusion; coupled, one run per entry), and
#: the organ problem's mesh resolution and number of fixed time steps.
SIZES: dict[str, dict[str, Any]] = {
    "tiny": {"diffusion": 12, "coupled": [6, 8], "organ_mesh": "coarse", "organ_steps": 1},
    "small": {"diffusion": 40, "coupled": [16, 24], "organ_mesh": "coarse", "organ_steps": 3},
    # diffusion ~1.0M dofs; coupled 4 x 50^3 = 0.5M and 4 x 80^3 = 2.05M unknowns
    "full": {"diffusion": 99, "coupled": [49, 79], "organ_mesh": "fine", "organ_steps": 4},
}

#: The organ problem's case, shipped as package data (no mesh: :func:`bench_organ` uses the atlas
#: mesh of its ``organ``).
ORGAN_CASE = Path(
    str(resources.files("tumorpde.library").joinpath("data", "cases", "her2_brain_metastasis.toml"))
)

#: Fixed step of the organ problem (the case's own ``dt``; adaptivity is switched off).
ORGAN_DT_H = 6.0

PROBLEMS = ("setup", "diffusion", "coupled", "organ")

#: Per-step/iteration targets on one core (issue "Performance"); ``benchmarks/scaling.py``
#: prints them beside the measured values. They are set for the full-size problems
#: (:data:`TARGET_SIZE`): smaller problems run at other costs per unknown.
TARGETS: dict[str, float] = {
    "diffusion_1_s_per_Mdof": 1.0,
    "diffusion_4_s_per_Munknown": 0.8,
    "coupled_s_per_Munknown_1rank": 5.0,
    "coupled_s_per_Munknown_2ranks": 3.0,
    "krylov_stream_fraction": 0.8,
    "speedup_2ranks": 1.6,
    "setup_s_per_Mvertex": 15.0,
    "compile_cold_s": 2.0,
    "compile_warm_s": 0.05,
    # all of a Simulation's forms (default box case) with an empty cache (issue 18)
    "product_compile_cold_s": 3.0,
}

#: The size the :data:`TARGETS` are set for; a measurement at another size is not judged.
TARGET_SIZE = "full"


def judge(value: float, goal: float, size: str, lower: bool = True) -> bool | None:
    """Whether a measured value meets its target, or None when ``size`` is not the targets' size.

    A tiny or small problem has other per-unknown costs (set-up and latency dominate), so
    comparing it with a full-size target would print a meaningless NO.

    Args:
        value: The measured value.
        goal: The target.
        size: The :data:`SIZES` key the value was measured at.
        lower: The target is an upper bound (else a lower bound).

    Returns:
        True or False at :data:`TARGET_SIZE`, None at other sizes.
    """
    if size != TARGET_SIZE:
        return None
    return value <= goal if lower else value >= goal


#: Highest VmHWM (KiB) seen before a reset by :func:`_memory_probe` (the process-wide peak).
_PEAK_KIB = [0.0]


class MeshUnavailableError(RuntimeError):
    """The organ problem's atlas mesh is not in the cache and could not be built."""


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

    Batched compilations (:mod:`tumorpde.fem.jit`, several forms in one module) are timed and
    counted too (``batches``); a form found in a batch is not a JIT call.

    Yields:
        ``{"seconds": time inside the JIT on this rank, "calls": number of single JIT calls,
        "batches": number of batched compilations}``.
    """
    from dolfinx import jit

    from tumorpde.fem import jit as batch_jit

    get_options, ffcx_jit = jit.get_options, jit.ffcx_jit
    compile_batch = batch_jit._compile_batch
    stats = {"seconds": 0.0, "calls": 0.0, "batches": 0.0}

    def timed(fn: Callable[..., Any], count: str) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                stats["seconds"] += time.perf_counter() - t0
                stats[count] += 1

        return call

    def options(priority_options: dict | None = None) -> dict:
        return get_options({**(priority_options or {}), "cache_dir": cache_dir})

    jit.ffcx_jit = timed(ffcx_jit, "calls")
    batch_jit._compile_batch = timed(compile_batch, "batches")
    if cache_dir is not None:
        jit.get_options = options
    try:
        yield stats
    finally:
        jit.ffcx_jit, jit.get_options = ffcx_jit, get_options
        batch_jit._compile_batch = compile_batch


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


def _diffusion_operators(comm: Any, n: int) -> tuple[Any, Any, Any, float, float]:
    """The diffusion bench's P1 space on the unit-mm box, its step matrix and mass matrix.

    Returns:
        ``(V, A, M, set-up seconds, matrix-assembly seconds)`` with ``A = M + dt (D K + lam M)``.
    """
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
    return V, A, M, t_setup, t_matrix


def bench_diffusion(
    comm: Any,
    n: int,
    substrates: int,
    pc: str,
    mode: str = "tuned",
    steps: int = 10,
    layout: str = "per_field",
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
        layout: ``"per_field"``: one ``KSPSolve`` (and one mass-matrix product) per field.
            ``"blocked"``: the fields as the columns of one dense block, the right-hand sides
            as one mass-times-block product and all fields solved together by
            :class:`~tumorpde.fem.multisolve.BlockCG` (``pc`` jacobi or none): the same CG
            iterations, one pass over the matrix per iteration for all fields.

    Returns:
        The record, with the linear error of the last solve (against a 1e-12 solve, untimed)
        next to the local time-error estimate of that step.
    """
    if layout == "blocked":
        return _bench_diffusion_blocked(comm, n, substrates, pc, mode, steps)
    if layout != "per_field":
        raise ValueError(f"layout must be 'per_field' or 'blocked', not {layout!r}")
    from petsc4py import PETSc

    from dolfinx import fem

    V, A, M, t_setup, t_matrix = _diffusion_operators(comm, n)
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
        "layout": layout,
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


def _bench_diffusion_blocked(
    comm: Any, n: int, substrates: int, pc: str, mode: str, steps: int
) -> dict[str, Any]:
    """:func:`bench_diffusion` with ``layout="blocked"`` (same problem, same record keys)."""
    from dolfinx import fem

    from tumorpde.fem.multisolve import BlockCG, dense_block

    V, A, M, t_setup, t_matrix = _diffusion_operators(comm, n)
    solver = BlockCG(A, substrates, pc)
    tuned = mode == "tuned"
    U, older, B, X = (dense_block(A, substrates) for _ in range(4))  # u^n, u^{n-1}, rhs, u^{n+1}
    f = fem.Function(V)
    for k in range(substrates):
        f.interpolate(lambda x, k=k: np.exp(-((x - 0.5 + 0.05 * k) ** 2).sum(axis=0) / 0.02))
        U.getDenseArray()[:, k] = f.x.petsc_vec.getArray(readonly=True)
    u, uold, x = U.getDenseArray(), older.getDenseArray(), X.getDenseArray()
    uold[:] = u
    for blk in (U, older):
        blk.assemble()
    rtol = np.full(substrates, 1e-8)
    pred = np.empty_like(u)
    t_rhs = t_solve = 0.0
    its = passes = 0
    err_time = 0.0
    for step in range(steps):
        comm.Barrier()
        s0 = time.perf_counter()
        M.matMult(U, B)  # all right-hand sides in one pass over M
        if tuned:
            np.multiply(u, 2.0, out=x)  # x = 2u^n - u^{n-1} (u^n on the first step)
            x -= uold
            X.assemble()
        s1 = time.perf_counter()
        solver.solve(B, X, rtol=rtol if tuned else 1e-8, nonzero_guess=tuned)
        s2 = time.perf_counter()
        t_rhs += s1 - s0
        t_solve += s2 - s1
        its += int(solver.iterations.sum())
        passes += solver.passes
        if step > 0:  # Milne, per field: half the distance to the linear predictor, relative
            np.multiply(u, 2.0, out=pred)
            pred -= uold
            pred -= x
            sq = comm.allreduce(
                np.stack([np.einsum("ij,ij->j", pred, pred), np.einsum("ij,ij->j", x, x)])
            )
            errs = 0.5 * np.sqrt(sq[0] / sq[1])
            err_time = float(errs[-1])
            if tuned:
                rtol = np.clip(LINEAR_SAFETY * errs, 1e-12, 1e-4)
        uold[:] = u
        u[:] = x
        for blk in (U, older):
            blk.assemble()
    # linear error of the last solve against a tight solve of the same system (not timed)
    ref = dense_block(A, substrates)
    ref.getDenseArray()[:] = x
    ref.assemble()
    solver.solve(B, ref, rtol=1e-12, nonzero_guess=True)
    r = ref.getDenseArray(readonly=True)
    sq = comm.allreduce(np.stack([((r - x)[:, -1] ** 2).sum(), (r[:, -1] ** 2).sum()]))
    err_linear = float(np.sqrt(sq[0] / sq[1]))
    t_rhs, t_solve = _max_time(comm, t_rhs), _max_time(comm, t_solve)
    dofs = V.dofmap.index_map.size_global
    per_step = (t_rhs + t_solve) / steps
    # one lockstep iteration: the matrix once, 11 vector streams per active field
    bytes_pass = _krylov_bytes(A, n_vectors=0)
    bytes_total = bytes_pass * passes + 8.0 * 11 * A.getSize()[0] * its
    out = {
        "problem": f"diffusion_{substrates}",
        "pc": pc,
        "mode": mode,
        "layout": "blocked",
        "dofs": dofs,
        "unknowns": dofs * substrates,
        "steps": steps,
        "krylov_its_per_solve": its / (steps * substrates),
        "matrix_passes_per_step": passes / steps,
        "setup_s": t_setup,
        "matrix_assembly_s": t_matrix,
        "rhs_s_per_step": t_rhs / steps,
        "solve_s_per_step": t_solve / steps,
        "step_s": per_step,
        "s_per_Munknown": per_step / (dofs * substrates / 1e6),
        "krylov_GBps": bytes_total / t_solve / 1e9 if t_solve > 0 else 0.0,
        "linear_error_last_step": err_linear,
        "time_error_estimate_last_step": err_time,
    }
    solver.destroy()
    for obj in (A, M, U, older, B, X, ref):
        obj.destroy()
    return out


def bench_coupled(
    comm: Any, n: int, newton_steps: int = 3, solver: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The product's coupled Newton step on a unit-mm box with the default physics.

    Args:
        comm: MPI communicator.
        n: Cells per side of the box.
        newton_steps: Time steps (12 h each).
        solver: A ``[solver]`` table for the case (e.g. ``{"preconditioner": "fieldsplit"}``
            or ``{"petsc": {...}}``); default: the product's defaults.
    """
    from petsc4py import PETSc

    from tumorpde.config import config_from_dict
    from tumorpde.simulation import Simulation
    from tumorpde.studies.cases import example_box_case

    extra = {"solver": solver} if solver else {}
    case = example_box_case(
        10.0,
        n,
        "bench_coupled",
        time={"t_end": f"{12 * newton_steps} h", "dt": "12 h"},
        **extra,
    )
    cfg = config_from_dict(case)
    t0 = time.perf_counter()
    sim = Simulation(cfg, comm)
    t_setup = _max_time(comm, time.perf_counter() - t0)
    PETSc.Log.begin()
    ev = {
        k: PETSc.Log.Event(k)
        for k in ("SNESJacobianEval", "SNESFunctionEval", "KSPSolve", "PCSetUpOnBlocks")
    }
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
    described = sim.solver.describe()
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
        # set-up of the preconditioner's blocks: the ILU(0) factorization of block Jacobi, or
        # the GAMG hierarchies and the LU of a field split (not part of KSPSolve's time)
        "pc_setup_s_per_step": spent["PCSetUpOnBlocks"] / nsteps,
        "assembly_fraction": (spent["SNESJacobianEval"] + spent["SNESFunctionEval"]) / t_total,
        "s_per_Munknown": t_total / nsteps / (unknowns / 1e6),
        "solver": described,
        "solver_table": solver or {},
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
        Cold and warm times (max over ranks), the number of single JIT calls
        (``product_jit_objects``) and of batched ones (``product_jit_batches``)
        and of kernel modules compiled into the cache by each pass
        (``product_jit_kernels_cold``/``_warm``: distinct form signatures; 0 when warm).
    """
    import itertools

    import ufl

    from tumorpde.config import config_from_dict
    from tumorpde.simulation import Simulation
    from tumorpde.studies.cases import example_box_case

    cfg = config_from_dict(example_box_case(10.0, cells, "bench_compile"))
    cache = _shared_tempdir(comm, "tumorpde-jit-product-")
    out: dict[str, Any] = {}
    compiled = 0  # kernel modules in the cache so far
    # Both passes number their UFL Constants from the same count, as two fresh runs would: UFL
    # orders a sum of Constants by their text ("c_11" before "c_9"), so a second construction
    # in one process can change a signature and compile a kernel a new run would find cached.
    first = next(ufl.Constant._counter) if ufl.Constant._counter is not None else 0
    for label in ("cold", "warm"):
        ufl.Constant._counter = itertools.count(first)
        comm.Barrier()
        t0 = time.perf_counter()
        with _jit_probe(str(cache)) as jit:
            sim = Simulation(cfg, comm)
        t_setup = time.perf_counter() - t0
        sim.solver.destroy()
        out[f"product_setup_{label}_s"] = _max_time(comm, t_setup)
        out[f"product_compile_{label}_s"] = _max_time(comm, jit["seconds"])
        out["product_jit_objects"] = int(jit["calls"])
        out["product_jit_batches"] = int(jit["batches"])
        kernels = comm.bcast(len(list(cache.glob("libffcx_*.c.cached"))), root=0)
        out[f"product_jit_kernels_{label}"] = kernels - compiled
        compiled = kernels
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
        organ: Atlas organ (:data:`tumorpde.meshing.atlas.ORGANS`).
        resolution: ``coarse`` or ``fine``.
        cache_dir: Directory (default :func:`tumorpde.meshing.atlas.default_cache_dir`, as the CLI).
        size: Override the target edge length (mm); for tests of this function only, as the
            result is cached under the resolution's name.

    Returns:
        The ``.msh`` path (same on all ranks).

    Raises:
        MeshUnavailableError: On every rank, if the build failed (the message says why).
    """
    from tumorpde.meshing.atlas import build_organ, default_cache_dir

    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    stem = organ if resolution == "coarse" else f"{organ}_{resolution}"
    path = cache / f"{stem}.msh"
    err = None
    if comm.rank == 0 and not (path.is_file() and path.with_suffix(".json").is_file()):
        print(
            f"bench: building the {resolution} {organ} mesh into {cache} (once)",
            file=sys.stderr,
            flush=True,
        )
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
    into a temporary directory (removed afterwards). The mesh is the atlas mesh of the case's
    ``organ`` at ``resolution`` (:func:`organ_mesh`: from ``mesh_cache``, built there once if
    missing), except that ``coarse`` keeps the case's own mesh when it has a ``[mesh]`` table
    (:data:`ORGAN_CASE` has none).

    Times are the max over ranks: ``config_s`` (reading and validating the case), ``mesh_read_s``
    (reading and partitioning the mesh), ``setup_s`` (the rest of the Simulation construction,
    with ``jit_s`` of it in form compilation), ``io_s`` (field files and picture),
    ``stepping_s`` (the run minus I/O: Newton solves, ``newton_solve_s``, plus QoIs and error
    control) and ``total_s`` (wall time of all of it).

    Args:
        comm: Communicator.
        steps: Number of time steps.
        resolution: ``coarse`` or ``fine`` (atlas resolution; see above).
        case: The TOML case.
        mesh_cache: Directory of the atlas meshes (default
            :func:`tumorpde.meshing.atlas.default_cache_dir`; a checkout's ``meshes/`` holds the
            coarse ones).
        picture: Render ``final.png`` if the case asks for it.

    Returns:
        The record.

    Raises:
        ValueError: If an atlas mesh is needed and the case has no ``organ``.
        MeshUnavailableError: If the atlas mesh is not in the cache and could not be built.
    """
    from tumorpde.config import config_from_dict, read_case_tables
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
    atlas = None
    tables = read_case_tables(case)
    if resolution != "coarse" or "mesh" not in tables:
        organ = tables.get("organ")
        if not organ:
            raise ValueError(f"{case}: no 'organ' key, so no atlas mesh to use")
        atlas = organ_mesh(comm, organ, resolution, mesh_cache)
    comm.Barrier()
    t0 = time.perf_counter()
    tables = read_case_tables(case)
    if atlas is not None:
        tables["mesh"] = {"kind": "file", "path": str(atlas), "unit": "mm"}
    cfg = config_from_dict(tables, base_dir=case.parent, source=str(case), overrides=overrides)
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
    organ_case: str | Path | None = None,
    mesh_cache: str | Path | None = None,
    coupled_solver: dict[str, Any] | None = None,
    coupled_pcs: list[str] | None = None,
) -> list[dict[str, Any]]:
    """Run the selected problems on ``comm`` (a communicator from tumorpde.fem.backend's MPI).

    The ``stream`` triad always runs (the bandwidth reference). Rank 0 appends one JSON line
    per record to ``out``: the records of this rank count.

    Args:
        comm: Communicator.
        size: Key of :data:`SIZES`.
        problems: Subset of :data:`PROBLEMS`.
        out: JSON-lines file, or None.
        organ_case: Case of the ``organ`` problem (default :data:`ORGAN_CASE`).
        mesh_cache: Directory of the atlas meshes of the ``organ`` problem (see
            :func:`bench_organ`).
        coupled_solver: ``[solver]`` table of the ``coupled`` problem (see
            :func:`bench_coupled`), e.g. ``{"preconditioner": "fieldsplit"}``.
        coupled_pcs: Run the ``coupled`` problem once per entry with ``[solver]
            preconditioner`` set to it (``"default"``: the case's default); each record has a
            ``preconditioner`` key. Default: only ``coupled_solver`` as given.

    Returns:
        The records (same on all ranks).
    """
    common = {
        "ranks": comm.size,
        "size": size,
        "machine": machine_info(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    n = SIZES[size]
    # progress: one unit per measurement, on stderr (stdout carries the JSON records)
    pcs = [pc for pc in ("jacobi", "sor", "gamg") if not (comm.size > 1 and pc == "sor")]
    variants: list[tuple[str, dict[str, Any] | None]] = []
    for name in coupled_pcs or ["default"]:
        table = dict(coupled_solver or {})
        if name != "default":
            table["preconditioner"] = name
        variants.append((table.get("preconditioner", "default"), table or None))
    units = {
        "setup": 1,
        "diffusion": len(pcs) + 3,
        "coupled": len(n["coupled"]) * len(variants),
        "organ": 1,
    }
    meter = Meter(f"bench {size}", 1 + sum(units[p] for p in problems if p in units), err=True)
    done = [0]

    def tick(what: str) -> None:
        done[0] += 1
        if comm.rank == 0:
            meter.update(done[0], what)

    bw = stream_triad(comm)
    records: list[dict[str, Any]] = [{"problem": "stream", "triad_GBps": bw}]
    tick("stream triad")
    if "setup" in problems:
        records.append(_measured(comm, bench_setup, n["diffusion"]))
        tick("setup")
    if "diffusion" in problems:
        # the prototype set-up once, then initial guess + time-error-tied tolerance
        records.append(_measured(comm, bench_diffusion, n["diffusion"], 1, "jacobi", "strict"))
        tick("diffusion jacobi (strict)")
        for pc in pcs:  # SOR is rank-local in parallel; jacobi and gamg are the comparisons
            records.append(_measured(comm, bench_diffusion, n["diffusion"], 1, pc))
            tick(f"diffusion {pc}")
        records.append(_measured(comm, bench_diffusion, n["diffusion"], 4, "jacobi"))
        tick("diffusion, 4 substrates")
        # the same 4 fields as one block: one pass over the matrix per CG iteration for all
        blocked = (n["diffusion"], 4, "jacobi", "tuned", 10, "blocked")
        records.append(_measured(comm, bench_diffusion, *blocked))
        tick("diffusion, 4 substrates blocked")
    if "coupled" in problems:
        for cells in n["coupled"]:
            for name, table in variants:
                rec = _measured(comm, bench_coupled, cells, 3, table)
                rec["preconditioner"] = name
                records.append(rec)
                tick(f"coupled n={cells} ({name})")
    if "organ" in problems:
        try:
            records.append(
                _measured(
                    comm,
                    bench_organ,
                    n["organ_steps"],
                    n["organ_mesh"],
                    ORGAN_CASE if organ_case is None else organ_case,
                    mesh_cache,
                    size != "tiny",  # no picture in the CI-sized run (it costs ~2 s)
                )
            )
        except MeshUnavailableError as exc:  # no mesh could be built: say so, keep the rest
            if comm.rank == 0:
                print(f"bench: organ problem skipped: {exc}", file=sys.stderr, flush=True)
            records.append({"problem": "organ", "skipped": str(exc)})
        tick("organ")
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

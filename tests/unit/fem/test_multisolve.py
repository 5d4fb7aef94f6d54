"""Blocked CG on several right-hand sides equals one KSP CG solve per field (serial and 2 ranks).

The operator is the diffusion-decay matrix of the bench (backward Euler, D = 6 mm²/h, decay
6 /h, dt = 0.01 min) on a small box; four right-hand sides with different tolerances and
initial guesses. Serial and under ``mpiexec -n 2``.
"""

from __future__ import annotations

# isort: off
import tumorpde.fem.backend  # noqa: F401
from petsc4py import PETSc

# isort: on

import numpy as np
import pytest

from tumorpde.fem.multisolve import BlockCG, columns_of, dense_block, set_columns, solve_columns


def _operator(comm, n=10):
    import ufl
    from dolfinx import fem, mesh
    from dolfinx.fem.petsc import assemble_matrix

    msh = mesh.create_box(comm, [np.zeros(3), np.ones(3)], [n, n, n], mesh.CellType.tetrahedron)
    V = fem.functionspace(msh, ("Lagrange", 1))
    w, v = ufl.TrialFunction(V), ufl.TestFunction(V)
    dt = 0.01 / 60
    a = (w * v + dt * (6.0 * ufl.inner(ufl.grad(w), ufl.grad(v)) + 6.0 * w * v)) * ufl.dx
    A = assemble_matrix(fem.form(a))
    A.assemble()
    fields = []
    for k in range(4):
        f = fem.Function(V)
        f.interpolate(lambda x, k=k: np.exp(-((x - 0.5 + 0.05 * k) ** 2).sum(axis=0) / 0.02))
        fields.append(f.x.petsc_vec.getArray(readonly=True).copy())
    return A, fields


def _ksp(A, rtol, nonzero):
    ksp = PETSc.KSP().create(A.getComm())
    ksp.setOperators(A)
    ksp.setType("cg")
    ksp.getPC().setType("jacobi")
    ksp.setTolerances(rtol=rtol, atol=1e-50)
    ksp.setInitialGuessNonzero(nonzero)
    ksp.setUp()
    return ksp


def _max_rel_diff(comm, X, Y):
    from mpi4py import MPI

    x, y = X.getDenseArray(readonly=True), Y.getDenseArray(readonly=True)
    num = comm.allreduce(((x - y) ** 2).sum(axis=0), op=MPI.SUM)
    den = comm.allreduce((y**2).sum(axis=0), op=MPI.SUM)
    return float(np.sqrt(num / den).max())


def test_block_cg_equals_per_field_ksp_solves(comm):
    A, fields = _operator(comm)
    B, X, Y = dense_block(A, 4), dense_block(A, 4), dense_block(A, 4)
    set_columns(B, fields)
    # zero initial guess, one tolerance
    ksp = _ksp(A, 1e-10, False)
    its_ref = solve_columns(ksp, B, Y)
    solver = BlockCG(A, 4)
    its = solver.solve(B, X, rtol=1e-10)
    assert list(its) == its_ref and min(its) > 5
    assert solver.passes == max(its)  # one pass over A per lockstep iteration
    assert _max_rel_diff(comm, X, Y) < 1e-8
    # the solution solves the system: |B - A X| / |B| is at the tolerance's level
    R = A.matMult(X)
    assert _max_rel_diff(comm, R, B) < 1e-7
    # nonzero initial guesses and one tolerance per column (as the tuned bench)
    guesses = [0.9 * c for c in columns_of(X)]
    rtols = [1e-6, 1e-7, 1e-8, 1e-9]
    set_columns(X, guesses)
    solver.solve(B, X, rtol=rtols, nonzero_guess=True)
    for j, rtol in enumerate(rtols):
        ksp_j = _ksp(A, rtol, True)
        b = B.getColumnVector(j)
        y = b.duplicate()
        y.getArray()[:] = guesses[j]
        ksp_j.solve(b, y)
        assert solver.iterations[j] == ksp_j.getIterationNumber()
        diff = y.copy()
        diff.axpy(-1.0, X.getColumnVector(j))
        assert diff.norm() / y.norm() < 1e-8
        for obj in (ksp_j, b, y, diff):
            obj.destroy()
    solver.destroy()
    for obj in (A, B, X, Y, R, ksp):
        obj.destroy()


def test_block_cg_rejects_what_it_cannot_do(comm):
    A, _ = _operator(comm, 4)
    with pytest.raises(ValueError, match="jacobi"):
        BlockCG(A, 2, pc="sor")
    solver = BlockCG(A, 2, max_it=2)
    B, X = dense_block(A, 2), dense_block(A, 2)
    B.getDenseArray()[:] = 1.0
    B.assemble()
    with pytest.raises(RuntimeError, match="no convergence"):
        solver.solve(B, X, rtol=1e-12)
    solver.destroy()
    for obj in (A, B, X):
        obj.destroy()

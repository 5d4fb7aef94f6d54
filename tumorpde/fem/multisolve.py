r"""Solve several right-hand sides with one symmetric positive definite operator at once.

Independent fields that share one operator (substrates with the same diffusion-decay operator,
:func:`tumorpde.studies.bench.bench_diffusion`) are solved by one conjugate-gradient (CG)
iteration per field (Hestenes & Stiefel 1952, J. Res. Natl. Bur. Stand. 49:409), run in
lockstep on a block of ``k`` columns stored as a PETSc dense matrix: each iteration applies the
operator to all columns in one sparse-times-dense product (``MatMatMult`` of AIJ and dense),
which reads the matrix once instead of ``k`` times, and reduces the ``2k`` inner products in one
``MPI_Allreduce``. The recurrence of each column is the preconditioned CG of PETSc's ``KSPCG``
with Jacobi preconditioning (Saad 2003, *Iterative Methods for Sparse Linear Systems*, 2nd ed.,
SIAM, Alg. 9.1) and its default convergence test (preconditioned residual norm ``|D^{-1} r| <=
max(rtol |D^{-1} b|, atol)``), so each column takes the iterations and gives the solution of a
separate ``KSPSolve`` up to round-off; a converged column is frozen while the others iterate.

Why not PETSc's own multi-right-hand-side path: ``KSPMatSolve`` is implemented only by
``KSPHPDDM`` (not in this PETSc build) and ``KSPPREONLY``; for ``KSPCG`` it loops over the
columns, one ``KSPSolve`` each. ``MatCreateMAIJ`` (interleaved layout) is not exposed by
petsc4py. :func:`solve_columns` is that loop (any KSP), the reference of the tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import tumorpde.fem.backend  # noqa: F401  (before any petsc4py import)
from petsc4py import PETSc

import numpy as np

__all__ = ["BlockCG", "columns_of", "dense_block", "set_columns", "solve_columns"]


def dense_block(A: PETSc.Mat, k: int) -> PETSc.Mat:
    """A zeroed dense matrix of ``k`` columns with the row layout of ``A`` (one column per field).

    Args:
        A: The operator (its row distribution is used).
        k: Number of columns.

    Returns:
        The assembled ``MATDENSE`` (``getDenseArray()`` is the owned rows, column-major).
    """
    rows = cast("tuple[int, int]", A.getSizes()[0])
    X = PETSc.Mat().createDense((rows, (PETSc.DECIDE, k)), comm=A.getComm())
    X.setUp()
    X.zeroEntries()
    X.assemble()
    return X


def solve_columns(ksp: PETSc.KSP, B: PETSc.Mat, X: PETSc.Mat) -> list[int]:
    """Solve ``A X[:, j] = B[:, j]`` column by column with ``ksp`` (``KSPSolve`` per column).

    Honors the KSP's ``initial guess nonzero`` setting (``X`` holds the guesses then).

    Args:
        ksp: A set-up KSP with the operator.
        B: Right-hand sides (dense, ``k`` columns).
        X: Solutions (dense, same layout as ``B``), overwritten.

    Returns:
        The iterations of each column.
    """
    its = []
    for j in range(B.getSize()[1]):
        b = B.getColumnVector(j)
        x = X.getColumnVector(j)
        ksp.solve(b, x)
        X.getDenseArray()[:, j] = x.getArray(readonly=True)
        its.append(ksp.getIterationNumber())
        b.destroy()
        x.destroy()
    X.assemble()
    return its


class BlockCG:
    """Jacobi-preconditioned CG on ``k`` right-hand sides in lockstep (one matrix pass per step).

    The operator must be symmetric positive definite with a positive diagonal. The work space
    (three dense blocks) is allocated once and reused by every :meth:`solve`.

    Args:
        A: The assembled operator (AIJ).
        k: Number of right-hand sides per solve.
        pc: ``"jacobi"`` (diagonal scaling) or ``"none"``.
        max_it: Iteration limit.

    Raises:
        ValueError: For another ``pc`` or a non-positive diagonal.
    """

    def __init__(self, A: PETSc.Mat, k: int, pc: str = "jacobi", max_it: int = 10_000) -> None:
        if pc not in ("jacobi", "none"):
            raise ValueError(f"BlockCG supports pc 'jacobi' or 'none', not {pc!r}")
        self.A = A
        self.k = k
        self.max_it = max_it
        self._dinv = A.getDiagonal()
        if pc == "jacobi":
            if self._dinv.min()[1] <= 0.0:
                raise ValueError("BlockCG with jacobi needs a positive diagonal")
            self._dinv.reciprocal()
        else:
            self._dinv.set(1.0)
        self._P = dense_block(A, k)  # search directions
        self._Q = dense_block(A, k)  # A P
        self._R = dense_block(A, k)  # residuals
        self._Z = dense_block(A, k)  # preconditioned residuals
        self._p, self._q, self._r, self._z = (
            self._columns(M) for M in (self._P, self._Q, self._R, self._Z)
        )
        #: Iterations of each column in the last solve.
        self.iterations = np.zeros(k, dtype=int)
        #: Matrix passes (lockstep iterations + the initial residual) of the last solve.
        self.passes = 0

    def _columns(self, M: PETSc.Mat) -> list[PETSc.Vec]:
        """Vectors sharing the memory of the columns of a dense block (owned rows)."""
        a: Any = M.getDenseArray()
        if M.getDenseLDA() != a.shape[0]:
            raise ValueError("BlockCG needs dense blocks without row padding (lda = local rows)")
        n = self.A.getSizes()[0]
        return [
            PETSc.Vec().createWithArray(a[:, j], size=n, comm=M.getComm()) for j in range(self.k)
        ]

    @staticmethod
    def _reduce(begin: list[tuple[str, PETSc.Vec, PETSc.Vec | None]]) -> list[float]:
        """Several inner products / squared norms in one allreduce (PETSc split reductions)."""
        for op, u, w in begin:
            if op == "dot":
                assert w is not None
                u.dotBegin(w)
            else:
                u.normBegin()
        out: list[float] = []
        for op, u, w in begin:
            if op == "dot":
                assert w is not None
                out.append(float(np.real(u.dotEnd(w))))
            else:
                out.append(float(np.asarray(u.normEnd()).ravel()[0]) ** 2)
        return out

    def solve(
        self,
        B: PETSc.Mat,
        X: PETSc.Mat,
        rtol: float | Sequence[float] = 1e-8,
        atol: float = 1e-50,
        nonzero_guess: bool = False,
    ) -> np.ndarray:
        """Solve ``A X = B`` for all columns.

        Args:
            B: Right-hand sides (dense, ``k`` columns, rows as ``A``).
            X: Solutions; the initial guesses if ``nonzero_guess``. Overwritten.
            rtol: Relative tolerance, one for all columns or one per column.
            atol: Absolute tolerance (preconditioned residual norm).
            nonzero_guess: Start from ``X`` (else from zero).

        Returns:
            The iterations of each column (also :attr:`iterations`).

        Raises:
            RuntimeError: On every rank, if a column did not converge in ``max_it`` iterations
                or CG broke down (the operator is not positive definite).
        """
        k = self.k
        tol = np.broadcast_to(np.asarray(rtol, dtype=float), (k,))
        b, x = self._columns(B), self._columns(X)
        r, p, q, z = self._r, self._p, self._q, self._z
        passes = 0
        if nonzero_guess:
            self.A.matMult(X, self._R)  # r = b - A x
            passes += 1
            for j in range(k):
                r[j].aypx(-1.0, b[j])
        else:
            X.zeroEntries()
            for j in range(k):
                b[j].copy(r[j])
        # preconditioned norms of b (PETSc's default reference) and of r; r.z
        for j in range(k):
            z[j].pointwiseMult(self._dinv, b[j])
        bb = self._reduce([("norm", z[j], None) for j in range(k)])
        for j in range(k):
            z[j].pointwiseMult(self._dinv, r[j])
        red = self._reduce(
            [("norm", z[j], None) for j in range(k)] + [("dot", r[j], z[j]) for j in range(k)]
        )
        zz, rz = np.array(red[:k]), np.array(red[k:])
        target = np.maximum(tol * np.sqrt(bb), atol)
        active = np.sqrt(zz) > target
        its = np.zeros(k, dtype=int)
        for j in range(k):
            z[j].copy(p[j])
        while active.any():
            if int(its.max()) >= self.max_it:
                raise RuntimeError(f"BlockCG: no convergence in {self.max_it} iterations")
            self.A.matMult(self._P, self._Q)  # one pass over A for all columns
            passes += 1
            cols = [j for j in range(k) if active[j]]
            pq = self._reduce([("dot", p[j], q[j]) for j in cols])
            if min(pq) <= 0.0:
                raise RuntimeError("BlockCG: breakdown (operator not positive definite)")
            for j, pqj in zip(cols, pq, strict=True):
                alpha = rz[j] / pqj
                x[j].axpy(alpha, p[j])
                r[j].axpy(-alpha, q[j])
                z[j].pointwiseMult(self._dinv, r[j])
                its[j] += 1
            red = self._reduce(
                [("norm", z[j], None) for j in cols] + [("dot", r[j], z[j]) for j in cols]
            )
            for i, j in enumerate(cols):
                rz_new = red[len(cols) + i]
                if np.sqrt(red[i]) <= target[j]:
                    active[j] = False
                    continue
                p[j].aypx(rz_new / rz[j], z[j])  # p = z + beta p
                rz[j] = rz_new
        for v in (*b, *x):
            v.destroy()
        X.assemble()
        self.iterations = its
        self.passes = passes
        return its

    def destroy(self) -> None:
        """Free the work space."""
        for v in (*self._p, *self._q, *self._r, *self._z, self._dinv):
            v.destroy()
        for M in (self._P, self._Q, self._R, self._Z):
            M.destroy()


def columns_of(X: PETSc.Mat) -> list[np.ndarray]:
    """Copies of the owned rows of each column of a dense block (for checks and output)."""
    a = X.getDenseArray(readonly=True)
    return [a[:, j].copy() for j in range(a.shape[1])]


def set_columns(X: PETSc.Mat, columns: Sequence[Any]) -> None:
    """Fill the columns of a dense block from owned-row arrays (or PETSc vectors).

    Args:
        X: Dense block with ``len(columns)`` columns.
        columns: Per column, an array of the owned rows or a ``PETSc.Vec``.
    """
    a = X.getDenseArray()
    for j, c in enumerate(columns):
        a[:, j] = c.getArray(readonly=True) if isinstance(c, PETSc.Vec) else c
    X.assemble()

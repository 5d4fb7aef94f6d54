"""Solver: a PETSc SNES (Newton) wrapper around DOLFINx's NonlinearProblem for the coupled step.

The PETSc options come from the case (``[solver.petsc]``) merged over
:data:`tumorpde.config.DEFAULT_PETSC` and are applied under the prefix ``tumorpde_``, so
``PETSC_OPTIONS="-tumorpde_snes_monitor"`` also works.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import tumorpde.backend  # noqa: F401  (before any dolfinx import)

__all__ = [
    "NewtonResult",
    "NewtonSolver",
    "SolverOptionsError",
    "converged_reason_name",
    "solver_for",
]

PREFIX = "tumorpde_"


class SolverOptionsError(ValueError):
    """PETSc rejected the solver options of a case (raised alike on every rank)."""


@dataclass(frozen=True)
class NewtonResult:
    """Outcome of one nonlinear solve (identical on all ranks)."""

    converged: bool
    reason: int
    reason_name: str
    newton_iterations: int
    linear_iterations: int


def converged_reason_name(reason: int) -> str:
    """Name of a PETSc ``SNESConvergedReason`` code."""
    from petsc4py import PETSc

    names = {v: k for k, v in vars(PETSc.SNES.ConvergedReason).items() if isinstance(v, int)}
    return names.get(reason, str(reason))


class NewtonSolver:
    """Monolithic Newton solver for a list of residuals in a list of unknowns.

    Args:
        residuals: UFL residual forms, one per unknown.
        unknowns: DOLFINx Functions, updated in place by :meth:`solve`.
        petsc_options: PETSc options without prefix.
        prefix: PETSc options prefix.
        lower_bounds: Per unknown, a lower bound or None (unbounded); used by the variational-
            inequality SNES types (``vinewton*``). Default: 0 for every unknown.
        parts: Per residual ``(pointwise part, flux part or None)`` with ``residual = sum``.
            With it the Jacobian is assembled blockwise: flux blocks as matrices, pointwise
            (vertex-quadrature) blocks as their diagonals from one vector assembly each, which
            skips the 4x4 element matrices that are zero off the diagonal. Without it DOLFINx
            assembles every block as a matrix.
        integrands: The pointwise parts' integrands (``parts[i][0] = g_i v dx_lumped``): then
            the residual's and the Jacobian's pointwise parts are evaluated together, one kernel
            each (:mod:`tumorpde.pointwise`).
    """

    def __init__(
        self,
        residuals: list[Any],
        unknowns: list[Any],
        petsc_options: dict[str, Any],
        prefix: str = PREFIX,
        lower_bounds: list[float | None] | None = None,
        parts: list[tuple[Any, Any]] | None = None,
        integrands: list[Any] | None = None,
    ) -> None:
        from petsc4py import PETSc

        from dolfinx.fem.petsc import NonlinearProblem

        self.prefix = prefix
        try:
            self.problem = NonlinearProblem(
                residuals,
                unknowns,
                petsc_options_prefix=prefix,
                petsc_options=dict(petsc_options),
                kind="mpi",
            )
        except PETSc.Error as exc:
            # A failing setFromOptions leaves the prefix pushed (DOLFINx 0.11): pop it so later
            # problems do not inherit a corrupted options prefix.
            db = PETSc.Options()
            db.prefixPop()
            for key in petsc_options:  # DOLFINx's own clean-up was skipped by the error
                if db.hasName(f"{prefix}{key}"):
                    db.delValue(f"{prefix}{key}")
            opts = ", ".join(f"{k}={v}" for k, v in petsc_options.items())
            raise SolverOptionsError(
                f"solver.petsc: PETSc rejected the options ({opts}); PETSc error code "
                f"{exc.ierr}, see its message above (e.g. hypre is not in this PETSc build)"
            ) from None
        self.snes = self.problem.solver
        # timings of the split assembly; the SNES callbacks hold this dict, never ``self`` (a
        # cycle through a PETSc object is invisible to Python's GC and would leak the solver,
        # its vectors and their MPI communicators)
        self.assembly_seconds = {"residual": 0.0, "jacobian": 0.0}
        if parts is not None:
            self._split_assembly(parts, integrands, unknowns)
        self.bounds = None
        if str(petsc_options.get("snes_type", "")).startswith("vi"):
            import numpy as np
            from dolfinx.la.petsc import assign

            lows = lower_bounds if lower_bounds is not None else [0.0] * len(unknowns)
            owned, ghosts = [], []
            for f, low in zip(unknowns, lows, strict=True):
                n = f.function_space.dofmap.index_map.size_local * f.function_space.dofmap.bs
                value = PETSc.NINFINITY if low is None else float(low)
                owned.append(np.full(n, value))
                ghosts.append(np.full(f.x.array.size - n, value))
            lb = self.problem.x.duplicate()
            ub = self.problem.x.duplicate()
            assign(owned + ghosts, lb)
            ub.set(PETSc.INFINITY)
            self.snes.setVariableBounds(lb, ub)
            self.bounds = (lb, ub)

    def _split_assembly(
        self, parts: list[tuple[Any, Any]], integrands: list[Any] | None, unknowns: list[Any]
    ) -> None:
        """Install residual/Jacobian callbacks that assemble flux and pointwise parts apart.

        Flux blocks are assembled as matrices by DOLFINx. Pointwise (vertex-quadrature) parts
        are nodal: with ``integrands`` all residual parts and all non-zero Jacobian diagonals
        come from two :class:`tumorpde.pointwise.PointwiseAssembler` evaluations; without,
        each non-zero pointwise Jacobian block is one vector assembly of the derivative in the
        direction "all ones" (vertex quadrature couples a node only to itself).
        """
        import time

        from petsc4py import PETSc

        import numpy as np
        import ufl
        from dolfinx import cpp as _cpp
        from dolfinx import fem, la
        from dolfinx.fem.petsc import assign
        from dolfinx.la.petsc import assign as assign_arrays
        from ufl.algorithms import expand_derivatives

        from tumorpde.pointwise import PointwiseAssembler

        V = unknowns[0].function_space
        if any(u.function_space is not V for u in unknowns):
            raise ValueError("the split assembly needs all unknowns on one space")
        ones = fem.Function(V)
        ones.x.array[:] = 1.0
        nsp = len(unknowns)
        flux: dict[tuple[int, int], Any] = {}
        point: dict[tuple[int, int], Any] = {}
        for i, (fp, ff) in enumerate(parts):
            for j, uj in enumerate(unknowns):
                if ff is not None:
                    d = expand_derivatives(ufl.derivative(ff, uj))
                    if not d.empty():
                        flux[(i, j)] = fem.form(d)
                if integrands is not None:
                    e = expand_derivatives(ufl.derivative(integrands[i], uj, ones))
                    if not isinstance(e, ufl.constantvalue.Zero):
                        point[(i, j)] = e
                else:
                    d = expand_derivatives(ufl.derivative(fp, uj, ones))
                    if not d.empty():
                        point[(i, j)] = fem.form(d)
        index_sets = _cpp.la.petsc.create_index_sets([(V.dofmap.index_map, 1)] * nsp)
        n = V.dofmap.index_map.size_local
        n_ghost = V.dofmap.index_map.num_ghosts
        local = np.arange(n, dtype=PETSc.IntType).reshape(-1, 1)
        pairs = list(point)
        jac_pw = res_pw = None
        flux_res: list[Any] = []
        if integrands is not None:
            jac_pw = PointwiseAssembler(V, [point[k] for k in pairs])
            res_pw = PointwiseAssembler(V, integrands)
            flux_res = [fem.form(ff) if ff is not None else None for _, ff in parts]
        stats = self.assembly_seconds

        def update(x: Any) -> None:
            x.ghostUpdate(addv=PETSc.InsertMode.INSERT, mode=PETSc.ScatterMode.FORWARD)
            assign(x, unknowns)

        def residual(_snes: Any, x: Any, b: Any) -> None:
            t0 = time.perf_counter()
            update(x)
            assert res_pw is not None
            nodal = res_pw.evaluate()
            owned = []
            for i, L in enumerate(flux_res):
                r = nodal[:, i].copy()
                if L is not None:
                    vec = fem.assemble_vector(L)
                    vec.scatter_reverse(la.InsertMode.add)
                    r += vec.array[:n]
                owned.append(r)
            assign_arrays(owned + [np.zeros(n_ghost)] * nsp, b)
            stats["residual"] += time.perf_counter() - t0

        def jacobian(_snes: Any, x: Any, J: Any, _P: Any) -> None:
            t0 = time.perf_counter()
            update(x)
            J.zeroEntries()
            for (i, j), a in flux.items():
                Asub = J.getLocalSubMatrix(index_sets[i], index_sets[j])
                _cpp.fem.petsc.assemble_matrix(
                    Asub, a._cpp_object, fem.pack_constants(a), fem.pack_coefficients(a), [], True
                )
                J.restoreLocalSubMatrix(index_sets[i], index_sets[j], Asub)
            if jac_pw is not None:
                nodal = jac_pw.evaluate()
                diag = {k: nodal[:, c] for c, k in enumerate(pairs)}
            else:
                diag = {}
                for k, L in point.items():
                    vec = fem.assemble_vector(L)
                    vec.scatter_reverse(la.InsertMode.add)
                    diag[k] = vec.array[:n]
            for (i, j), values in diag.items():
                Asub = J.getLocalSubMatrix(index_sets[i], index_sets[j])
                Asub.setValuesLocalRCV(local, local, values.reshape(-1, 1), addv=True)
                J.restoreLocalSubMatrix(index_sets[i], index_sets[j], Asub)
            J.assemble()
            stats["jacobian"] += time.perf_counter() - t0

        if res_pw is not None:
            self.snes.setFunction(residual, self.problem.b)
        self.snes.setJacobian(jacobian, self.problem.A, self.problem.A)
        self._split = (flux, point, ones, index_sets, jac_pw, res_pw, flux_res)  # keep alive

    def solve(self) -> NewtonResult:
        """Run Newton from the current values of the unknowns.

        Returns:
            Convergence information. On divergence the unknowns hold the last iterate.
        """
        self.problem.solve()
        reason = int(self.snes.getConvergedReason())
        return NewtonResult(
            converged=reason > 0,
            reason=reason,
            reason_name=converged_reason_name(reason),
            newton_iterations=int(self.snes.getIterationNumber()),
            linear_iterations=int(self.snes.getLinearSolveIterations()),
        )

    def describe(self) -> dict[str, str]:
        """SNES, KSP and PC types in use (after the first solve they reflect all options)."""
        ksp = self.snes.getKSP()
        pc = ksp.getPC()
        out = {"snes": self.snes.getType(), "ksp": ksp.getType(), "pc": pc.getType()}
        if pc.getType() in ("lu", "cholesky"):
            out["factor_solver"] = pc.getFactorSolverType() or ""
        return out

    def destroy(self) -> None:
        """Free the PETSc objects."""
        self.snes.destroy()
        for v in self.bounds or ():
            v.destroy()
        self.problem.A.destroy()
        self.problem.b.destroy()
        self.problem.x.destroy()
        self._split = None


def solver_for(
    state: Any, forms: Any, petsc_options: dict[str, Any], prefix: str = PREFIX
) -> NewtonSolver:
    """The product's solver for a state and its forms: split Jacobian, per-species bounds.

    Args:
        state: :class:`tumorpde.state.State` (species and unknowns).
        forms: :class:`tumorpde.forms.Forms` (residuals and their pointwise/flux parts).
        petsc_options: PETSc options without prefix.
        prefix: PETSc options prefix.
    """
    return NewtonSolver(
        forms.residuals,
        state.unknowns(),
        petsc_options,
        prefix=prefix,
        lower_bounds=[0.0 if s.nonnegative else None for s in state.species],
        parts=forms.parts,
        integrands=forms.integrands,
    )

"""Solver: a PETSc SNES (Newton) wrapper around DOLFINx's NonlinearProblem for the coupled step.

The PETSc options come from the case (``[solver.petsc]``) merged over
:data:`tumorpde.config.DEFAULT_PETSC` and are applied under the prefix ``tumorpde_``, so
``PETSC_OPTIONS="-tumorpde_snes_monitor"`` also works.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import tumorpde.backend  # noqa: F401  (before any dolfinx import)

__all__ = ["NewtonResult", "NewtonSolver", "SolverOptionsError", "converged_reason_name"]

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
    """

    def __init__(
        self,
        residuals: list[Any],
        unknowns: list[Any],
        petsc_options: dict[str, Any],
        prefix: str = PREFIX,
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
        self.bounds = None
        if str(petsc_options.get("snes_type", "")).startswith("vi"):
            # Variational-inequality Newton: every species is a concentration or density >= 0.
            lb = self.problem.x.duplicate()
            ub = self.problem.x.duplicate()
            lb.set(0.0)
            ub.set(PETSc.INFINITY)
            self.snes.setVariableBounds(lb, ub)
            self.bounds = (lb, ub)

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

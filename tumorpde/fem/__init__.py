"""fem layer: everything that touches DOLFINx (domain, state, forms, pointwise assembly, solver).

The wheel's MPI/PETSc libraries load first (:mod:`tumorpde.fem.backend`), so every submodule
may import ``dolfinx`` at module level.
"""

from tumorpde.fem import backend
from tumorpde.fem.domain import Domain, load_domain
from tumorpde.fem.forms import Forms, bdf_weights, build_forms
from tumorpde.fem.solver import NewtonResult, NewtonSolver, SolverOptionsError, solver_for
from tumorpde.fem.state import State, create_state

__all__ = [
    "Domain",
    "Forms",
    "NewtonResult",
    "NewtonSolver",
    "SolverOptionsError",
    "State",
    "backend",
    "bdf_weights",
    "build_forms",
    "create_state",
    "load_domain",
    "solver_for",
]

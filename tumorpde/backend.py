"""DOLFINx provider shim: load the PyPI wheel's MPI/PETSc libraries before dolfinx, if present.

The ``dolfinx-solver-real`` wheel must be imported before ``dolfinx``/``petsc4py``. Users with a
conda or spack DOLFINx 0.11 do not have it, and then this module does nothing. Every tumorpde
module that imports dolfinx imports this module first.
"""

from __future__ import annotations

try:
    import dolfinx_solver
except ImportError:  # a DOLFINx from conda/spack/source: nothing to preload
    dolfinx_solver = None

__all__ = ["dolfinx_solver"]

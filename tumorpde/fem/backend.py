"""DOLFINx provider shim: load the PyPI wheel's MPI/PETSc libraries before dolfinx, if present.

The ``dolfinx-solver-real`` wheel must be imported before ``dolfinx``/``petsc4py``. Users with a
conda or spack DOLFINx 0.11 do not have it, and then this module does nothing. Every tumorpde
module that imports dolfinx imports this module first.
"""

from __future__ import annotations

from types import ModuleType

dolfinx_solver: ModuleType | None
try:
    import dolfinx_solver
except ImportError:  # a DOLFINx from conda/spack/source: nothing to preload
    dolfinx_solver = None

__all__ = ["dolfinx_solver"]


def _disable_singledispatchmethod_cache() -> None:
    """Work around a CPython 3.12/3.13 leak in ``functools.singledispatchmethod`` (gh-127750).

    The descriptor caches bound methods in a ``WeakKeyDictionary`` whose values reference their
    key, so every UFL rule-set instance used by ``expand_derivatives`` (and everything it
    visited: forms, Functions, meshes and their MPI communicators) is kept forever. A long
    session (the MPI test suite) then runs out of MPI communicators. CPython 3.13.2 removed the
    cache; on older versions it is switched off for UFL's descriptors (the dispatch itself is
    unchanged, only its memoization).
    """
    import functools
    import importlib

    for name in (
        "ufl.corealg.dag_traverser",
        "ufl.algorithms.apply_derivatives",
        "ufl.algorithms.apply_coefficient_split",
        "ffcx.codegeneration.C.formatter",
    ):
        try:
            mod = importlib.import_module(name)
        except ImportError:
            continue
        for obj in vars(mod).values():
            if not isinstance(obj, type):
                continue
            for attr in vars(obj).values():
                if isinstance(attr, functools.singledispatchmethod) and hasattr(
                    attr, "_method_cache"
                ):
                    attr._method_cache = None


_disable_singledispatchmethod_cache()

"""Metrics: scalar quantities of interest as MPI-reduced integrals and extrema.

All functions are collective over the mesh communicator and return the same value on every rank.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import tumorpde.backend  # noqa: F401  (before any dolfinx import)

__all__ = ["QoIs", "global_max", "global_min"]


def global_min(f: Any) -> float:
    """Minimum nodal value of a Function over all ranks (owned dofs only)."""
    from mpi4py import MPI

    n = f.function_space.dofmap.index_map.size_local * f.function_space.dofmap.index_map_bs
    local = f.x.array[:n].min() if n else np.inf
    return float(f.function_space.mesh.comm.allreduce(local, op=MPI.MIN))


def global_max(f: Any) -> float:
    """Maximum nodal value of a Function over all ranks (owned dofs only)."""
    from mpi4py import MPI

    n = f.function_space.dofmap.index_map.size_local * f.function_space.dofmap.index_map_bs
    local = f.x.array[:n].max() if n else -np.inf
    return float(f.function_space.mesh.comm.allreduce(local, op=MPI.MAX))


class QoIs:
    r"""Compiled integrals for the run's quantities of interest.

    Tumor burden is :math:`\int u\,dx` (mm³ of tissue at carrying capacity); mean ligand is
    :math:`\int L\,dx/|\Omega|`; mean receptor occupancy is cell-weighted,
    :math:`\int u C\,dx / \int u (R + C)\,dx`.
    """

    def __init__(self, fields: dict[str, Any], dx_lumped: Any) -> None:
        from dolfinx import fem

        self.fields = fields
        u, L, R, C = (fields[s] for s in ("tumor", "ligand", "receptor", "complex"))
        msh = u.function_space.mesh
        self.comm = msh.comm
        one = fem.Constant(msh, 1.0)
        self._forms = {
            "volume": fem.form(one * dx_lumped),
            "burden": fem.form(u * dx_lumped),
            "ligand": fem.form(L * dx_lumped),
            "bound": fem.form(u * C * dx_lumped),
            "receptors": fem.form(u * (R + C) * dx_lumped),
        }
        self.volume = self._integral("volume")

    def _integral(self, key: str) -> float:
        from mpi4py import MPI

        from dolfinx import fem

        return float(self.comm.allreduce(fem.assemble_scalar(self._forms[key]), op=MPI.SUM))

    def evaluate(self) -> dict[str, float]:
        """Current values (identical on all ranks)."""
        receptors = self._integral("receptors")
        return {
            "tumor_burden": self._integral("burden"),
            "mean_ligand": self._integral("ligand") / self.volume,
            "mean_occupancy": self._integral("bound") / receptors if receptors > 0 else 0.0,
            "min_tumor": global_min(self.fields["tumor"]),
            "max_tumor": global_max(self.fields["tumor"]),
            "min_ligand": global_min(self.fields["ligand"]),
            "min_receptor": global_min(self.fields["receptor"]),
        }

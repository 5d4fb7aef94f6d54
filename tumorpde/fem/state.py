"""State: the DOLFINx objects a model needs: spaces, fields with their history, cell coefficients.

All species of a :class:`~tumorpde.model.Model` live on one P1 space as separate Functions,
with the values at the last three accepted times (BDF2 and its error predictor). Every
:class:`~tumorpde.model.CellField` a component declares becomes a DG0 Function keyed by its
dotted name (``"tumor.motility"``, ``"pathways.EGFR.ligand.decay_rate"``, ``"trastuzumab.PS"``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import tumorpde.fem.backend  # noqa: F401  (before any dolfinx import)

import numpy as np
import ufl
from dolfinx import fem, la

from tumorpde.fem.domain import Domain
from tumorpde.model import CellField, Model, Species
from tumorpde.model.base import Initial, InitialSum, RegionInitial

__all__ = ["State", "cell_function", "create_state", "initial_values"]


@dataclass
class State:
    """Discrete state of a run.

    Attributes:
        domain: The mesh with regions.
        V: The P1 space shared by all species.
        species: The unknowns in solver order.
        fields: Current (unknown) Function per species.
        previous: Value at the last accepted time (t_n) per species.
        older: Value at t_{n-1} (BDF2 and the error predictor).
        oldest: Value at t_{n-2} (the BDF2 error predictor).
        coefficients: Region-wise DG0 coefficient Functions by dotted key.
        t: Current time (h).
        dt_history: Sizes of the last accepted steps, newest first.
    """

    domain: Domain
    V: fem.FunctionSpace
    species: list[Species]
    fields: dict[str, fem.Function]
    previous: dict[str, fem.Function]
    older: dict[str, fem.Function]
    oldest: dict[str, fem.Function]
    coefficients: dict[str, fem.Function]
    t: float = 0.0
    dt_history: list[float] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        """Species names in solver order."""
        return [s.name for s in self.species]

    def unknowns(self) -> list[fem.Function]:
        """Species Functions in solver order."""
        return [self.fields[s] for s in self.names]

    def accept(self, dt: float | None = None) -> None:
        """Shift the history and copy the current fields into ``previous`` (step accepted)."""
        for s in self.names:
            self.oldest[s].x.array[:] = self.older[s].x.array
            self.older[s].x.array[:] = self.previous[s].x.array
            self.previous[s].x.array[:] = self.fields[s].x.array
        if dt is not None:
            self.dt_history = [dt, *self.dt_history[:2]]

    def restore(self) -> None:
        """Reset the current fields to the previous ones (a step was rejected)."""
        for s in self.names:
            self.fields[s].x.array[:] = self.previous[s].x.array

    def num_dofs_global(self) -> int:
        """Total unknowns of the coupled system over all ranks."""
        return len(self.species) * int(self.V.dofmap.index_map.size_global)


def cell_function(domain: Domain, Q: fem.FunctionSpace, spec: CellField) -> fem.Function:
    """A DG0 Function with the default value everywhere and the region values in their cells."""
    f = fem.Function(Q, name=spec.key)
    f.x.array[:] = spec.default
    for region, value in spec.by_region.items():
        cells = domain.cell_tags.find(domain.regions[region])
        f.x.array[Q.dofmap.list[cells, 0]] = float(value)
    f.x.scatter_forward()
    return f


def initial_values(value: Initial, V: fem.FunctionSpace, domain: Domain) -> np.ndarray:
    """Nodal values (owned and ghost) of an initial value on the P1 space.

    A number fills; a function of the coordinates is interpolated; a :class:`RegionInitial`
    is ``value`` times the lumped L2 projection of the region's indicator (the region's share
    of the volume of the cells around each node, so its integral is exactly ``value`` times
    the region volume); an :class:`InitialSum` adds its parts and caps the sum.

    Args:
        value: The initial value.
        V: The P1 space.
        domain: The domain (region tags).

    Returns:
        The local array of nodal values.

    Raises:
        ValueError: A region the mesh does not have.
    """
    f = fem.Function(V)
    if isinstance(value, InitialSum):
        out = sum((initial_values(p, V, domain) for p in value.parts), np.zeros_like(f.x.array))
        return out if value.cap is None else np.minimum(out, value.cap)
    if isinstance(value, RegionInitial):
        if value.region not in domain.regions:
            raise ValueError(
                f"initial value: region {value.region!r} is not a region of the mesh "
                f"(regions: {', '.join(domain.regions)})"
            )
        Q = fem.functionspace(domain.mesh, ("DG", 0))
        chi = fem.Function(Q)
        cells = domain.cell_tags.find(domain.regions[value.region])
        chi.x.array[Q.dofmap.list[cells, 0]] = 1.0
        v = ufl.TestFunction(V)
        parts = []
        for weight in (chi, fem.Constant(domain.mesh, 1.0)):
            b = fem.assemble_vector(fem.form(weight * v * ufl.dx))
            b.scatter_reverse(la.InsertMode.add)
            b.scatter_forward()
            parts.append(b.array.copy())
        return value.value * parts[0] / np.where(parts[1] > 0, parts[1], 1.0)
    if callable(value):
        f.interpolate(value)
        f.x.scatter_forward()
        return f.x.array.copy()
    return np.full_like(f.x.array, float(value))


def create_state(model: Model, domain: Domain) -> State:
    """Create spaces, fields and cell coefficients and set the initial condition.

    Args:
        model: The compiled case.
        domain: The loaded domain.

    Returns:
        The state at t = 0 (``previous``, ``older`` and ``oldest`` equal ``fields``).
    """
    msh = domain.mesh
    V = fem.functionspace(msh, ("Lagrange", 1))
    Q = fem.functionspace(msh, ("DG", 0))
    sp = model.species
    names = [s.name for s in sp]
    fields = {s: fem.Function(V, name=s) for s in names}
    previous = {s: fem.Function(V, name=f"{s}_prev") for s in names}
    older = {s: fem.Function(V, name=f"{s}_older") for s in names}
    oldest = {s: fem.Function(V, name=f"{s}_oldest") for s in names}
    for s, value in model.initial().items():
        fields[s].x.array[:] = initial_values(value, V, domain)
    for s in names:
        fields[s].x.scatter_forward()
        for h in (previous, older, oldest):
            h[s].x.array[:] = fields[s].x.array
    coefficients = {c.key: cell_function(domain, Q, c) for c in model.cell_fields()}
    return State(
        domain=domain,
        V=V,
        species=sp,
        fields=fields,
        previous=previous,
        older=older,
        oldest=oldest,
        coefficients=coefficients,
    )

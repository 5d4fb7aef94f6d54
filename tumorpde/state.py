"""State: function spaces, current/previous fields per species, region coefficients, initial data.

Species (all P1, same nodes): ``tumor`` u (normalized cell density), ``ligand`` L (nM),
``receptor`` R and ``complex`` C (per-cell receptor states stored as nM at carrying capacity).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

import tumorpde.backend  # noqa: F401  (before any dolfinx import)
from tumorpde.config import CaseConfig
from tumorpde.mesh import Domain

SPECIES = ("tumor", "ligand", "receptor", "complex")

#: Region-dependent coefficients: RegionOverride attribute -> getter of the global value.
REGION_COEFFICIENTS = {
    "tumor_motility": lambda c: c.tumor.motility,
    "proliferation_rate": lambda c: c.tumor.proliferation_rate,
    "ligand_diffusivity": lambda c: c.ligand.diffusivity,
    "ligand_decay_rate": lambda c: c.ligand.decay_rate,
    "ligand_stromal_secretion": lambda c: c.ligand.stromal_secretion,
}

__all__ = ["SPECIES", "State", "create_state"]


@dataclass
class State:
    """Discrete state of a run.

    Attributes:
        domain: The mesh with regions.
        V: The P1 space shared by all species.
        fields: Current (unknown) Function per species.
        previous: Value at the last accepted time per species.
        coefficients: Region-wise DG0 coefficient Functions.
        t: Current time (h).
    """

    domain: Domain
    V: Any
    fields: dict[str, Any]
    previous: dict[str, Any]
    coefficients: dict[str, Any]
    t: float = 0.0
    extras: dict[str, Any] = field(default_factory=dict)

    def unknowns(self) -> list[Any]:
        """Species Functions in solver order."""
        return [self.fields[s] for s in SPECIES]

    def accept(self) -> None:
        """Copy the current fields into the previous ones (a step was accepted)."""
        for s in SPECIES:
            self.previous[s].x.array[:] = self.fields[s].x.array

    def restore(self) -> None:
        """Reset the current fields to the previous ones (a step was rejected)."""
        for s in SPECIES:
            self.fields[s].x.array[:] = self.previous[s].x.array

    def num_dofs_global(self) -> int:
        """Total unknowns of the coupled system over all ranks."""
        return len(SPECIES) * int(self.V.dofmap.index_map.size_global)


def _region_coefficient(domain: Domain, Q: Any, name: str, cfg: CaseConfig) -> Any:
    from dolfinx import fem

    f = fem.Function(Q, name=name)
    f.x.array[:] = REGION_COEFFICIENTS[name](cfg)
    for region, override in cfg.regions.items():
        value = getattr(override, name)
        if value is not None:
            cells = domain.cell_tags.find(domain.regions[region])
            f.x.array[Q.dofmap.list[cells, 0]] = value
    f.x.scatter_forward()
    return f


def create_state(cfg: CaseConfig, domain: Domain) -> State:
    """Create spaces and fields and set the initial condition.

    Args:
        cfg: The validated case.
        domain: The loaded domain.

    Returns:
        The state at t = 0 (``previous`` equals ``fields``).
    """
    from dolfinx import fem

    msh = domain.mesh
    V = fem.functionspace(msh, ("Lagrange", 1))
    Q = fem.functionspace(msh, ("DG", 0))
    fields = {s: fem.Function(V, name=s) for s in SPECIES}
    previous = {s: fem.Function(V, name=f"{s}_prev") for s in SPECIES}

    seed = cfg.tumor.initial
    if seed.kind == "gaussian":
        c = np.array(seed.center)
        r2 = seed.radius**2
        fields["tumor"].interpolate(
            lambda x: seed.peak * np.exp(-((x - c[:, None]) ** 2).sum(axis=0) / r2)
        )
    else:
        fields["tumor"].x.array[:] = seed.value
    fields["ligand"].x.array[:] = cfg.ligand.initial
    r_total = cfg.receptor_total_nM
    theta0 = cfg.receptor.initial_occupancy
    fields["receptor"].x.array[:] = (1 - theta0) * r_total
    fields["complex"].x.array[:] = theta0 * r_total
    for s in SPECIES:
        previous[s].x.array[:] = fields[s].x.array

    coefficients = {name: _region_coefficient(domain, Q, name, cfg) for name in REGION_COEFFICIENTS}
    return State(domain=domain, V=V, fields=fields, previous=previous, coefficients=coefficients)

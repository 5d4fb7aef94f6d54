"""State: function spaces, current/previous fields per species, region coefficients, initial data.

All species (see :func:`tumorpde.model.species`) live on one P1 space as separate Functions.
Receptor states are per-cell quantities stored as the concentration at carrying capacity (nM).
Per-region parameters (``[regions]`` and the organ profile) become DG0 Functions keyed by their
dotted name (``"tumor.motility"``, ``"pathways.EGFR.ligand.decay_rate"``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

import tumorpde.backend  # noqa: F401  (before any dolfinx import)
from tumorpde.config import CaseConfig, region_keys
from tumorpde.mesh import Domain
from tumorpde.model import Species, species

__all__ = ["State", "create_state", "global_value", "trafficking_steady_state"]


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
    V: Any
    species: list[Species]
    fields: dict[str, Any]
    previous: dict[str, Any]
    older: dict[str, Any]
    oldest: dict[str, Any]
    coefficients: dict[str, Any]
    t: float = 0.0
    dt_history: list[float] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        """Species names in solver order."""
        return [s.name for s in self.species]

    def unknowns(self) -> list[Any]:
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


def global_value(cfg: CaseConfig, key: str) -> float:
    """The case-wide value of a per-region parameter (e.g. ``"tumor.motility"``)."""
    obj: Any = cfg
    for part in key.split("."):
        obj = obj[part] if isinstance(obj, dict) else getattr(obj, part)
    return float(obj)


def _region_coefficient(domain: Domain, Q: Any, key: str, cfg: CaseConfig) -> Any:
    from dolfinx import fem

    f = fem.Function(Q, name=key)
    f.x.array[:] = global_value(cfg, key)
    for region, values in cfg.regions.items():
        if key in values:
            cells = domain.cell_tags.find(domain.regions[region])
            f.x.array[Q.dofmap.list[cells, 0]] = float(values[key])
    f.x.scatter_forward()
    return f


def trafficking_steady_state(rc: Any, r_total: float, ligand: float) -> tuple[float, float, float]:
    r"""Receptor states at steady state for a constant ligand level (Lauffenburger-Linderman).

    :math:`R_s = k_t R_0 / (k_t + k_{on} L k_e (1-\varphi)/(k_{off}+k_e))`,
    :math:`C_s = k_{on} L R_s/(k_{off}+k_e)`, :math:`I_s = k_e C_s/(k_{rec}+k_{deg})` with the
    recycled fraction :math:`\varphi = k_{rec}/(k_{rec}+k_{deg})` (0 without an internal pool).
    Without synthesis (k_t = 0) the free-receptor start is kept: there is no unique steady state.
    """
    if rc.k_t <= 0 or ligand <= 0:
        return r_total, 0.0, 0.0
    phi = rc.k_rec / (rc.k_rec + rc.k_deg) if rc.internalized and rc.k_rec + rc.k_deg > 0 else 0.0
    if rc.internalized and rc.k_rec + rc.k_deg <= 0 and rc.k_e > 0:
        return r_total, 0.0, 0.0  # internalized receptors accumulate forever: no steady state
    den = rc.k_off + rc.k_e
    Rs = rc.k_t * r_total / (rc.k_t + rc.k_on * ligand * rc.k_e * (1 - phi) / den)
    Cs = rc.k_on * ligand * Rs / den
    Is = rc.k_e * Cs / (rc.k_rec + rc.k_deg) if rc.internalized and rc.k_e > 0 else 0.0
    return Rs, Cs, Is


def _hill0(x: float, half: float, n: float) -> float:
    x = max(x, 0.0)
    return x**n / (half**n + x**n)


def create_state(cfg: CaseConfig, domain: Domain) -> State:
    """Create spaces and fields and set the initial condition.

    Args:
        cfg: The validated case.
        domain: The loaded domain.

    Returns:
        The state at t = 0 (``previous``, ``older`` and ``oldest`` equal ``fields``).
    """
    from dolfinx import fem

    msh = domain.mesh
    V = fem.functionspace(msh, ("Lagrange", 1))
    Q = fem.functionspace(msh, ("DG", 0))
    sp = species(cfg)
    names = [s.name for s in sp]
    fields = {s: fem.Function(V, name=s) for s in names}
    previous = {s: fem.Function(V, name=f"{s}_prev") for s in names}
    older = {s: fem.Function(V, name=f"{s}_older") for s in names}
    oldest = {s: fem.Function(V, name=f"{s}_oldest") for s in names}

    seed = cfg.tumor.initial
    if seed.kind == "gaussian":
        c = np.array(seed.center)
        r2 = seed.radius**2
        fields["tumor"].interpolate(
            lambda x: seed.peak * np.exp(-((x - c[:, None]) ** 2).sum(axis=0) / r2)
        )
    else:
        fields["tumor"].x.array[:] = seed.value
    for p, pw in cfg.pathways.items():
        r_total = cfg.receptor_total_nM(p)
        rc = pw.receptor
        theta0 = rc.initial_occupancy if pw.ligand is not None else 0.0
        fields[p].x.array[:] = (1 - theta0) * r_total
        if pw.ligand is not None:
            fields[pw.ligand.name].x.array[:] = pw.ligand.initial
            fields[f"{p}_complex"].x.array[:] = theta0 * r_total
            if rc.initial_state == "steady":
                Rs, Cs, Is = trafficking_steady_state(rc, r_total, pw.ligand.initial)
                fields[p].x.array[:] = Rs
                fields[f"{p}_complex"].x.array[:] = Cs
                if rc.internalized:
                    fields[f"{p}_internal"].x.array[:] = Is
                theta0 = (Cs + (Is if rc.internalized else 0.0)) / max(
                    Rs + Cs + (Is if rc.internalized else 0.0), 1e-300
                )
            if pw.ligand.ecm is not None:  # matrix sites start in equilibrium with L(0)
                e = pw.ligand.ecm
                L0 = pw.ligand.initial
                fields[f"{pw.ligand.name}_ecm"].x.array[:] = (
                    e.sites * e.k_on * L0 / (e.k_on * L0 + e.k_off) if e.k_off + L0 > 0 else 0.0
                )
        if pw.signal.enabled:
            theta = theta0 if pw.ligand is not None else 1.0
            s0 = pw.signal.initial
            if s0 is None:
                s0 = _hill0(theta, pw.signal.half_max, pw.signal.hill)
            fields[f"{p}_signal"].x.array[:] = s0
    if cfg.oxygen is not None:
        fields["oxygen"].x.array[:] = cfg.oxygen.blood_level
    if cfg.bone is not None:
        fields["osteoclast"].x.array[:] = cfg.bone.basal / cfg.bone.decay
    for s in names:
        fields[s].x.scatter_forward()
        for h in (previous, older, oldest):
            h[s].x.array[:] = fields[s].x.array

    keys = [k for k, kind in region_keys(cfg.model_dump()).items() if kind != "text"]
    coefficients = {k: _region_coefficient(domain, Q, k, cfg) for k in keys}
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

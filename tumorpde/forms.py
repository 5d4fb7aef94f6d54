r"""Forms: the one place that builds the time-discrete weak residuals of the coupled model.

Backward Euler, all species in one monolithic system (see :mod:`tumorpde.solver`):

.. math::

    \frac{u-u^n}{\Delta t} &= \nabla\cdot(D_u\nabla u - \chi u(1-u)\nabla L) + \rho u(1-u)\\
    \frac{L-L^n}{\Delta t} &= \nabla\cdot(D_L\nabla L) + s_t u + s_s - k_d L
        - u(k_{on} L R - k_{off} C)\\
    \frac{R-R^n}{\Delta t} &= k_t(R_0 - R) - (k_{on} L R - k_{off} C)\\
    \frac{C-C^n}{\Delta t} &= (k_{on} L R - k_{off} C) - k_e C

with no-flux boundaries. Time derivatives and reaction terms use vertex quadrature (mass
lumping): the receptor equations become pointwise ODEs at the nodes, sharing the Newton Jacobian,
and the global balance of each species is exact in the discrete sense.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import ufl

import tumorpde.backend  # noqa: F401  (before any dolfinx import)
from tumorpde import physics
from tumorpde.config import CaseConfig
from tumorpde.state import SPECIES, State

__all__ = ["Forms", "build_forms"]


@dataclass
class Forms:
    """UFL residuals (one per species, in :data:`tumorpde.state.SPECIES` order) and constants."""

    residuals: list[Any]
    dt: Any
    constants: dict[str, Any]
    dx: Any
    dx_lumped: Any


def build_forms(cfg: CaseConfig, state: State, dt: float) -> Forms:
    """Build the backward-Euler residuals.

    Args:
        cfg: The case (internal units).
        state: Fields and region coefficients.
        dt: Initial time step (h); changed later through ``Forms.dt.value`` (no recompilation).

    Returns:
        The residual forms and the constants they use.
    """
    from dolfinx import fem

    msh = state.domain.mesh
    dx = ufl.Measure("dx", domain=msh)
    dxl = ufl.Measure(
        "dx", domain=msh, metadata={"quadrature_rule": "vertex", "quadrature_degree": 1}
    )

    def const(v: float) -> Any:
        return fem.Constant(msh, float(v))

    k = {
        "dt": const(dt),
        "chi": const(cfg.tumor.chemotaxis),
        "s_tumor": const(cfg.ligand.tumor_secretion),
        "k_on": const(cfg.receptor.k_on),
        "k_off": const(cfg.receptor.k_off),
        "k_t": const(cfg.receptor.k_t),
        "k_e": const(cfg.receptor.k_e),
        "R0": const(cfg.receptor_total_nM),
    }
    c = state.coefficients
    u, L, R, C = (state.fields[s] for s in SPECIES)
    u0, L0, R0_, C0 = (state.previous[s] for s in SPECIES)
    vu, vL, vR, vC = (ufl.TestFunction(state.V) for _ in SPECIES)
    dt_ = k["dt"]

    bind = physics.binding_rate(L, R, C, k["k_on"], k["k_off"])
    F_u = (
        ufl.inner(-physics.diffusive_flux(u, c["tumor_motility"]), ufl.grad(vu)) * dx
        - ufl.inner(physics.chemotactic_flux(u, L, k["chi"]), ufl.grad(vu)) * dx
        + ((u - u0) / dt_ - physics.logistic_growth(u, c["proliferation_rate"])) * vu * dxl
    )
    F_L = (
        ufl.inner(-physics.diffusive_flux(L, c["ligand_diffusivity"]), ufl.grad(vL)) * dx
        + (
            (L - L0) / dt_
            - k["s_tumor"] * u
            - c["ligand_stromal_secretion"]
            + c["ligand_decay_rate"] * L
            + physics.ligand_sink(u, bind)
        )
        * vL
        * dxl
    )
    F_R = ((R - R0_) / dt_ - physics.receptor_turnover(R, k["R0"], k["k_t"]) + bind) * vR * dxl
    F_C = ((C - C0) / dt_ - bind + physics.complex_internalization(C, k["k_e"])) * vC * dxl
    return Forms(residuals=[F_u, F_L, F_R, F_C], dt=dt_, constants=k, dx=dx, dx_lumped=dxl)

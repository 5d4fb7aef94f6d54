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

Optional volume sources (``forcing``) exist for verification by manufactured solutions
(:mod:`tumorpde.verify`); without them the residuals are exactly the model above.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import ufl

import tumorpde.backend  # noqa: F401  (before any dolfinx import)
from tumorpde import physics
from tumorpde.config import CaseConfig
from tumorpde.state import SPECIES, State

__all__ = ["Forcing", "Forms", "build_forms"]

#: Volume sources per species: a mapping ``species -> UFL expression``, or a callable that takes
#: the time Constant ``t`` (holding t_{n+1}) and returns such a mapping.
Forcing = Mapping[str, Any] | Callable[[Any], Mapping[str, Any]]


@dataclass
class Forms:
    """UFL residuals (one per species, in :data:`tumorpde.state.SPECIES` order) and constants."""

    residuals: list[Any]
    dt: Any
    constants: dict[str, Any]
    dx: Any
    dx_lumped: Any


def build_forms(
    cfg: CaseConfig, state: State, dt: float, *, forcing: Forcing | None = None
) -> Forms:
    """Build the backward-Euler residuals.

    Args:
        cfg: The case (internal units).
        state: Fields and region coefficients.
        dt: Initial time step (h); changed later through ``Forms.dt.value`` (no recompilation).
        forcing: Optional volume sources ``f_s`` added to the right-hand side of species ``s``
            (residual term ``-f_s v dx``), used by the manufactured-solution verification. A
            callable receives ``Forms.constants["t"]``, which the caller sets to t_{n+1} before
            each solve, so sources may depend on time. Sources use the same vertex quadrature as
            the reaction terms: the receptor equations then stay exact nodal ODEs with the source
            sampled at the node (a Gauss rule would average it over the vertex patch, which is
            only first-order accurate at boundary nodes and measurably spoils the O(h^2) L2 rate
            of R and C), the lumped load is O(h^2)-consistent for u and L, and the discrete
            global balance stays exact. ``None`` (the default) leaves the model as is.

    Returns:
        The residual forms and the constants they use.

    Raises:
        KeyError: If ``forcing`` names a species that does not exist.
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
        "t": const(state.t),  # t_{n+1} for time-dependent forcing; unused by the model itself
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
    residuals = [F_u, F_L, F_R, F_C]
    if forcing is not None:
        sources = forcing(k["t"]) if callable(forcing) else forcing
        unknown = set(sources) - set(SPECIES)
        if unknown:
            raise KeyError(f"forcing for unknown species {sorted(unknown)}; known: {SPECIES}")
        tests = (vu, vL, vR, vC)
        for i, s in enumerate(SPECIES):
            if s in sources:
                residuals[i] = residuals[i] - sources[s] * tests[i] * dxl
    return Forms(residuals=residuals, dt=dt_, constants=k, dx=dx, dx_lumped=dxl)

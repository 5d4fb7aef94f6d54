r"""Forms: the one place that builds the time-discrete weak residuals of the coupled model.

Every species s (see :mod:`tumorpde.model.species`) gets one residual

.. math::

    F_s = \int \big(\partial_t^{\Delta} w_s - r_s\big)\, v \,dx_{\rm lumped}
          - \int \mathbf{q}_s\cdot\nabla v \,dx

where :math:`\mathbf{q}_s` is its flux (diffusion, chemotaxis; zero for pointwise ODE species),
:math:`r_s` its reaction rate collected from the terms of :mod:`tumorpde.model.laws`, and
:math:`\partial_t^{\Delta}` the backward-Euler or variable-step BDF2 difference
:math:`(a_0 w - a_1 w^n + a_2 w^{n-1})/\Delta t` (the stepper sets :math:`a_i`). Quasi-steady
species (oxygen) have no time derivative. Time derivatives and reactions use vertex quadrature
(mass lumping): receptor, signal and other ODE species become pointwise ODEs at the nodes that
share the Newton Jacobian, and each ligand's global balance is exact in the discrete sense.

The terms come from the components of the model (:mod:`tumorpde.model`; u tumor density, L_p
ligands, R/C/I receptor states, S_p signals, e mesenchymal fraction, O oxygen, OC osteoclast
activity; the sources are cited in each component):

- tumor: :math:`\mathbf{q}_u = -D_u(x)(1+a_{mot} e)(1+\sum_p m_p S_p)\nabla u
  + u(1-u)\sum_p \chi_p \nabla L_p/(1+L_p/K_p)^2`, :math:`r_u = \rho_{\rm eff} f(u)
  - \delta_{\rm eff} u` with :math:`\rho_{\rm eff} = \rho(x)\,g(O)\,[b_0+(1-b_0)\bar S_{prolif}]
  \prod_p(1-a_{cs,p}S_p(1-e))` and :math:`\delta_{\rm eff} = \delta(x)(1-\bar S_{surv})
  + \delta_{hyp} h(O)`;
- ligand: :math:`\mathbf{q}_L = -D_L(x)\nabla L`, :math:`r_L = s_t u + s_h h(O) u + s_s(x)
  + s_{bone} OC - k_d(x) L - u J - J_{ecm}`;
- receptor states: Lauffenburger-Linderman trafficking, :func:`tumorpde.model.laws.trafficking`;
- signal: :math:`r_S = k_S(\mathrm{Hill}(\theta) B - S)` with B the product of kinase-inhibitor
  blocks (1 without therapy);
- modules: EMT, quasi-steady oxygen and the bone vicious cycle.

Conditions on named boundaries (``[[boundary]]``, :mod:`tumorpde.model.boundary`) add the
boundary integral :math:`\int_\Gamma (\mathbf q_s\cdot\mathbf n)\,v\,ds` of the imposed
outward flux to the flux part (vertex quadrature on the facets, like the lumped volume terms),
and fixed values become constrained rows (:class:`FixedRows`) that the solver replaces by
:math:`w_s - C_{ext}(t_{n+1})`.

Optional volume sources (``forcing``) exist for verification by manufactured solutions
(:mod:`tumorpde.studies.verification`). This module is generic: it creates the constants the
components declare, runs their modifiers and terms passes and adds time differences, test
functions and measures; it never names a species.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import ufl
from dolfinx import fem
from ufl.core.expr import Expr

from tumorpde.fem.domain import Domain
from tumorpde.fem.state import State
from tumorpde.model import Context, Model, Symbols

__all__ = [
    "QUADRATURE_DEGREE",
    "FixedRows",
    "Forcing",
    "Forms",
    "bdf_weights",
    "boundary_facets",
    "build_forms",
    "ddt",
]

#: Quadrature degree of the flux (gradient) integrals.
QUADRATURE_DEGREE = 2

#: Volume sources per species: a mapping ``species -> UFL expression``, or a callable that takes
#: the time Constant ``t`` (holding t_{n+1}) and returns such a mapping.
Forcing = Mapping[str, Expr] | Callable[[fem.Constant], Mapping[str, Expr]]

#: Constants the time stepper changes every step (everything else in ``constants`` is fixed,
#: except the model's time constants).
STEP_CONSTANTS = ("dt", "t", "a0", "a1", "a2")


@dataclass(frozen=True)
class FixedRows:
    """The nodes of one boundary where a species is fixed (a ``value`` condition).

    Attributes:
        species: The species.
        index: Its position in the state (and residual) order.
        boundary: The boundary name.
        dofs: Owned local dofs of the boundary's nodes.
        value: The Constant holding the value at t_{n+1}.
    """

    species: str
    index: int
    boundary: str
    dofs: np.ndarray
    value: fem.Constant


@dataclass
class Forms:
    """UFL residuals (one per species, in state order) and the constants they use.

    ``parts`` splits each residual into its pointwise part (vertex quadrature: time derivative,
    reactions, sources) and its flux part (gradient integrals, or None), which lets the solver
    assemble the pointwise Jacobian blocks as diagonals (:class:`tumorpde.fem.solver.NewtonSolver`);
    ``integrands`` are the pointwise parts' integrands g_s (pointwise part = g_s v dx_lumped).
    ``time_constants`` are the model's time-dependent constants (plasma levels), set to their
    values at t_{n+1} by :meth:`set_time`. ``ds`` is the boundary measure (facet tags, vertex
    quadrature), ``boundary_flux`` the imposed outward flux per ``(species, boundary)`` and
    ``fixed`` the constrained nodes of the ``value`` conditions.
    """

    residuals: list[ufl.Form]
    parts: list[tuple[ufl.Form, ufl.Form | None]]
    integrands: list[Expr]
    dt: fem.Constant
    constants: dict[str, fem.Constant]
    dx: ufl.Measure
    dx_lumped: ufl.Measure
    balance: dict[str, dict[str, Expr]]
    context: Context
    state: State
    time_values: dict[str, Callable[[float], float]]
    ds: ufl.Measure | None = None
    boundary_flux: dict[tuple[str, str], Expr] = field(default_factory=dict)
    fixed: list[FixedRows] = field(default_factory=list)

    @property
    def static(self) -> list[fem.Constant | fem.Function]:
        """Coefficients and Constants fixed for the run: region coefficients, model constants.

        The solver assembles the flux Jacobian blocks that depend on nothing else only once.
        """
        moving = set(STEP_CONSTANTS) | set(self.time_values)
        fixed = [c for k, c in self.constants.items() if k not in moving]
        return fixed + list(self.state.coefficients.values())

    def set_time(self, t: float) -> None:
        """Set ``t`` and the model's time constants for the step from ``state.t`` to ``t`` (h).

        A time constant with a ``mean(t0, t1)`` method (plasma levels) takes its exact mean
        over the step on a backward-Euler step (``a2 = 0``: the first step and every step
        after a dose), so that the linear exchange term receives the exact plasma exposure
        of the step; on a BDF2 step (and when ``t`` is not after ``state.t``) it takes its
        value at ``t``, which keeps the scheme second order.
        """
        # Constant.value's setter takes an array (it copies np.asarray(v) into place), so the
        # floats go in as 0-d arrays: the same stored values
        self.constants["t"].value = np.asarray(t)
        t0 = float(self.state.t)
        averaged = t > t0 and float(self.constants["a2"].value) == 0.0
        for key, value in self.time_values.items():
            mean = getattr(value, "mean", None)
            v = mean(t0, t) if averaged and mean is not None else value(t)
            self.constants[key].value = np.asarray(v)

    def set_step(self, h: float, weights: tuple[float, float, float]) -> None:
        """Set the step size and the time-difference weights ``(a0, a1, a2)``."""
        k = self.constants
        k["dt"].value = np.asarray(h)
        for key, a in zip(("a0", "a1", "a2"), weights, strict=True):
            k[key].value = np.asarray(a)


def _constants(model: Model, state: State, dt: float) -> dict[str, fem.Constant]:
    msh = state.domain.mesh

    def const(v: float) -> fem.Constant:
        return fem.Constant(msh, float(v))

    k: dict[str, fem.Constant] = {
        "dt": const(dt),
        "t": const(state.t),  # t_{n+1}, for time-dependent terms (forcing, plasma PK)
        "a0": const(1.0),  # time-difference weights: BE (1, 1, 0); BDF2 set by the stepper
        "a1": const(1.0),
        "a2": const(0.0),
        "zero": const(0.0),
        "one": const(1.0),
    }
    for key, value in model.constants().items():
        k[key] = const(value)
    for key in model.time_constants():
        k[key] = const(0.0)
    return k


def build_forms(
    model: Model,
    state: State,
    dt: float,
    *,
    forcing: Forcing | None = None,
) -> Forms:
    """Build the time-discrete residuals of every species.

    Args:
        model: The compiled case.
        state: Fields and cell coefficients (:func:`tumorpde.fem.state.create_state`).
        dt: Initial time step (h); changed later through ``Forms.dt.value`` (no recompilation).
        forcing: Optional volume sources ``f_s`` added to the right-hand side of species ``s``
            (residual term ``-f_s v dx``), used by the manufactured-solution verification. A
            callable receives ``Forms.constants["t"]``, which the caller sets to t_{n+1} before
            each solve. Sources use the same vertex quadrature as the reaction terms, so ODE
            species stay exact nodal ODEs and the discrete global balance stays exact.

    Returns:
        The residual forms, constants and the per-ligand balance integrands.

    Raises:
        KeyError: If ``forcing`` names a species that does not exist.
    """
    msh = state.domain.mesh
    # Flux terms: degree-2 quadrature (4 points per tet). UFL's estimate for the nonlinear fluxes
    # (chemotaxis with saturation, signal-modulated motility) reaches degree 8 (~45 points) and
    # made Jacobian assembly 83% of a step; degree 2 is exact for the linear-diffusion part of
    # P1 and keeps the O(h^2) L2 / O(h) H1 rates (checked by tumorpde verify).
    dx = ufl.Measure("dx", domain=msh, metadata={"quadrature_degree": QUADRATURE_DEGREE})
    dxl = ufl.Measure(
        "dx", domain=msh, metadata={"quadrature_rule": "vertex", "quadrature_degree": 1}
    )
    k = _constants(model, state, dt)
    symbols = Symbols(
        fields=state.fields,
        constants=k,
        coefficients=state.coefficients,
        regions=list(state.domain.regions),
        boundaries=list(state.domain.boundaries),
    )
    ctx = model.build(symbols)
    ds = ufl.Measure(
        "ds",
        domain=msh,
        subdomain_data=state.domain.facet_tags,
        metadata={"quadrature_rule": "vertex", "quadrature_degree": 1},
    )
    boundary_flux = _boundary_flux(ctx, state)

    sources: Mapping[str, Expr] = {}
    if forcing is not None:
        sources = forcing(k["t"]) if callable(forcing) else forcing
        unknown = set(sources) - set(state.names)
        if unknown:
            raise KeyError(f"forcing for unknown species {sorted(unknown)}; known: {state.names}")

    residuals, parts, integrands = [], [], []
    v = ufl.TestFunction(state.V)
    for sp in state.species:
        s = sp.name
        w = state.fields[s]
        rate = ctx.reaction.get(s, 0.0 * w)
        if s in sources:
            rate = rate + sources[s]
        g = -rate
        if sp.kind != "algebraic":
            g = ddt(k, w, state.previous[s], state.older[s]) - rate
        integrands.append(g)
        point = g * v * dxl
        flux = -ufl.inner(ctx.flux[s], ufl.grad(v)) * dx if s in ctx.flux else None
        for (species, b), qn in boundary_flux.items():
            if species == s:
                assert flux is not None  # checked by _boundary_flux
                flux = flux + qn * v * ds(state.domain.boundaries[b])
        residuals.append(point + flux if flux is not None else point)
        parts.append((point, flux))
    balance = {
        lig: {
            "storage": ddt(k, state.fields[lig], state.previous[lig], state.older[lig]),
            **terms,
        }
        for lig, terms in ctx.balance.items()
    }
    forms = Forms(
        residuals=residuals,
        parts=parts,
        integrands=integrands,
        dt=k["dt"],
        constants=k,
        dx=dx,
        dx_lumped=dxl,
        balance=balance,
        context=ctx,
        state=state,
        time_values=model.time_constants(),
        ds=ds,
        boundary_flux=boundary_flux,
        fixed=_fixed_rows(ctx, state, k),
    )
    forms.set_time(state.t)
    return forms


def boundary_facets(domain: Domain, name: str) -> np.ndarray:
    """Local facets of the named boundary, checked to lie on the outside of the mesh.

    Args:
        domain: The domain.
        name: A boundary name of the mesh.

    Returns:
        Local facet indices (owned and ghost).

    Raises:
        KeyError: If the mesh has no boundary ``name`` (the message lists the names).
        ValueError: If some of its facets are interior (an interface between regions, such
            as the brain's grey-white interface), identically on every rank.
    """
    from mpi4py import MPI

    if name not in domain.boundaries:
        known = ", ".join(domain.boundaries) or "none"
        raise KeyError(f"the mesh has no boundary {name!r}; its boundaries: {known}")
    msh = domain.mesh
    fdim = msh.topology.dim - 1
    facets = domain.facet_tags.find(domain.boundaries[name])
    msh.topology.create_connectivity(fdim, fdim + 1)
    f2c = msh.topology.connectivity(fdim, fdim + 1)
    links = np.diff(f2c.offsets)[facets] if facets.size else np.zeros(0, dtype=np.int32)
    interior = domain.comm.allreduce(int(np.count_nonzero(links > 1)), op=MPI.SUM)
    if interior:
        raise ValueError(
            f"boundary {name!r} has {interior} interior facets (an interface between regions): "
            "boundary conditions need an outer surface of the mesh"
        )
    return facets


def _boundary_flux(ctx: Context, state: State) -> dict[tuple[str, str], Expr]:
    """The imposed outward fluxes, checked: known boundaries, species that have a flux."""
    out: dict[tuple[str, str], Expr] = {}
    for s, by_boundary in ctx.boundary_flux.items():
        if s not in ctx.flux:
            raise ValueError(f"a boundary flux of {s}, which has no transport (no flux)")
        for b, qn in by_boundary.items():
            boundary_facets(state.domain, b)
            out[(s, b)] = qn
    return out


def _fixed_rows(
    ctx: Context, state: State, constants: Mapping[str, fem.Constant]
) -> list[FixedRows]:
    """Owned dofs and value Constant of every fixed (species, boundary)."""
    V = state.V
    n = V.dofmap.index_map.size_local
    fdim = state.domain.mesh.topology.dim - 1
    out = []
    for s, by_boundary in ctx.fixed.items():
        if s not in ctx.flux:
            raise ValueError(f"a fixed boundary value of {s}, which has no transport (no flux)")
        for b, key in by_boundary.items():
            dofs = fem.locate_dofs_topological(V, fdim, boundary_facets(state.domain, b))
            owned = np.sort(dofs[dofs < n]).astype(np.int32)
            out.append(FixedRows(s, state.names.index(s), b, owned, constants[key]))
    return out


def ddt(k: Mapping[str, fem.Constant], w: Expr, w_n: Expr, w_nm1: Expr) -> Expr:
    r"""Discrete time derivative :math:`(a_0 w - a_1 w^n + a_2 w^{n-1})/\Delta t`."""
    return (k["a0"] * w - k["a1"] * w_n + k["a2"] * w_nm1) / k["dt"]


def bdf_weights(scheme: str, dt: float, dt_prev: float | None) -> tuple[float, float, float]:
    r"""Weights :math:`(a_0, a_1, a_2)` of the time difference for the next step.

    Backward Euler: (1, 1, 0). Variable-step BDF2 with :math:`\omega = \Delta t_n/\Delta
    t_{n-1}`: :math:`((1+2\omega)/(1+\omega),\ 1+\omega,\ \omega^2/(1+\omega))` (Hairer &
    Wanner, *Solving ODEs II*, III.5). The first step (no history) is backward Euler.
    """
    if scheme == "be" or dt_prev is None:
        return 1.0, 1.0, 0.0
    w = dt / dt_prev
    return (1 + 2 * w) / (1 + w), 1 + w, w * w / (1 + w)

r"""Forms: the one place that builds the time-discrete weak residuals of the coupled model.

Every species s (see :mod:`tumorpde.model`) gets one residual

.. math::

    F_s = \int \big(\partial_t^{\Delta} w_s - r_s\big)\, v \,dx_{\rm lumped}
          - \int \mathbf{q}_s\cdot\nabla v \,dx

where :math:`\mathbf{q}_s` is its flux (diffusion, chemotaxis; zero for pointwise ODE species),
:math:`r_s` its reaction rate collected from the terms of :mod:`tumorpde.physics`, and
:math:`\partial_t^{\Delta}` the backward-Euler or variable-step BDF2 difference
:math:`(a_0 w - a_1 w^n + a_2 w^{n-1})/\Delta t` (the stepper sets :math:`a_i`). Quasi-steady
species (oxygen) have no time derivative. Time derivatives and reactions use vertex quadrature
(mass lumping): receptor, signal and other ODE species become pointwise ODEs at the nodes that
share the Newton Jacobian, and each ligand's global balance is exact in the discrete sense.

The model, term by term (u tumor density, L_p ligands, R/C/I receptor states, S_p signals,
e mesenchymal fraction, O oxygen, OC osteoclast activity; model notes 1.2-1.8):

- tumor: :math:`\mathbf{q}_u = -D_u(x)(1+a_{mot} e)(1+\sum_p m_p S_p)\nabla u
  + u(1-u)\sum_p \chi_p \nabla L_p/(1+L_p/K_p)^2`, :math:`r_u = \rho_{\rm eff} f(u)
  - \delta_{\rm eff} u` with :math:`\rho_{\rm eff} = \rho(x)\,g(O)\,[b_0+(1-b_0)\bar S_{prolif}]
  \prod_p(1-a_{cs,p}S_p(1-e))` and :math:`\delta_{\rm eff} = \delta(x)(1-\bar S_{surv})
  + \delta_{hyp} h(O)`;
- ligand: :math:`\mathbf{q}_L = -D_L(x)\nabla L`, :math:`r_L = s_t u + s_h h(O) u + s_s(x)
  + s_{bone} OC - k_d(x) L - u J - J_{ecm}`;
- receptor states: Lauffenburger-Linderman trafficking, :func:`tumorpde.physics.trafficking`;
- signal: :math:`r_S = k_S(\mathrm{Hill}(\theta) B - S)` with B the product of kinase-inhibitor
  blocks (1 without therapy);
- modules: EMT, quasi-steady oxygen and the bone vicious cycle.

Optional volume sources (``forcing``) exist for verification by manufactured solutions
(:mod:`tumorpde.verify`); hooks (``hooks``) let the therapy layer add species terms and
modifiers before the residuals are formed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import ufl

import tumorpde.backend  # noqa: F401  (before any dolfinx import)
from tumorpde import physics
from tumorpde.config import CaseConfig
from tumorpde.model import has_emt
from tumorpde.state import State

__all__ = ["QUADRATURE_DEGREE", "Forcing", "Forms", "TermContext", "build_forms"]

#: Quadrature degree of the flux (gradient) integrals.
QUADRATURE_DEGREE = 2

#: Volume sources per species: a mapping ``species -> UFL expression``, or a callable that takes
#: the time Constant ``t`` (holding t_{n+1}) and returns such a mapping.
Forcing = Mapping[str, Any] | Callable[[Any], Mapping[str, Any]]


@dataclass
class TermContext:
    """Everything a term builder or hook needs, and the terms collected so far.

    Attributes:
        cfg: The case.
        state: Fields and coefficients.
        const: Named scalar Constants (``dt``, ``t`` and model constants).
        reaction: Reaction rate per species (UFL, summed as terms are added).
        flux: Flux vector per species (UFL; absent for pointwise species).
        signal_block: Multipliers on each pathway's signal drive (kinase inhibitors).
        receptor_loss: Extra loss rate expression per pathway's free receptor (drug binding).
        growth_inhibition: Fractions that multiply proliferation by (1 - E).
        kill: Extra death rates (1/h) on the tumor density.
        balance: Per ligand, named rate integrands of its global balance (``production``
            is the source; every other entry is a sink).
        receptor_extra: Extra receptor states per pathway (drug-bound) that count in the total
            of the occupancy ``(C + I) / (R + C + I + extra)``.
        rates: Per-cell rates for derived fields (``proliferation``, ``death``, ``kill``).
    """

    cfg: CaseConfig
    state: State
    const: dict[str, Any]
    reaction: dict[str, Any] = field(default_factory=dict)
    flux: dict[str, Any] = field(default_factory=dict)
    signal_block: dict[str, list[Any]] = field(default_factory=dict)
    receptor_loss: dict[str, list[Any]] = field(default_factory=dict)
    growth_inhibition: list[Any] = field(default_factory=list)
    kill: list[Any] = field(default_factory=list)
    balance: dict[str, dict[str, Any]] = field(default_factory=dict)
    receptor_extra: dict[str, list[Any]] = field(default_factory=dict)
    rates: dict[str, Any] = field(default_factory=dict)

    def add(self, name: str, rate: Any) -> None:
        """Add a reaction rate to species ``name``."""
        self.reaction[name] = self.reaction[name] + rate if name in self.reaction else rate

    def f(self, name: str) -> Any:
        """Current value of species ``name``."""
        return self.state.fields[name]

    def coef(self, key: str) -> Any:
        """Region-wise coefficient ``key``."""
        return self.state.coefficients[key]


#: A hook gets the context twice: ``hook(ctx, "modifiers")`` before the model terms are built
#: (to add signal blocks, receptor losses, kill terms) and ``hook(ctx, "terms")`` after (to add
#: its own species' rates and fluxes).
Hook = Callable[[TermContext, str], None]


@dataclass
class Forms:
    """UFL residuals (one per species, in state order) and the constants they use.

    ``parts`` splits each residual into its pointwise part (vertex quadrature: time derivative,
    reactions, sources) and its flux part (gradient integrals, or None), which lets the solver
    assemble the pointwise Jacobian blocks as diagonals (:class:`tumorpde.solver.NewtonSolver`);
    ``integrands`` are the pointwise parts' integrands g_s (pointwise part = g_s v dx_lumped).
    """

    residuals: list[Any]
    parts: list[tuple[Any, Any]]
    integrands: list[Any]
    dt: Any
    constants: dict[str, Any]
    dx: Any
    dx_lumped: Any
    balance: dict[str, dict[str, Any]]
    context: TermContext

    #: Constants the time stepper changes every step (everything else in ``constants`` is fixed).
    STEP_CONSTANTS = ("dt", "t", "a0", "a1", "a2")

    @property
    def static(self) -> list[Any]:
        """Coefficients and Constants fixed for the run: region coefficients, model constants.

        The solver assembles the flux Jacobian blocks that depend on nothing else only once.
        """
        fixed = [c for k, c in self.constants.items() if k not in self.STEP_CONSTANTS]
        return fixed + list(self.context.state.coefficients.values())


def _pathway_terms(ctx: TermContext, p: str) -> None:
    cfg, pw = ctx.cfg, ctx.cfg.pathways[p]
    c = ctx.const
    u = ctx.f("tumor")
    rc = pw.receptor
    k = {n: c[f"{p}.{n}"] for n in ("k_on", "k_off", "k_t", "k_e", "k_rec", "k_deg")}
    R0 = c[f"{p}.R0"]
    lig = pw.ligand
    L = ctx.f(lig.name) if lig else None
    R = ctx.f(p)
    C = ctx.f(f"{p}_complex") if lig else None
    internal = ctx.f(f"{p}_internal") if lig and rc.internalized else None
    dR, dC, dI, J = physics.trafficking(L, R, C, internal, R0, k)
    for loss in ctx.receptor_loss.get(p, []):
        dR = dR - loss
    ctx.add(p, dR)
    if C is not None:
        ctx.add(f"{p}_complex", dC)
    if internal is not None:
        ctx.add(f"{p}_internal", dI)
    if lig is not None:
        key = f"pathways.{p}.ligand"
        ctx.flux[lig.name] = physics.diffusive_flux(L, ctx.coef(f"{key}.diffusivity"))
        prod = c[f"{p}.s_tumor"] * u + ctx.coef(f"{key}.stromal_secretion")
        if lig.hypoxic_secretion > 0:
            prod = prod + c[f"{p}.s_hypoxic"] * ctx.const["_hypoxia"] * u
        if cfg.bone is not None and cfg.bone.pathway == p:
            prod = prod + ctx.coef("bone.matrix_release") * ctx.f("osteoclast")
        decay = ctx.coef(f"{key}.decay_rate") * L
        binding = physics.ligand_sink(u, J)
        ctx.add(lig.name, prod - decay - binding)
        bal = {"production": prod, "decay": decay, "binding": binding}
        if lig.ecm is not None:
            E = ctx.f(f"{lig.name}_ecm")
            jecm = physics.ecm_binding(
                L, E, c[f"{p}.ecm_sites"], c[f"{p}.ecm_on"], c[f"{p}.ecm_off"]
            )
            ctx.add(lig.name, -jecm)
            ctx.add(f"{lig.name}_ecm", jecm)
            bal["matrix"] = jecm
        ctx.balance[lig.name] = bal
    if pw.signal.enabled:
        extra = ctx.receptor_extra.get(p, [])
        if lig is not None:
            bound = C + internal if internal is not None else C
            theta = physics.occupancy(sum(extra, R), bound)
        else:
            theta = R / R0
        drive = physics.hill(theta, c[f"{p}.half_max"], pw.signal.hill)
        for block in ctx.signal_block.get(p, []):
            drive = drive * block
        S = ctx.f(f"{p}_signal")
        ctx.add(f"{p}_signal", physics.signal_relaxation(S, drive, c[f"{p}.signal_rate"]))


def _weighted_signal(ctx: TermContext, attr: str) -> Any | None:
    terms, total = [], 0.0
    for p, pw in ctx.cfg.pathways.items():
        w = getattr(pw.effects, attr)
        if w > 0 and pw.signal.enabled:
            terms.append(w * ctx.f(f"{p}_signal"))
            total += w
    if not terms:
        return None
    return sum(terms[1:], terms[0]) / total


def _tumor_terms(ctx: TermContext) -> None:
    cfg, c = ctx.cfg, ctx.const
    u = ctx.f("tumor")
    e = ctx.f("mesenchymal") if has_emt(cfg) else None
    # motility: D_u(x) (1 + a e) (1 + sum m_p S_p)
    D = ctx.coef("tumor.motility")
    for p, pw in cfg.pathways.items():
        if pw.signal.enabled and pw.effects.motility > 0:
            D = D * (1 + c[f"{p}.motility"] * ctx.f(f"{p}_signal"))
        if e is not None and pw.effects.emt_motility > 0 and pw.signal.enabled:
            D = D * (1 + c[f"{p}.emt_motility"] * e)
    flux = physics.diffusive_flux(u, D)
    for p, pw in cfg.pathways.items():
        if pw.ligand is not None and pw.effects.chemotaxis > 0:
            sat = c.get(f"{p}.chi_sat")
            flux = flux + physics.saturating_chemotactic_flux(
                u, ctx.f(pw.ligand.name), c[f"{p}.chi"], sat
            )
    ctx.flux["tumor"] = flux
    # proliferation
    rho = ctx.coef("tumor.proliferation_rate")
    s_prolif = _weighted_signal(ctx, "proliferation")
    if s_prolif is not None:
        rho = rho * (c["b0"] + (1 - c["b0"]) * s_prolif)
    for p, pw in cfg.pathways.items():
        if pw.effects.cytostatic > 0 and pw.signal.enabled:
            epithelial = (1 - e) if e is not None else 1.0
            rho = rho * (1 - c[f"{p}.cytostatic"] * ctx.f(f"{p}_signal") * epithelial)
    if cfg.oxygen is not None:
        oxy = ctx.f("oxygen")
        rho = rho * physics.hill(oxy, c["o2.prolif_half"], 1.0)
    for inhibition in ctx.growth_inhibition:
        rho = rho * (1 - inhibition)
    if cfg.tumor.growth_law == "logistic":
        growth = physics.logistic_growth(u, rho)
    else:
        growth = physics.gompertz_growth(u, rho)
    # death
    delta = ctx.coef("tumor.death_rate")
    s_surv = _weighted_signal(ctx, "survival")
    if s_surv is not None:
        delta = delta * (1 - s_surv)
    if cfg.oxygen is not None:
        delta = delta + c["o2.death"] * ctx.const["_hypoxia"]
    kill = sum(ctx.kill[1:], ctx.kill[0]) if ctx.kill else None
    if kill is not None:
        delta = delta + kill
    ctx.add("tumor", growth - delta * u)
    ctx.rates.update(
        {"proliferation": rho, "death": delta, "kill": kill if kill is not None else c["zero"]}
    )
    per_cell = (1 - u) if cfg.tumor.growth_law == "logistic" else -ufl.ln(ufl.max_value(u, 1e-12))
    ctx.rates["net_growth"] = rho * per_cell - delta


def _module_terms(ctx: TermContext) -> None:
    cfg, c = ctx.cfg, ctx.const
    u = ctx.f("tumor")
    if has_emt(cfg):
        e = ctx.f("mesenchymal")
        rate, back = 0.0 * e, 0.0
        for p, pw in cfg.pathways.items():
            if pw.effects.emt_rate > 0 and pw.signal.enabled:
                rate = rate + physics.emt_rate(ctx.f(f"{p}_signal"), e, c[f"{p}.emt_rate"])
                back = back + pw.effects.emt_reversion
        ctx.add("mesenchymal", rate - back * e)
    if cfg.oxygen is not None:
        oxy = ctx.f("oxygen")
        # The quasi-steady equation is scaled by 1/(k_s O_b) (global values), which leaves its
        # solution unchanged but makes its terms O(1): unscaled (~1e4 mmHg/h per mm^3) its
        # round-off floor (~5e-9) stalled Newton's relative test in the lung case.
        scale = 1.0 / (cfg.oxygen.supply_rate * cfg.oxygen.blood_level)
        ctx.flux["oxygen"] = scale * physics.diffusive_flux(oxy, ctx.coef("oxygen.diffusivity"))
        ctx.add(
            "oxygen",
            scale
            * (
                physics.oxygen_supply(oxy, c["o2.blood"], ctx.coef("oxygen.supply_rate"))
                - physics.oxygen_consumption(u, oxy, c["o2.consumption"], c["o2.km"])
            ),
        )
    if cfg.bone is not None:
        ctx.add(
            "osteoclast",
            physics.osteoclast_rate(
                ctx.f("osteoclast"),
                u,
                ctx.f(f"{cfg.bone.pathway}_signal"),
                ctx.coef("bone.basal"),
                ctx.coef("bone.activation"),
                c["bone.decay"],
            ),
        )


def _constants(cfg: CaseConfig, state: State, dt: float) -> dict[str, Any]:
    from dolfinx import fem

    msh = state.domain.mesh

    def const(v: float) -> Any:
        return fem.Constant(msh, float(v))

    k: dict[str, Any] = {
        "dt": const(dt),
        "t": const(state.t),  # t_{n+1}, for time-dependent terms (forcing, plasma PK)
        "a0": const(1.0),  # time-difference weights: BE (1, 1, 0); BDF2 set by the stepper
        "a1": const(1.0),
        "a2": const(0.0),
        "b0": const(cfg.tumor.signal_independent_growth),
        "zero": const(0.0),
    }
    for p, pw in cfg.pathways.items():
        r = pw.receptor
        for n in ("k_on", "k_off", "k_t", "k_e", "k_rec", "k_deg"):
            k[f"{p}.{n}"] = const(getattr(r, n))
        k[f"{p}.R0"] = const(cfg.receptor_total_nM(p))
        k[f"{p}.half_max"] = const(pw.signal.half_max)
        k[f"{p}.signal_rate"] = const(pw.signal.rate)
        ef = pw.effects
        k[f"{p}.motility"] = const(ef.motility)
        k[f"{p}.chi"] = const(ef.chemotaxis)
        if ef.chemotaxis_saturation is not None:
            k[f"{p}.chi_sat"] = const(ef.chemotaxis_saturation)
        k[f"{p}.cytostatic"] = const(ef.cytostatic)
        k[f"{p}.emt_rate"] = const(ef.emt_rate)
        k[f"{p}.emt_motility"] = const(ef.emt_motility)
        if pw.ligand is not None:
            k[f"{p}.s_tumor"] = const(pw.ligand.tumor_secretion)
            k[f"{p}.s_hypoxic"] = const(pw.ligand.hypoxic_secretion)
            if pw.ligand.ecm is not None:
                k[f"{p}.ecm_sites"] = const(pw.ligand.ecm.sites)
                k[f"{p}.ecm_on"] = const(pw.ligand.ecm.k_on)
                k[f"{p}.ecm_off"] = const(pw.ligand.ecm.k_off)
    if cfg.oxygen is not None:
        o = cfg.oxygen
        k["o2.blood"] = const(o.blood_level)
        k["o2.consumption"] = const(o.consumption)
        k["o2.km"] = const(o.consumption_half)
        k["o2.prolif_half"] = const(o.proliferation_half)
        k["o2.hypoxia"] = const(o.hypoxia_threshold)
        k["o2.death"] = const(o.hypoxic_death_rate)
    if cfg.bone is not None:
        k["bone.decay"] = const(cfg.bone.decay)
    return k


def build_forms(
    cfg: CaseConfig,
    state: State,
    dt: float,
    *,
    forcing: Forcing | None = None,
    hooks: Sequence[Hook] = (),
) -> Forms:
    """Build the time-discrete residuals of every species.

    Args:
        cfg: The case (internal units).
        state: Fields and region coefficients.
        dt: Initial time step (h); changed later through ``Forms.dt.value`` (no recompilation).
        forcing: Optional volume sources ``f_s`` added to the right-hand side of species ``s``
            (residual term ``-f_s v dx``), used by the manufactured-solution verification. A
            callable receives ``Forms.constants["t"]``, which the caller sets to t_{n+1} before
            each solve. Sources use the same vertex quadrature as the reaction terms, so ODE
            species stay exact nodal ODEs and the discrete global balance stays exact.
        hooks: Extra term builders (therapy), called with ``"modifiers"`` then ``"terms"``.

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
    k = _constants(cfg, state, dt)
    ctx = TermContext(cfg=cfg, state=state, const=k)
    if cfg.oxygen is not None:
        k["_hypoxia"] = physics.hypoxia(ctx.f("oxygen"), k["o2.hypoxia"], cfg.oxygen.hypoxia_hill)
    for hook in hooks:
        hook(ctx, "modifiers")
    for p in cfg.pathways:
        _pathway_terms(ctx, p)
    _tumor_terms(ctx)
    _module_terms(ctx)
    for hook in hooks:
        hook(ctx, "terms")

    sources: Mapping[str, Any] = {}
    if forcing is not None:
        sources = forcing(k["t"]) if callable(forcing) else forcing
        unknown = set(sources) - set(state.names)
        if unknown:
            raise KeyError(f"forcing for unknown species {sorted(unknown)}; known: {state.names}")

    residuals, parts, integrands = [], [], []
    for sp in state.species:
        s = sp.name
        w, v = state.fields[s], ufl.TestFunction(state.V)
        rate = ctx.reaction.get(s, 0.0 * w)
        if s in sources:
            rate = rate + sources[s]
        g = -rate
        if sp.kind != "algebraic":
            g = ddt(k, w, state.previous[s], state.older[s]) - rate
        integrands.append(g)
        point = g * v * dxl
        flux = -ufl.inner(ctx.flux[s], ufl.grad(v)) * dx if s in ctx.flux else None
        residuals.append(point + flux if flux is not None else point)
        parts.append((point, flux))
    balance = {
        lig: {
            "storage": ddt(k, state.fields[lig], state.previous[lig], state.older[lig]),
            **terms,
        }
        for lig, terms in ctx.balance.items()
    }
    return Forms(
        residuals=residuals,
        parts=parts,
        integrands=integrands,
        dt=k["dt"],
        constants=k,
        dx=dx,
        dx_lumped=dxl,
        balance=balance,
        context=ctx,
    )


def ddt(k: Mapping[str, Any], w: Any, w_n: Any, w_nm1: Any) -> Any:
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

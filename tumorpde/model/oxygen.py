r"""Oxygen component: quasi-steady oxygen tension O (mmHg), hypoxia and necrosis.

.. math::

    0 = \nabla\cdot(D_O\nabla O) + k_s(x)\, m\, (O_b - O) - M u \frac{O}{O + K_m}

(homogenized vascular supply and Michaelis-Menten consumption; tumor
oxygen diffusivity: Grote, Susskind & Vaupel 1977, Pflugers Arch. 372:37-42). m is the
relative vessel density of :mod:`tumorpde.model.vessels` (``[angiogenesis]``; 1 without it).
M is the cells' oxygen consumption rate (OCR) at carrying capacity divided by the oxygen
solubility (see ``benchmarks/cases/lung_metastasis.toml``: Wagner, Venkataraman & Buettner 2011,
Free Radic Biol Med 51:700-712). The component publishes
:math:`h(O) = K_h^n/(K_h^n + O^n)` (modifier ``hypoxia``), limits proliferation by
:math:`O/(O + K_O)` and adds the hypoxic death rate :math:`\delta_{hyp} h(O)`.

With ``necrosis_rate`` > 0, anoxic cells die into an irreversible necrotic volume fraction n:

.. math::

    \partial_t n = \delta_{nec}\, h_n(O)\, u - k_{cl} n, \qquad
    h_n(O) = \frac{K_n^k}{K_n^k + O^k}

(the tumor loses :math:`\delta_{nec} h_n(O) u`; n occupies space, so logistic growth becomes
:math:`\rho u (1 - u - n)` through the ``crowding`` modifier, which keeps u + n <= 1 on uniform
states). Necrotic tissue holds no living cells, so it neither proliferates, binds drug (receptor
sinks scale with u) nor signals. Viable rim and necrotic core of solid tumors under diffusion-
limited oxygen: Thomlinson & Gray 1955, Br J Cancer 9:539-549.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import ufl
from ufl.core.expr import Expr

from tumorpde.model import laws
from tumorpde.model.base import CellField, Component, Context, Initial, QoI, region_field
from tumorpde.model.species import FieldNames, Species
from tumorpde.model.vessels import lesion_indicator

if TYPE_CHECKING:
    from tumorpde.config import CaseConfig

__all__ = ["NECROSIS_HILL", "Oxygen"]

N = FieldNames

#: Hill exponent k of the necrosis switch h_n(O) (a sharp anoxia threshold; assumption).
NECROSIS_HILL = 4.0


class Oxygen(Component):
    """Quasi-steady oxygen (needs ``[oxygen]``), with necrosis when ``necrosis_rate`` > 0."""

    name = "oxygen"

    def __init__(self, cfg: CaseConfig) -> None:
        assert cfg.oxygen is not None
        self.cfg = cfg.oxygen
        self.fields = [region_field(cfg, f"oxygen.{k}") for k in ("supply_rate", "diffusivity")]
        self.necrosis = cfg.oxygen.necrosis_rate > 0
        self.extended = self.necrosis or cfg.angiogenesis is not None

    def species(self) -> Sequence[Species]:
        """Oxygen tension (algebraic: no time derivative); the necrotic fraction (ODE)."""
        out = [Species(N.oxygen, "algebraic", "mmHg", "oxygen")]
        if self.necrosis:
            out.append(Species(N.necrotic, "ode", "1 (volume fraction)", "necrotic"))
        return out

    def initial(self) -> Mapping[str, Initial]:
        """The blood level; no necrosis."""
        out: dict[str, Initial] = {N.oxygen: self.cfg.blood_level}
        if self.necrosis:
            out[N.necrotic] = 0.0
        return out

    def constants(self) -> Mapping[str, float]:
        """Blood level, consumption, half-saturations, hypoxia threshold, hypoxic death."""
        o = self.cfg
        out = {
            "o2.blood": o.blood_level,
            "o2.consumption": o.consumption,
            "o2.km": o.consumption_half,
            "o2.prolif_half": o.proliferation_half,
            "o2.hypoxia": o.hypoxia_threshold,
            "o2.death": o.hypoxic_death_rate,
        }
        if self.necrosis:
            out.update(
                {
                    "o2.necrosis": o.necrosis_rate,
                    "o2.necrosis_half": o.necrosis_threshold,
                    "o2.necrosis_clear": o.necrosis_clearance,
                }
            )
        return out

    def cell_fields(self) -> Sequence[CellField]:
        """Supply rate and diffusivity by region."""
        return self.fields

    def necrotic_death(self, ctx: Context) -> Expr:
        """Per-cell necrotic death rate delta_nec h_n(O) (1/h)."""
        hn = laws.hypoxia(ctx.f(N.oxygen), ctx.const("o2.necrosis_half"), NECROSIS_HILL)
        return ctx.const("o2.necrosis") * hn

    def modifiers(self, ctx: Context) -> None:
        """Hypoxia, the oxygen limit on proliferation, hypoxic death; necrosis and crowding."""
        oxy = ctx.f(N.oxygen)
        h = laws.hypoxia(oxy, ctx.const("o2.hypoxia"), self.cfg.hypoxia_hill)
        ctx.mod.hypoxia = h
        ctx.mod.growth.append(laws.hill(oxy, ctx.const("o2.prolif_half"), 1.0))
        ctx.mod.death.append(ctx.const("o2.death") * h)
        if self.necrosis:
            ctx.mod.death.append(self.necrotic_death(ctx))
            ctx.mod.crowding.append(ctx.f(N.necrotic))

    def terms(self, ctx: Context) -> None:
        """Diffusion, supply (times the vessel density) and consumption, scaled to O(1)."""
        oxy = ctx.f(N.oxygen)
        u = ctx.f(N.tumor)
        # The quasi-steady equation is scaled by 1/(k_s O_b) (global values), which leaves its
        # solution unchanged but makes its terms O(1): unscaled (~1e4 mmHg/h per mm^3) its
        # round-off floor (~5e-9) stalled Newton's relative test in the lung case.
        scale = 1.0 / (self.cfg.supply_rate * self.cfg.blood_level)
        ctx.flux[N.oxygen] = scale * laws.diffusive_flux(oxy, ctx.coef("oxygen.diffusivity"))
        c = ctx.const
        supply = laws.oxygen_supply(oxy, c("o2.blood"), ctx.coef("oxygen.supply_rate"))
        if ctx.mod.vessels is not None:
            supply = ctx.mod.vessels * supply
        if self.extended:
            # M u O/(|O| + K_m): equal for O >= 0, but C1 through O = 0 (the clipped form's
            # Jacobian drops the consumption at O = 0, where Newton then stalls on an anoxic
            # core: measured DIVERGED_MAX_IT at t = 0 for M = 13400 mmHg/h on a 3 mm lesion)
            uptake = c("o2.consumption") * u * oxy / (ufl.algebra.Abs(oxy) + c("o2.km"))
        else:
            uptake = laws.oxygen_consumption(u, oxy, c("o2.consumption"), c("o2.km"))
        ctx.add(N.oxygen, scale * (supply - uptake))
        if self.necrosis:
            n = ctx.f(N.necrotic)
            death = self.necrotic_death(ctx) * ufl.max_value(u, 0.0)
            ctx.add(N.necrotic, death - c("o2.necrosis_clear") * n)

    def qois(self, ctx: Context) -> Sequence[QoI]:
        """Mean oxygen; with necrosis or vessels: viable and necrotic volume, hypoxic fraction.

        ``hypoxic_fraction``: volume of the lesion (u + n >= 0.1) with O below the hypoxia
        threshold, over the lesion volume (0 without a lesion); ``mean_oxygen_lesion_mmHg``:
        the lesion's mean pO2.
        """
        oxy = ctx.f(N.oxygen)
        out = [QoI("mean_oxygen_mmHg", oxy, ctx.const("one"))]
        if not self.extended:
            return out
        lesion = lesion_indicator(ctx)
        hypoxic = ufl.conditional(ufl.lt(oxy, ctx.const("o2.hypoxia")), 1.0, 0.0)
        out += [
            QoI("viable_volume_mm3", ctx.f(N.tumor)),
            QoI("lesion_volume_mm3", lesion),
            QoI("hypoxic_fraction", lesion * hypoxic, lesion),
            QoI("mean_oxygen_lesion_mmHg", lesion * oxy, lesion),
        ]
        if self.necrosis:
            out.append(QoI("necrotic_volume_mm3", ctx.f(N.necrotic)))
        return out

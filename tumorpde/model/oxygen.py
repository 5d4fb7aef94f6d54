r"""Oxygen component: quasi-steady oxygen tension O (mmHg) and the hypoxia it defines.

.. math::

    0 = \nabla\cdot(D_O\nabla O) + k_s(x)(O_b - O) - M u \frac{O}{O + K_m}

(homogenized vascular supply and Michaelis-Menten consumption; tumor
oxygen diffusivity: Grote, Susskind & Vaupel 1977, Pflugers Arch. 372:37-42). The component
publishes :math:`h(O) = K_h^n/(K_h^n + O^n)` (modifier ``hypoxia``), limits proliferation by
:math:`O/(O + K_O)` and adds the hypoxic death rate :math:`\delta_{hyp} h(O)`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from tumorpde.model import laws
from tumorpde.model.base import CellField, Component, Context, Initial, QoI, region_field
from tumorpde.model.species import FieldNames, Species

if TYPE_CHECKING:
    from tumorpde.config import CaseConfig

__all__ = ["Oxygen"]

N = FieldNames


class Oxygen(Component):
    """Quasi-steady oxygen (needs ``[oxygen]``)."""

    name = "oxygen"

    def __init__(self, cfg: CaseConfig) -> None:
        assert cfg.oxygen is not None
        self.cfg = cfg.oxygen
        self.fields = [region_field(cfg, f"oxygen.{k}") for k in ("supply_rate", "diffusivity")]

    def species(self) -> Sequence[Species]:
        """Oxygen tension (algebraic: no time derivative)."""
        return [Species(N.oxygen, "algebraic", "mmHg", "oxygen")]

    def initial(self) -> Mapping[str, Initial]:
        """The blood level."""
        return {N.oxygen: self.cfg.blood_level}

    def constants(self) -> Mapping[str, float]:
        """Blood level, consumption, half-saturations, hypoxia threshold, hypoxic death."""
        o = self.cfg
        return {
            "o2.blood": o.blood_level,
            "o2.consumption": o.consumption,
            "o2.km": o.consumption_half,
            "o2.prolif_half": o.proliferation_half,
            "o2.hypoxia": o.hypoxia_threshold,
            "o2.death": o.hypoxic_death_rate,
        }

    def cell_fields(self) -> Sequence[CellField]:
        """Supply rate and diffusivity by region."""
        return self.fields

    def modifiers(self, ctx: Context) -> None:
        """Hypoxia, the oxygen limit on proliferation and hypoxic death."""
        oxy = ctx.f(N.oxygen)
        h = laws.hypoxia(oxy, ctx.const("o2.hypoxia"), self.cfg.hypoxia_hill)
        ctx.mod.hypoxia = h
        ctx.mod.growth.append(laws.hill(oxy, ctx.const("o2.prolif_half"), 1.0))
        ctx.mod.death.append(ctx.const("o2.death") * h)

    def terms(self, ctx: Context) -> None:
        """Diffusion, supply and consumption, scaled to O(1)."""
        oxy = ctx.f(N.oxygen)
        u = ctx.f(N.tumor)
        # The quasi-steady equation is scaled by 1/(k_s O_b) (global values), which leaves its
        # solution unchanged but makes its terms O(1): unscaled (~1e4 mmHg/h per mm^3) its
        # round-off floor (~5e-9) stalled Newton's relative test in the lung case.
        scale = 1.0 / (self.cfg.supply_rate * self.cfg.blood_level)
        ctx.flux[N.oxygen] = scale * laws.diffusive_flux(oxy, ctx.coef("oxygen.diffusivity"))
        c = ctx.const
        ctx.add(
            N.oxygen,
            scale
            * (
                laws.oxygen_supply(oxy, c("o2.blood"), ctx.coef("oxygen.supply_rate"))
                - laws.oxygen_consumption(u, oxy, c("o2.consumption"), c("o2.km"))
            ),
        )

    def qois(self, ctx: Context) -> Sequence[QoI]:
        """Mean oxygen tension."""
        return [QoI("mean_oxygen_mmHg", ctx.f(N.oxygen), ctx.const("one"))]

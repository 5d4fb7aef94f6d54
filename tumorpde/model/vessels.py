r"""Vessels component: the relative vascular density m = S_v/S_v,host and its VEGF control.

.. math::

    \partial_t m = r_a A(V)\,(1 - u)\, m \left(1 - \frac{m}{m_{max}}\right)
      - k_r\, u\, (1 - \sigma(V))\, m + k_h (1 - u)(1 - m),
    \qquad \sigma(V) = \frac{V^n}{K_V^n + V^n},\quad A(V) = \max(\sigma(V) - \sigma(V_0), 0)

(an ODE at every point: vessels do not migrate on the lesion scale; m = 1 is the organ's host
vasculature, whose surface density per region comes from ``vessels.surface_density``):

- **co-option, then regression**: a lesion first grows on the host vessels it co-opts (m = 1);
  inside it, vessels without VEGF support regress at :math:`k_r u` (Holash et al. 1999, Science
  284:1994-1998: co-opted vessels regress in the tumor centre, leaving a hypoxic core, before
  VEGF-driven angiogenesis at the margin rescues the tumor);
- **VEGF-driven angiogenesis**: sprouting from existing vessels at :math:`r_a A(V) m`, logistic
  up to :math:`m_{max}` (continuum endothelial density with proliferation driven by the
  angiogenic factor: Anderson & Chaplain 1998, Bull Math Biol 60:857-899), in the room the
  tumor leaves, :math:`1 - u`: proliferating cancer cells compress and collapse intratumoral
  vessels (Padera et al. 2004, Nature 427:695), so new vessels form at the lesion margin, not
  in its packed centre. The drive is the VEGFR2 saturation :math:`\sigma(V)` by free VEGF V
  above its tumor-free level :math:`V_0` (the ligand's ``initial``), so the host vasculature
  (V = V_0, u = 0) is exactly stationary; :math:`K_V` = endothelial VEGFR2
  :math:`K_d = k_{off}/k_{on}` = 0.1 nM (Vempati, Popel & Mac Gabhann 2011, BMC Syst Biol
  5:59, the library's VEGFR2 rates); VEGF survival support :math:`1 - \sigma(V)` protects
  lesion vessels from regression, so anti-VEGF therapy (bevacizumab, which traps V) prunes them;
- **restoration**: outside the lesion, vessels relax to the host density at :math:`k_h`.

With necrosis (``oxygen.necrosis_rate``) the necrotic fraction n counts as lesion: vessels
regress at :math:`k_r (u (1 - \sigma) + n)` (VEGF does not protect vessels in necrotic
tissue), restore at :math:`k_h (1 - u - n)(1 - m)` and sprout in the room
:math:`1 - u - n` (none into necrotic tissue).

The component publishes ``ctx.mod.vessels = m`` (oxygen supply :math:`k_s m (O_b - O)`, drug
exchange :math:`P S_v m`) and, with a VEGF pathway, ``ctx.mod.permeability`` =
:math:`(1 + a\sigma(V))/(1 + a\sigma_{ref})`, the VEGF-raised permeability of the lesion's
vessels relative to the tabulated tumor-vessel value (VEGF is the vascular permeability factor:
Senger et al. 1983, Science 219:983-985); :math:`\sigma_{ref}` = 1/2 (assumption: the tabulated
tumor permeability is that of a VEGF-rich lesion, half-saturating VEGFR2). Anti-VEGF therapy
lowers it ("vessel normalization", Jain 2005, Science 307:58-62). Without a VEGF pathway
(``angiogenesis.pathway = "none"``) there is no sprouting and no permeability factor:
:math:`\sigma = 0`, vessels regress inside the lesion at :math:`k_r u` and recover outside.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import ufl
from ufl.core.expr import Expr

from tumorpde.model.base import Component, Context, Initial, QoI
from tumorpde.model.species import FieldNames, Species

if TYPE_CHECKING:
    from tumorpde.config import CaseConfig

__all__ = ["LESION_DENSITY", "SIGMA_REF", "Vessels", "vegf_saturation"]

N = FieldNames

#: VEGFR2 saturation at which the tabulated tumor-vessel drug permeability applies (assumption).
SIGMA_REF = 0.5
#: Tumor density (u + necrotic fraction) that counts as lesion in the lesion QoIs.
LESION_DENSITY = 0.1


def vegf_saturation(v: Expr | float, half: float, n: float) -> Expr | float:
    r"""Endothelial VEGFR2 saturation :math:`\sigma(V) = V^n/(K_V^n + V^n)` (V clipped at 0).

    Args:
        v: Free VEGF (nM), a UFL expression or a number.
        half: :math:`K_V` (nM).
        n: Hill coefficient.
    """
    if isinstance(v, float | int):
        vp = max(float(v), 0.0)
        return vp**n / (half**n + vp**n)
    vp = ufl.max_value(v, 0.0)
    return vp**n / (half**n + vp**n)


class Vessels(Component):
    """Dynamic relative vessel density (needs ``[angiogenesis]``)."""

    name = "vessels"

    def __init__(self, cfg: CaseConfig) -> None:
        assert cfg.angiogenesis is not None
        self.cfg = cfg.angiogenesis
        a = self.cfg
        self.ligand: str | None = None
        self.sigma0 = 0.0
        if a.pathway is not None:
            lig = cfg.pathways[a.pathway].ligand
            assert lig is not None
            self.ligand = lig.name
            self.sigma0 = float(vegf_saturation(lig.initial, a.vegf_half, a.vegf_hill))

    def species(self) -> Sequence[Species]:
        """Relative vessel density (pointwise ODE)."""
        return [Species(N.vessels, "ode", "1 (S_v/S_v,host)", "vessels")]

    def initial(self) -> Mapping[str, Initial]:
        """Host vasculature everywhere (the seed co-opts it)."""
        return {N.vessels: 1.0}

    def constants(self) -> Mapping[str, float]:
        """Sprouting, maximal density, regression, restoration, tumor-free VEGF saturation."""
        a = self.cfg
        return {
            "ves.sprout": a.sprouting_rate,
            "ves.max": a.max_density,
            "ves.regress": a.regression_rate,
            "ves.restore": a.restoration_rate,
            "ves.sigma0": self.sigma0,
        }

    def sigma(self, ctx: Context) -> Expr | None:
        """VEGFR2 saturation by the free VEGF (None without a VEGF pathway)."""
        if self.ligand is None:
            return None
        s = vegf_saturation(ctx.f(self.ligand), self.cfg.vegf_half, self.cfg.vegf_hill)
        assert not isinstance(s, float)
        return s

    def modifiers(self, ctx: Context) -> None:
        """Relative density (oxygen supply, drug exchange) and the lesion permeability factor."""
        ctx.mod.vessels = ufl.max_value(ctx.f(N.vessels), 0.0)
        s = self.sigma(ctx)
        if s is not None:
            a = self.cfg.permeability_gain
            ctx.mod.permeability = (1 + a * s) / (1 + a * SIGMA_REF)

    def terms(self, ctx: Context) -> None:
        """Sprouting, regression inside the lesion, restoration outside it."""
        m = ctx.f(N.vessels)
        u = ufl.max_value(ctx.f(N.tumor), 0.0)
        dead = ufl.max_value(ctx.f(N.necrotic), 0.0) if ctx.has(N.necrotic) else None
        occupied = u + dead if dead is not None else u
        c = ctx.const
        s = self.sigma(ctx)
        support = 1 - s if s is not None else 1.0
        # VEGF supports vessels among viable cells; necrotic tissue loses its vessels regardless
        loss = u * support + dead if dead is not None else u * support
        rate = -c("ves.regress") * loss * m
        rate = rate + c("ves.restore") * (1 - occupied) * (1 - m)
        if s is not None:
            # sprouting needs room: none into necrotic tissue or where cells pack at capacity
            room = ufl.max_value(1 - occupied, 0.0)
            drive = ufl.max_value(s - c("ves.sigma0"), 0.0) * room
            rate = rate + c("ves.sprout") * drive * m * (1 - m / c("ves.max"))
        ctx.add(N.vessels, rate)

    def qois(self, ctx: Context) -> Sequence[QoI]:
        """Mean vessel density: whole organ, in the lesion, and per region."""
        m = ctx.f(N.vessels)
        one = ctx.const("one")
        lesion = lesion_indicator(ctx)
        out = [
            QoI("mean_vessel_density", m, one),
            QoI("mean_vessel_density_lesion", m * lesion, lesion),
        ]
        for region in ctx.symbols.regions:
            out.append(QoI(f"mean_vessel_density_{region}", m, one, region))
        return out


def lesion_indicator(ctx: Context) -> Expr:
    """1 where the tumor plus necrotic fraction reaches :data:`LESION_DENSITY`, else 0."""
    occupied = ctx.f(N.tumor)
    if ctx.has(N.necrotic):
        occupied = occupied + ctx.f(N.necrotic)
    return ufl.conditional(ufl.ge(occupied, LESION_DENSITY), 1.0, 0.0)

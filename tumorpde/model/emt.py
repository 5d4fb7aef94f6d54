r"""EMT component: the mesenchymal fraction e of the tumor cells.

.. math::

    \partial_t e = \sum_p \mathrm{emt}(S_p, e; k_p) - \Big(\sum_p r_p\Big) e

with signal-driven switching :func:`tumorpde.model.laws.emt_rate` of the pathways whose
``effects.emt_rate`` > 0 and reversion rates :math:`r_p` (TGF-:math:`\beta` context; Lowery &
Yu 2012, Cancer Metastasis Rev. 31:479-491). Mesenchymal cells escape the cytostatic signal
(pathway modifiers) and move faster: the tumor motility gets the one factor
:math:`1 + a\,e` with :math:`a = \max_p a_{mot,p}` over the pathways' ``effects.emt_motility``.
The gain belongs to the mesenchymal state, not to a pathway, so it is applied once however many
pathways drive or name it (the largest value given wins).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from tumorpde.model import laws
from tumorpde.model.base import Component, Context, Initial, QoI
from tumorpde.model.species import FieldNames, Species

__all__ = ["EMT"]

N = FieldNames


class EMT(Component):
    """Mesenchymal fraction driven by the given pathways.

    Args:
        drivers: ``(pathway, reversion rate)`` of every pathway whose signal drives EMT.
        motility: Motility gain a of fully mesenchymal cells (factor 1 + a e, applied once).
    """

    name = "emt"

    def __init__(self, drivers: Sequence[tuple[str, float]], motility: float = 0.0) -> None:
        self.drivers = list(drivers)
        self.motility = float(motility)

    def species(self) -> Sequence[Species]:
        """The mesenchymal fraction."""
        return [Species(N.emt, "ode", "1 (fraction)", "emt")]

    def initial(self) -> Mapping[str, Initial]:
        """All cells epithelial."""
        return {N.emt: 0.0}

    def constants(self) -> Mapping[str, float]:
        """Motility gain of mesenchymal cells."""
        return {"emt.motility": self.motility}

    def modifiers(self, ctx: Context) -> None:
        """One motility factor 1 + a e on the tumor (none when a = 0)."""
        if self.motility > 0:
            ctx.mod.motility.append(1 + ctx.const("emt.motility") * ctx.f(N.emt))

    def terms(self, ctx: Context) -> None:
        """Switching and reversion."""
        e = ctx.f(N.emt)
        rate, back = 0.0 * e, 0.0
        for p, reversion in self.drivers:
            rate = rate + laws.emt_rate(ctx.f(N.signal(p)), e, ctx.const(f"{p}.emt_rate"))
            back = back + reversion
        ctx.add(N.emt, rate - back * e)

    def qois(self, ctx: Context) -> Sequence[QoI]:
        """Cell-weighted mesenchymal fraction."""
        u = ctx.f(N.tumor)
        return [QoI("mesenchymal_fraction", u * ctx.f(N.emt), u)]

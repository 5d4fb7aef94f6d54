r"""Bone component: the vicious cycle of osteoclast activity and matrix ligand release.

.. math::

    \partial_t OC = b(x) + a(x)\,S_p\,u - k_{OC}\,OC

and the pathway's ligand (TGF-:math:`\beta`) gains the source :math:`r(x)\,OC` (Mundy 2002;
Oreffo et al. 1989, Biochem. Biophys. Res. Commun. 158:817-823; Chiechi et al. 2013, Adv. Biosci.
Biotechnol. 4:15-30). ``basal``, ``activation`` and ``matrix_release`` are per region.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from tumorpde.model import laws
from tumorpde.model.base import CellField, Component, Context, Initial, QoI, region_field
from tumorpde.model.species import FieldNames, Species

if TYPE_CHECKING:
    from tumorpde.config import CaseConfig

__all__ = ["Bone"]

N = FieldNames


class Bone(Component):
    """Osteoclast activity (needs ``[bone]`` and its pathway's signal)."""

    name = "bone"

    def __init__(self, cfg: CaseConfig) -> None:
        assert cfg.bone is not None
        self.cfg = cfg.bone
        self.pathway = cfg.bone.pathway
        self.fields = [
            region_field(cfg, f"bone.{k}") for k in ("basal", "activation", "matrix_release")
        ]

    def species(self) -> Sequence[Species]:
        """Osteoclast activity."""
        return [Species(N.osteoclast, "ode", "1 (activity)", "osteoclast")]

    def initial(self) -> Mapping[str, Initial]:
        """The basal steady state basal/decay (the global values)."""
        return {N.osteoclast: self.cfg.basal / self.cfg.decay}

    def constants(self) -> Mapping[str, float]:
        """Osteoclast decay rate."""
        return {"bone.decay": self.cfg.decay}

    def cell_fields(self) -> Sequence[CellField]:
        """Basal rate, activation and matrix release by region."""
        return self.fields

    def modifiers(self, ctx: Context) -> None:
        """Matrix release into the pathway's ligand."""
        ctx.mod.add_ligand_source(
            self.pathway, ctx.coef("bone.matrix_release") * ctx.f(N.osteoclast)
        )

    def terms(self, ctx: Context) -> None:
        """Basal and signal-driven activation, decay."""
        ctx.add(
            N.osteoclast,
            laws.osteoclast_rate(
                ctx.f(N.osteoclast),
                ctx.f(N.tumor),
                ctx.f(N.signal(self.pathway)),
                ctx.coef("bone.basal"),
                ctx.coef("bone.activation"),
                ctx.const("bone.decay"),
            ),
        )

    def qois(self, ctx: Context) -> Sequence[QoI]:
        """Mean osteoclast activity."""
        return [QoI("mean_osteoclast", ctx.f(N.osteoclast), ctx.const("one"))]

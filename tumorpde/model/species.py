"""Species and field names: the one place where the names of unknowns and derived fields are made.

Every layer that needs the name of a receptor state, a signal, a drug complex or a derived field
asks :class:`FieldNames` instead of spelling ``f"{p}_complex"`` itself, so a naming rule lives
in one line. :class:`Species` describes one unknown (kind, unit, role, owning pathway).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["DRUG_EFFECT", "FieldNames", "Kind", "Species"]

Kind = Literal["pde", "ode", "algebraic"]


@dataclass(frozen=True)
class Species:
    """One unknown field.

    Attributes:
        name: Field name (also the output name).
        kind: ``pde`` (transported), ``ode`` (pointwise, lumped) or ``algebraic`` (quasi-steady).
        unit: Unit of the stored values.
        role: ``tumor``, ``ligand``, ``ecm``, ``receptor``, ``complex``, ``internal``,
            ``signal``, ``emt``, ``oxygen``, ``osteoclast``, ``bone_matrix``, ``drug``,
            ``drug_receptor`` or
            ``drug_ligand``.
        pathway: The pathway it belongs to (None for tumor and modules).
    """

    name: str
    kind: Kind
    unit: str
    role: str
    pathway: str | None = None

    @property
    def nonnegative(self) -> bool:
        """Constrained to >= 0 in the solve (variational-inequality Newton).

        Receptor, signal, phenotype and drug states: their stiff bilinear binding kinetics have
        spurious negative roots that plain Newton can reach after a dose. Oxygen: its
        Michaelis-Menten consumption has a kink at O = 0, where Newton stalls once a hypoxic core
        forms (measured: the lung case failed at day 9.9 even at dt = 0.008 h). The transported
        tumor density and ligands stay unconstrained, so their (small, reported) discretization
        undershoots are not clipped and their balances stay exact.
        """
        return self.role not in ("tumor", "ligand")


#: The derived drug-response field per mechanism (``<drug>_<effect>``).
DRUG_EFFECT = {
    "receptor_antibody": "occupancy",
    "kinase_inhibitor": "inhibition",
    "ligand_trap": "trapped",
}


class FieldNames:
    """Names of species and derived fields (the naming convention, in one place)."""

    tumor = "tumor"
    emt = "mesenchymal"
    oxygen = "oxygen"
    osteoclast = "osteoclast"
    bone_matrix = "bone_matrix"
    pthrp = "pthrp"
    rankl = "rankl"
    matrix_tgf_release = "matrix_tgf_release"
    vessels = "vessel_density"
    necrotic = "necrotic"
    kill_rate = "kill_rate"
    net_growth_rate = "net_growth_rate"

    @staticmethod
    def receptor(pathway: str) -> str:
        """Free surface receptor R of a pathway (the pathway's name)."""
        return pathway

    @staticmethod
    def complex(pathway: str) -> str:
        """Ligand-receptor complex C."""
        return f"{pathway}_complex"

    @staticmethod
    def internal(pathway: str) -> str:
        """Internalized receptor pool I."""
        return f"{pathway}_internal"

    @staticmethod
    def signal(pathway: str) -> str:
        """Downstream signal S."""
        return f"{pathway}_signal"

    @staticmethod
    def occupancy(pathway: str) -> str:
        """Derived receptor occupancy (C + I)/(R + C + I)."""
        return f"{pathway}_occupancy"

    @staticmethod
    def ecm(ligand: str) -> str:
        """Matrix-bound ligand."""
        return f"{ligand}_ecm"

    @staticmethod
    def drug(drug: str) -> str:
        """Free tissue drug A."""
        return drug

    @staticmethod
    def drug_bound(drug: str) -> str:
        """Drug-receptor complex B (receptor antibodies)."""
        return f"{drug}_bound"

    @staticmethod
    def drug_complex(drug: str) -> str:
        """Drug-ligand complex (ligand traps)."""
        return f"{drug}_complex"

    @staticmethod
    def drug_effect(drug: str, mechanism: str) -> str:
        """Derived drug-response field: occupancy, inhibition or trapped fraction."""
        return f"{drug}_{DRUG_EFFECT[mechanism]}"

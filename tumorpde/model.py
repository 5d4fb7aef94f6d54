"""Model catalogue: which species a case has, their kinds and units (pure Python, no dolfinx).

A case's unknowns follow from its configuration: the tumor density, then for each active pathway
its ligand (and ECM-bound ligand), receptor states and signal, then the optional modules (EMT
fraction, oxygen, osteoclast activity). Every later layer (state, forms, metrics, outputs) walks
this list instead of naming species by hand, so any subset of pathways assembles generically.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tumorpde.config import CaseConfig

__all__ = ["Species", "derived_field_names", "output_field_names", "species"]

Kind = Literal["pde", "ode", "algebraic"]


@dataclass(frozen=True)
class Species:
    """One unknown field.

    Attributes:
        name: Field name (also the output name).
        kind: ``pde`` (transported), ``ode`` (pointwise, lumped) or ``algebraic`` (quasi-steady).
        unit: Unit of the stored values.
        role: ``tumor``, ``ligand``, ``ecm``, ``receptor``, ``complex``, ``internal``,
            ``signal``, ``emt``, ``oxygen`` or ``osteoclast``.
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


def species(cfg: CaseConfig) -> list[Species]:
    """The ordered unknowns of a case."""
    out = [Species("tumor", "pde", "1 (u = n / n_max)", "tumor")]
    for p, pw in cfg.pathways.items():
        if pw.ligand is not None:
            out.append(Species(pw.ligand.name, "pde", "nM", "ligand", p))
            if pw.ligand.ecm is not None:
                out.append(Species(f"{pw.ligand.name}_ecm", "ode", "nM", "ecm", p))
        out.append(Species(p, "ode", "nM at u = 1", "receptor", p))
        if pw.ligand is not None:
            out.append(Species(f"{p}_complex", "ode", "nM at u = 1", "complex", p))
            if pw.receptor.internalized:
                out.append(Species(f"{p}_internal", "ode", "nM at u = 1", "internal", p))
        if pw.signal.enabled:
            out.append(Species(f"{p}_signal", "ode", "1", "signal", p))
    if has_emt(cfg):
        out.append(Species("mesenchymal", "ode", "1 (fraction)", "emt"))
    if cfg.oxygen is not None:
        out.append(Species("oxygen", "algebraic", "mmHg", "oxygen"))
    if cfg.bone is not None:
        out.append(Species("osteoclast", "ode", "1 (activity)", "osteoclast"))
    for t in cfg.therapy.treatments if cfg.therapy else []:
        spec = t.spec
        target = spec.targets[0]
        out.append(Species(spec.name, "pde", "nM", "drug", target))
        if spec.mechanism == "receptor_antibody":
            out.append(Species(f"{spec.name}_bound", "ode", "nM at u = 1", "drug_receptor", target))
        elif spec.mechanism == "ligand_trap":
            out.append(Species(f"{spec.name}_complex", "ode", "nM", "drug_ligand", target))
    return out


def has_emt(cfg: CaseConfig) -> bool:
    """True if some pathway drives the epithelial-mesenchymal switch."""
    return any(pw.effects.emt_rate > 0 and pw.signal.enabled for pw in cfg.pathways.values())


def derived_field_names(cfg: CaseConfig) -> list[str]:
    """Output fields computed from the unknowns.

    Receptor occupancy per ligand pathway; with therapy, per drug its target occupancy
    (antibodies), signal inhibition (kinase inhibitors) or trapped ligand fraction (traps), the
    local drug kill rate and the net per-cell growth rate (1/h).
    """
    out = [f"{p}_occupancy" for p, pw in cfg.pathways.items() if pw.ligand is not None]
    treatments = cfg.therapy.treatments if cfg.therapy else []
    for t in treatments:
        spec = t.spec
        out.append(f"{spec.name}_{DRUG_EFFECT[spec.mechanism]}")
    if treatments:
        out += ["kill_rate", "net_growth_rate"]
    return out


#: The derived drug-response field per mechanism.
DRUG_EFFECT = {
    "receptor_antibody": "occupancy",
    "kinase_inhibitor": "inhibition",
    "ligand_trap": "trapped",
}


def output_field_names(cfg: CaseConfig) -> list[str]:
    """Every field a run can write: the species and the derived fields."""
    return [s.name for s in species(cfg)] + derived_field_names(cfg)

r"""Drug component: plasma PK, tissue transport, target binding and response of one treatment.

For drug j (catalog :mod:`tumorpde.library.drugs`, plasma curve :mod:`tumorpde.library.pk`):

- free tissue drug :math:`A_j` (nM):
  :math:`\partial_t A = \nabla\cdot(D_j\nabla A) + P_j(x,u)\,S_v(x)\,[f_u C_{pl}(t) - r(x) A/\phi]
  - k_{cl} A - \text{binding}` (homogenized trans-vascular exchange without convection; Baxter &
  Jain 1989). :math:`P_j(x,u) = (1-u) P_j^{class(x)} + u P_j^{tumor}`: the region's vessel
  class (normal, fenestrated, brain = blood-brain barrier) mixed with leaky tumor vessels
  (blood-tumor barrier) by the local tumor density; r is the efflux ratio in brain;
- receptor antibodies (cetuximab, panitumumab, trastuzumab): bound receptor :math:`B` per cell,
  :math:`J = k_{on} A R - k_{off} B`, :math:`\dot B = J - k_{int} B`; the target's free
  receptor loses J (modifier), the tissue drug loses u J, B counts in the target's occupancy
  total, and occupancy drives an Emax kill (ADCC) :math:`k_{max} occ^h/(O_{50}^h + occ^h)`;
- ligand traps (bevacizumab): complex :math:`B_L`, :math:`J = k_{on} A L - k_{off} B_L`, cleared
  at :math:`k_{cl}`; the ligand and the drug lose J;
- kinase inhibitors (lapatinib, crizotinib, galunisertib): no binding species; each target
  receives the competitive term :math:`x_j = (A_j/IC_{50,j})^{h}` (modifier), which the target
  pathway combines Loewe-additively with the other inhibitors on it.

Combination regimens therefore act through distinct mechanisms (receptor removal, kinase block,
ligand sequestration, ADCC) that multiply, never through two empirical Emax terms on one target.
The plasma concentration is a time constant evaluated at :math:`t_{n+1}`; dose starts and
infusion ends are step breakpoints; tissue exposure (AUC) is accumulated per region.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

import ufl
from ufl.core.expr import Expr

from tumorpde.library.drugs import DrugSpec, Treatment
from tumorpde.library.pk import PlasmaPK, schedule
from tumorpde.model import laws
from tumorpde.model.base import CellField, Component, Context, Initial, QoI, global_value
from tumorpde.model.species import FieldNames, Species

if TYPE_CHECKING:
    from tumorpde.config import CaseConfig

__all__ = ["Drug"]

N = FieldNames


class Drug(Component):
    """One treatment of ``[therapy]``.

    Args:
        cfg: The case (for the patient, the end time, the vessels and the target pathway).
        treatment: The treatment (drug and regimen).
    """

    def __init__(self, cfg: CaseConfig, treatment: Treatment) -> None:
        assert cfg.therapy is not None
        self.spec: DrugSpec = treatment.spec
        self.name = self.spec.name
        self.mechanism = self.spec.mechanism
        self.target = self.spec.targets[0]
        doses = schedule(treatment.regimen, cfg.therapy.patient, cfg.time.t_end)
        self.plasma = PlasmaPK(self.spec.pk, doses, self.spec.molecular_weight)
        target = cfg.pathways[self.target]
        self.target_ligand = target.ligand.name if target.ligand is not None else None
        self.target_internalized = target.ligand is not None and target.receptor.internalized
        self.fields = self._exchange_fields(cfg)

    def _exchange_fields(self, cfg: CaseConfig) -> list[CellField]:
        """Exchange coefficients P S_v, P S_v r, S_v, S_v r by region.

        P is the permeability of the region's vessel class (``vessels.barrier``), r the brain
        efflux ratio. Each is one cell-wise field so that every exchange term is linear in one
        cell-wise coefficient (the pointwise assembler averages them to the nodes exactly).
        """
        perm = self.spec.permeability
        by_class = perm.by_class()

        def values(barrier: str, sv: float) -> dict[str, float]:
            p = by_class[barrier]
            r = perm.brain_efflux_ratio if barrier == "brain" else 1.0
            return {"PS": p * sv, "PSr": p * sv * r, "S": sv, "Sr": sv * r}

        default = values(cfg.vessels.barrier, global_value(cfg, "vessels.surface_density"))
        regional: dict[str, dict[str, float]] = {}
        for region, vals in cfg.regions.items():
            if "vessels.barrier" in vals or "vessels.surface_density" in vals:
                barrier = str(vals.get("vessels.barrier", cfg.vessels.barrier))
                sv = float(vals.get("vessels.surface_density", cfg.vessels.surface_density))
                regional[region] = values(barrier, sv)
        return [
            CellField(f"{self.name}.{k}", default[k], {r: v[k] for r, v in regional.items()})
            for k in ("PS", "PSr", "S", "Sr")
        ]

    # ------------------------------------------------------------------ declarations
    def species(self) -> Sequence[Species]:
        """Free drug, and the drug-receptor or drug-ligand complex."""
        out = [Species(N.drug(self.name), "pde", "nM", "drug", self.target)]
        if self.mechanism == "receptor_antibody":
            out.append(
                Species(N.drug_bound(self.name), "ode", "nM at u = 1", "drug_receptor", self.target)
            )
        elif self.mechanism == "ligand_trap":
            out.append(Species(N.drug_complex(self.name), "ode", "nM", "drug_ligand", self.target))
        return out

    def initial(self) -> Mapping[str, Initial]:
        """No drug at t = 0."""
        return {s.name: 0.0 for s in self.species()}

    def time_constants(self) -> Mapping[str, Callable[[float], float]]:
        """Plasma concentration (nM) at t."""
        return {self._plasma_key: lambda t: float(self.plasma.concentration_nM(t))}

    @property
    def _plasma_key(self) -> str:
        return f"{self.name}.plasma"

    def cell_fields(self) -> Sequence[CellField]:
        """Exchange coefficients by region."""
        return self.fields

    def breakpoints(self) -> Sequence[float]:
        """Dose starts and infusion ends (h)."""
        return [float(x) for x in self.plasma.breakpoints()]

    # ------------------------------------------------------------------ equations
    def _binding(self, ctx: Context, partner: Expr, complex_: Expr) -> Expr:
        spec = self.spec
        assert spec.binding is not None
        A = ctx.f(N.drug(self.name))
        return laws.binding_rate(A, partner, complex_, spec.binding.k_on, spec.binding.k_off)

    def occupancy(self, ctx: Context) -> Expr:
        """Occupancy of the receptor target, B / (R + C + I + B)."""
        p = self.target
        B = ctx.f(N.drug_bound(self.name))
        total = ctx.f(N.receptor(p)) + B
        if self.target_ligand is not None:
            total = total + ctx.f(N.complex(p))
            if self.target_internalized:
                total = total + ctx.f(N.internal(p))
        return B / (total + 1e-30)

    def modifiers(self, ctx: Context) -> None:
        """Kinase block terms, receptor loss and extra receptor state, ADCC kill."""
        spec, mod = self.spec, ctx.mod
        if self.mechanism == "kinase_inhibitor":
            A = ctx.f(N.drug(self.name))
            for target, pot in spec.potency.items():
                if target not in spec.targets:
                    continue
                mod.block_kinase(target, (ufl.max_value(A, 0.0) / pot.ic50) ** pot.hill, pot.imax)
        elif self.mechanism == "receptor_antibody":
            p = self.target
            B = ctx.f(N.drug_bound(self.name))
            mod.remove_receptor(p, self._binding(ctx, ctx.f(N.receptor(p)), B))
            mod.add_receptor_state(p, B)
            if spec.response is not None:
                r = spec.response
                occ = self.occupancy(ctx)
                mod.kill.append(r.kill_max * laws.hill(occ, r.half_occupancy, r.hill))

    def terms(self, ctx: Context) -> None:
        """Transport, vascular exchange, clearance and binding of the drug."""
        spec = self.spec
        u = ctx.f(N.tumor)
        A = ctx.f(N.drug(self.name))
        # P S_v (f_u C_pl - r A / phi) with P = (1 - u) P_class(x) + u P_tumor, expanded so
        # that each term carries one cell-wise coefficient (PS = P_class S_v, Sr = S_v r, ...)
        e = {k: ctx.coef(f"{self.name}.{k}") for k in ("PS", "PSr", "S", "Sr")}
        cp = spec.plasma_unbound_fraction * ctx.const(self._plasma_key)
        a_phi = A / spec.available_volume_fraction
        pt = spec.permeability.tumor
        exchange = (1 - u) * (e["PS"] * cp - e["PSr"] * a_phi) + u * pt * (
            e["S"] * cp - e["Sr"] * a_phi
        )
        ctx.flux[N.drug(self.name)] = laws.diffusive_flux(A, spec.diffusivity)
        ctx.add(N.drug(self.name), exchange - spec.tissue_clearance * A)
        if self.mechanism == "receptor_antibody":
            assert spec.binding is not None
            B = ctx.f(N.drug_bound(self.name))
            J = self._binding(ctx, ctx.f(N.receptor(self.target)), B)
            k_int = spec.binding.internalization or 0.0
            ctx.add(N.drug(self.name), -u * J)
            ctx.add(N.drug_bound(self.name), J - k_int * B)
        elif self.mechanism == "ligand_trap":
            assert self.target_ligand is not None
            L = ctx.f(self.target_ligand)
            Bl = ctx.f(N.drug_complex(self.name))
            J = self._binding(ctx, L, Bl)
            ctx.add(N.drug(self.name), -J)
            ctx.add(self.target_ligand, -J)
            ctx.add(N.drug_complex(self.name), J - spec.tissue_clearance * Bl)
            ctx.add_balance(self.target_ligand, "trap", J)

    # ------------------------------------------------------------------ outputs
    @property
    def effect(self) -> str:
        """Name of the drug-response field (occupancy, inhibition or trapped fraction)."""
        return N.drug_effect(self.name, self.mechanism)

    def derived_names(self) -> Sequence[str]:
        """The drug-response field."""
        return [self.effect]

    def derived(self, ctx: Context) -> Mapping[str, Expr]:
        """Target occupancy (antibodies), signal inhibition (kinase) or trapped fraction."""
        if self.mechanism == "receptor_antibody":
            return {self.effect: self.occupancy(ctx)}
        if self.mechanism == "kinase_inhibitor":
            x = None
            for pot in self.spec.potency.values():
                term = pot.imax * laws.hill(
                    ctx.f(N.drug(self.name)), pot.ic50, max(pot.hill, 1.0)
                )
                x = term if x is None else ufl.max_value(x, term)
            assert x is not None
            return {self.effect: x}
        assert self.target_ligand is not None
        Bl = ctx.f(N.drug_complex(self.name))
        return {self.effect: Bl / (Bl + ctx.f(self.target_ligand) + 1e-30)}

    def qois(self, ctx: Context) -> Sequence[QoI]:
        """Mean free drug; per region the mean drug and the cell-weighted response."""
        A = ctx.f(N.drug(self.name))
        u = ctx.f(N.tumor)
        one = ctx.const("one")
        effect = self.derived(ctx)[self.effect]
        out = [QoI(f"{self.name}_mean_nM", A, one)]
        for region in ctx.symbols.regions:
            out.append(QoI(f"{self.name}_nM_{region}", A, one, region))
            out.append(QoI(f"{self.effect}_{region}", u * effect, u, region))
        return out

    def scalar_qois(self, t: float) -> Mapping[str, float]:
        """Plasma level (nM) and plasma AUC (nM h, exact) at ``t``."""
        pk = self.plasma
        auc = pk.auc(0.0, t) * self.spec.nM_per_mg_L if t > 0 else 0.0
        return {
            f"plasma_{self.name}_nM": float(pk.concentration_nM(t)),
            f"plasma_{self.name}_auc_nMh": auc,
        }

    def exposures(self, regions: Sequence[str]) -> Mapping[str, str]:
        """Tissue AUC (nM h) of the mean and of every regional drug level."""
        out = {f"{self.name}_mean_auc_nMh": f"{self.name}_mean_nM"}
        out.update({f"{self.name}_{r}_auc_nMh": f"{self.name}_nM_{r}" for r in regions})
        return out

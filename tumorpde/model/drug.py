r"""Drug component: plasma PK, tissue transport, target binding and response of one treatment.

For drug j (catalog :mod:`tumorpde.library.drugs`, plasma curve :mod:`tumorpde.library.pk`):

- free tissue drug :math:`A_j` (nM, tissue-averaged; the free interstitial concentration is
  :math:`a = A/\phi` with the available volume fraction :math:`\phi`):

  .. math::

     \partial_t A = \nabla\cdot(D_j\nabla A)
       + (1-w) P_c S_v (f_u C_{pl} - r_c a) + w P_t S_v (f_u C_{pl} - r_t a)
       - Q_{isf}\, a - k_{cl} A - \text{binding}

  (homogenized trans-vascular exchange without convection; Baxter & Jain 1989, Microvasc Res
  37:77). :math:`P_c, r_c`: the region's vessel class (normal, fenestrated, brain = blood-brain
  barrier, whose efflux ratio :math:`r_c` applies to it alone); :math:`P_t, r_t`: the lesion's
  vessels: peripheral tumor vessels (:math:`r_t = 1`) or, where the region's barrier is
  ``brain``, the blood-tumor barrier of this lesion, a log-normal draw per lesion (z-score
  from ``therapy.lesion_seed`` or ``therapy.lesion_leakiness``; see
  :meth:`tumorpde.library.drugs.Permeability.lesion_btb`). The weight
  :math:`w = \min(1, u/u_L)` is the share of lesion vessels: 1 inside the lesion
  (:math:`u \ge u_L`, ``therapy.lesion_density``), so the lesion's permeability is a lesion
  property, not proportional to the local density (``tumor_permeability_weight = "density"``
  keeps :math:`w = u`). :math:`Q_{isf}` (``vessels.interstitial_clearance``) is the
  interstitial fluid cleared per tissue volume (brain ISF bulk flow to CSF, lymph elsewhere):
  without binding the steady interstitial-to-plasma ratio is :math:`PS/(PS + Q_{isf})`.
- receptor antibodies (cetuximab, panitumumab, trastuzumab): bound receptor :math:`B` per cell,
  :math:`J = k_{on} a R - k_{off} B`, :math:`\dot B = J - k_{int} B - g B` (g: the tumor's
  per-cell birth rate; dividing cells share their bound drug, so the tissue amount uB grows
  only by binding: :math:`\partial_t(uB) = uJ - k_{int}uB - \delta uB` without cell motion,
  and free + bound drug :math:`A + uB` is conserved by binding); the target's free
  receptor loses J (modifier), the tissue drug loses u J; B counts in the target's occupancy
  total (ligand pathways) or keeps the signal fraction :math:`1 - \beta (1 - b)` of a free
  receptor (ligand-less HER2: antibody block :math:`\beta`, ``response.signal_block``, of the
  ligand-independent signal; :math:`b` = ``therapy.her3_bypass``, the ligand-driven HER2/HER3
  share the antibody does not block; one value per case); occupancy drives an Emax kill (ADCC)
  :math:`e\,k_{max} occ^h/(O_{50}^h + occ^h)` scaled by the tissue's effector-cell factor e
  (``therapy.effector_factor``; 0 in brain parenchyma by default);
- ligand traps (bevacizumab): complex :math:`B_L`, :math:`J = k_{on} a L - k_{off} B_L`, cleared
  at :math:`k_{cl}` and, like free IgG, back to plasma and with the interstitial fluid at
  :math:`((1-w) P_c S_v r_c + w P_t S_v r_t + Q_{isf}) B_L/\phi`; the ligand and the drug lose J;
- mediator traps (denosumab on RANKL of the bone cycle, :mod:`tumorpde.model.bone`): RANKL
  is algebraic there, so the binding is quasi-steady (seconds to minutes at nM drug, against
  the day scale of osteoclasts): the drug contributes :math:`x = a/K_d` and RANKL keeps
  :math:`1/(1 + \sum_j x_j)`, i.e. :math:`1 - \theta` with :math:`\theta = a/(a + K_d)` for
  one drug; the drug is not depleted (pM RANKL against nM drug); needs ``[bone]``;
- dynamic vessels (``[angiogenesis]``, :mod:`tumorpde.model.vessels`): both exchange terms are
  multiplied by the relative vessel density m, the lesion term also by the VEGF permeability
  factor, so anti-VEGF therapy changes the delivery of every drug;
- kinase inhibitors (lapatinib, crizotinib, galunisertib): no binding species; each target
  receives the competitive term :math:`x_j = (a_j/IC_{50,j})^{h}` (modifier, free drug a),
  which the target pathway combines Loewe-additively with the other inhibitors on it.

Combination regimens therefore act through distinct mechanisms (receptor removal, kinase block,
ligand sequestration, ADCC) that multiply, never through two empirical Emax terms on one target.
The plasma level of a step is its exact mean over a backward-Euler step (the first step and
every step after a dose) and its value at :math:`t_{n+1}` on a BDF2 step
(:meth:`tumorpde.fem.forms.Forms.set_time`); dose starts and infusion ends are step
breakpoints; tissue exposure (AUC) is accumulated per region.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import ufl
from ufl.core.expr import Expr

from tumorpde.library.drugs import MEDIATORS, DrugSpec, Treatment
from tumorpde.library.pk import PlasmaPK, schedule
from tumorpde.model import laws
from tumorpde.model.base import CellField, Component, Context, Initial, QoI, global_value
from tumorpde.model.species import FieldNames, Species

if TYPE_CHECKING:
    from tumorpde.config import CaseConfig

__all__ = ["Drug", "PlasmaLevel", "lesion_z"]

N = FieldNames


class Drug(Component):
    """One treatment of ``[therapy]``.

    Args:
        cfg: The case (for the patient, the end time, the vessels and the target pathway).
        treatment: The treatment (drug and regimen).
    """

    def __init__(self, cfg: CaseConfig, treatment: Treatment) -> None:
        assert cfg.therapy is not None
        th = cfg.therapy
        self.spec: DrugSpec = treatment.spec
        self.name = self.spec.name
        self.mechanism = self.spec.mechanism
        self.target = self.spec.targets[0]
        doses = schedule(treatment.regimen, th.patient, cfg.time.t_end)
        self.plasma = PlasmaPK(self.spec.pk, doses, self.spec.molecular_weight)
        #: An algebraic mediator (RANKL of the bone cycle) instead of a pathway's ligand.
        self.mediator = self.target in MEDIATORS
        if self.mediator:
            if cfg.bone is None:
                from tumorpde.config import ConfigError

                raise ConfigError(
                    cfg.name,
                    [
                        (
                            "therapy.treatments",
                            f"{self.name}: neutralizes {self.target} of the bone vicious cycle, "
                            "which needs [bone] in the case",
                        )
                    ],
                )
            self.target_ligand: str | None = None
            self.target_internalized = False
        else:
            target = cfg.pathways[self.target]
            self.target_ligand = target.ligand.name if target.ligand is not None else None
            self.target_internalized = target.ligand is not None and target.receptor.internalized
        self.lesion_z = lesion_z(th.lesion_seed, th.lesion_leakiness)
        self.vessel_weight = th.tumor_permeability_weight
        self.lesion_density = th.lesion_density
        self.fields = self._exchange_fields(cfg) + self._response_fields(cfg)
        self.kept_signal = self.bound_signal(cfg) if self.mechanism == "receptor_antibody" else 0.0

    def _regional(self, cfg: CaseConfig, values: Callable[[str, float, float], dict[str, float]]):
        """Per-key CellFields from ``values(barrier, S_v, Q_isf)`` of the case and its regions."""
        v = cfg.vessels
        default = values(
            v.barrier,
            global_value(cfg, "vessels.surface_density"),
            global_value(cfg, "vessels.interstitial_clearance"),
        )
        keys = ("vessels.barrier", "vessels.surface_density", "vessels.interstitial_clearance")
        regional: dict[str, dict[str, float]] = {}
        for region, vals in cfg.regions.items():
            if any(k in vals for k in keys):
                regional[region] = values(
                    str(vals.get("vessels.barrier", v.barrier)),
                    float(vals.get("vessels.surface_density", v.surface_density)),
                    float(vals.get("vessels.interstitial_clearance", v.interstitial_clearance)),
                )
        return [
            CellField(f"{self.name}.{k}", default[k], {r: val[k] for r, val in regional.items()})
            for k in default
        ]

    def _exchange_fields(self, cfg: CaseConfig) -> list[CellField]:
        """Exchange coefficients by region: P_c S_v, P_c S_v r_c, P_t S_v, P_t S_v r_t, Q_isf.

        P_c, r_c: the region's vessel class (``vessels.barrier``; the efflux ratio only at the
        blood-brain barrier); P_t, r_t: the lesion's vessels (peripheral tumor vessels, or this
        lesion's blood-tumor barrier where the class is ``brain``). Each is one cell-wise field
        so that every exchange term is linear in one cell-wise coefficient (the pointwise
        assembler averages them to the nodes exactly).
        """
        perm = self.spec.permeability
        by_class = perm.by_class()
        p_btb, r_btb = perm.lesion_btb(self.lesion_z)

        def values(barrier: str, sv: float, q: float) -> dict[str, float]:
            p = by_class[barrier]
            brain = barrier == "brain"
            r = perm.brain_efflux_ratio if brain else 1.0
            pt, rt = (p_btb, r_btb) if brain else (perm.tumor, 1.0)
            return {"PS": p * sv, "PSr": p * sv * r, "PtS": pt * sv, "PtSr": pt * sv * rt, "Q": q}

        return self._regional(cfg, values)

    def _response_fields(self, cfg: CaseConfig) -> list[CellField]:
        """Antibodies: the effector-cell factor by region (ADCC)."""
        if self.mechanism != "receptor_antibody":
            return []
        th = cfg.therapy
        assert th is not None

        def values(barrier: str, _sv: float, _q: float) -> dict[str, float]:
            e = th.effector_factor
            return {"effector": (0.0 if barrier == "brain" else 1.0) if e is None else e}

        return self._regional(cfg, values)

    def bound_signal(self, cfg: CaseConfig) -> float:
        """Signal fraction a bound receptor keeps: 1 - signal_block (1 - HER3 bypass).

        One value per case (the case-wide vessel class picks the bypass default), because it
        enters the signal's Hill function nonlinearly and a cell-wise coefficient must enter
        linearly (:mod:`tumorpde.fem.pointwise`).
        """
        th = cfg.therapy
        assert th is not None
        block = self.spec.response.signal_block if self.spec.response is not None else 1.0
        b = th.her3_bypass
        if b is None:
            b = BRAIN_BYPASS if cfg.vessels.barrier == "brain" else PERIPHERAL_BYPASS
        return 1.0 - block * (1.0 - b)

    # ------------------------------------------------------------------ declarations
    def species(self) -> Sequence[Species]:
        """Free drug, and the drug-receptor or drug-ligand complex."""
        out = [Species(N.drug(self.name), "pde", "nM", "drug", self.target)]
        if self.mechanism == "receptor_antibody":
            out.append(
                Species(N.drug_bound(self.name), "ode", "nM at u = 1", "drug_receptor", self.target)
            )
        elif self.mechanism == "ligand_trap" and not self.mediator:
            out.append(Species(N.drug_complex(self.name), "ode", "nM", "drug_ligand", self.target))
        return out

    def initial(self) -> Mapping[str, Initial]:
        """No drug at t = 0."""
        return {s.name: 0.0 for s in self.species()}

    def time_constants(self) -> Mapping[str, Callable[[float], float]]:
        """Plasma concentration (nM) at t, with its exact step mean (``.mean(t0, t1)``)."""
        return {self._plasma_key: PlasmaLevel(self.plasma)}

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
        a = ctx.f(N.drug(self.name)) / spec.available_volume_fraction  # free interstitial
        return laws.binding_rate(a, partner, complex_, spec.binding.k_on, spec.binding.k_off)

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
        if self.mediator:
            mod.neutralized.setdefault(self.target, []).append(self.neutralizing_term(ctx))
        elif self.mechanism == "kinase_inhibitor":
            a = ufl.max_value(ctx.f(N.drug(self.name)), 0.0) / spec.available_volume_fraction
            for target, pot in spec.potency.items():
                if target not in spec.targets:
                    continue
                mod.block_kinase(target, (a / pot.ic50) ** pot.hill, pot.imax)
        elif self.mechanism == "receptor_antibody":
            p = self.target
            B = ctx.f(N.drug_bound(self.name))
            mod.remove_receptor(p, self._binding(ctx, ctx.f(N.receptor(p)), B))
            mod.add_receptor_state(p, B)
            if self.target_ligand is None:  # ligand-less target: partial block of its signal
                kept = self.kept_signal * B
                mod.signaling_receptor.setdefault(p, []).append(kept)
            # kill_max = 0 (no ADCC): no kill term, since UFL folds 0 * hill(...) into a
            # mesh-less Zero that cannot be interpolated into the kill-rate output field
            if spec.response is not None and spec.response.kill_max > 0:
                r = spec.response
                occ = self.occupancy(ctx)
                mod.kill.append(
                    ctx.coef(f"{self.name}.effector")
                    * r.kill_max
                    * laws.hill(occ, r.half_occupancy, r.hill)
                )

    def terms(self, ctx: Context) -> None:
        """Transport, vascular exchange, clearance and binding of the drug."""
        spec = self.spec
        u = ctx.f(N.tumor)
        A = ctx.f(N.drug(self.name))
        # (1 - w) P_c S_v (f_u C_pl - r_c a) + w P_t S_v (f_u C_pl - r_t a) - Q_isf a, each term
        # with one cell-wise coefficient (PS = P_c S_v, PSr = P_c S_v r_c, PtS, PtSr, Q)
        e = {k: ctx.coef(f"{self.name}.{k}") for k in ("PS", "PSr", "PtS", "PtSr", "Q")}
        cp = spec.plasma_unbound_fraction * ctx.const(self._plasma_key)
        a_phi = A / spec.available_volume_fraction
        w = self.lesion_weight(u)
        # dynamic vessels ([angiogenesis]): both vessel classes scale with the relative density
        # m, the lesion's permeability with the VEGF factor (tumorpde.model.vessels)
        host, lesion = 1 - w, w
        if ctx.mod.permeability is not None:
            lesion = lesion * ctx.mod.permeability
        if ctx.mod.vessels is not None:
            host, lesion = host * ctx.mod.vessels, lesion * ctx.mod.vessels
        exchange = host * (e["PS"] * cp - e["PSr"] * a_phi) + lesion * (
            e["PtS"] * cp - e["PtSr"] * a_phi
        )
        ctx.flux[N.drug(self.name)] = laws.diffusive_flux(A, spec.diffusivity)
        ctx.add(N.drug(self.name), exchange - e["Q"] * a_phi - spec.tissue_clearance * A)
        if self.mechanism == "receptor_antibody":
            assert spec.binding is not None
            B = ctx.f(N.drug_bound(self.name))
            J = self._binding(ctx, ctx.f(N.receptor(self.target)), B)
            k_int = spec.binding.internalization or 0.0
            ctx.add(N.drug(self.name), -u * J)
            # per-cell B is diluted by proliferation (- g B): daughters share the bound drug
            ctx.add(N.drug_bound(self.name), J - k_int * B - ctx.rates["birth"] * B)
        elif self.mechanism == "ligand_trap" and not self.mediator:
            assert self.target_ligand is not None
            L = ctx.f(self.target_ligand)
            Bl = ctx.f(N.drug_complex(self.name))
            J = self._binding(ctx, L, Bl)
            ctx.add(N.drug(self.name), -J)
            ctx.add(self.target_ligand, -J)
            # the IgG-ligand complex leaves the tissue as free IgG does: back to plasma across
            # the vessels (no return: plasma complex neglected) and with the interstitial fluid
            b_phi = Bl / spec.available_volume_fraction
            exit_ = (host * e["PSr"] + lesion * e["PtSr"] + e["Q"]) * b_phi
            ctx.add(N.drug_complex(self.name), J - spec.tissue_clearance * Bl - exit_)
            ctx.add_balance(self.target_ligand, "trap", J)

    def neutralizing_term(self, ctx: Context) -> Expr:
        r"""Quasi-steady term :math:`x = a/K_d` of a mediator trap (free drug a, nM).

        The mediator (RANKL) is algebraic in :mod:`tumorpde.model.bone`, so its binding is
        taken at equilibrium: the bound share is :math:`\theta = x/(1 + x) = a/(a + K_d)` and
        the mediator keeps :math:`1 - \theta`. Binding relaxes at :math:`k_{on} a + k_{off}`,
        seconds to minutes at nM drug, far faster than the day scale of osteoclasts. The
        drug is not depleted by binding (RANKL is pM against nM-to-uM drug in tissue).
        """
        assert self.spec.binding is not None
        a = ufl.max_value(ctx.f(N.drug(self.name)), 0.0) / self.spec.available_volume_fraction
        return a / self.spec.binding.kd_nM

    def lesion_weight(self, u: Expr) -> Expr:
        """Share of the vessels that are the lesion's: min(1, u/u_L), or u ("density")."""
        if self.vessel_weight == "density":
            return u
        return ufl.min_value(ufl.max_value(u, 0.0) / self.lesion_density, 1.0)

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
            a = ctx.f(N.drug(self.name)) / self.spec.available_volume_fraction
            for pot in self.spec.potency.values():
                term = pot.imax * laws.hill(a, pot.ic50, max(pot.hill, 1.0))
                x = term if x is None else ufl.max_value(x, term)
            assert x is not None
            return {self.effect: x}
        if self.mediator:
            x = self.neutralizing_term(ctx)
            return {self.effect: x / (1 + x)}
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


#: HER3/neuregulin bypass share of the HER2 signal by tissue when the case gives none.
#: Assumptions (confidence D): brain parenchyma is rich in neuregulin, which activates HER3 in
#: brain metastases (Kodack et al. 2017 Sci Transl Med 9:eaal4682); peripheral tissue low.
BRAIN_BYPASS = 0.5
PERIPHERAL_BYPASS = 0.1


def lesion_z(seed: int, given: float | None = None) -> float:
    """The lesion's leakiness z-score: ``given``, or one standard-normal draw from ``seed``.

    Deterministic per seed (NumPy PCG64), identical on every rank.
    """
    if given is not None:
        return float(given)
    return float(np.random.default_rng(seed).standard_normal())


class PlasmaLevel:
    """Plasma concentration (nM) of a drug: point value ``(t)`` and exact mean ``.mean(t0, t1)``.

    Args:
        pk: The plasma PK curve.
    """

    def __init__(self, pk: PlasmaPK) -> None:
        self.pk = pk

    def __call__(self, t: float) -> float:
        """Concentration (nM) at ``t`` (h)."""
        return float(self.pk.concentration_nM(t))

    def mean(self, t0: float, t1: float) -> float:
        """Mean concentration (nM) over ``[t0, t1]`` (exact AUC / duration)."""
        return self.pk.mean_concentration_nM(t0, t1)

r"""Pathway component: a growth-factor ligand, its receptor states and the downstream signal.

- ligand (if any): :math:`\partial_t L = \nabla\cdot(D_L(x)\nabla L) + s_t u + s_h h(O) u
  + (1-u)\,s_s(x) + \sum(\text{sources}) - [(1-u)\,k_d(x) + u\,k_{d,0}]\,L - u J - J_{ecm}`.
  Host ("soil") terms are weighted by the host fraction 1 - u, because tumor cells displace
  the host tissue: stromal secretion :math:`s_s(x)` (hepatocytes, stellate cells, fibroblasts
  of the region) and the region's clearance (hepatic HGF uptake). The ligand's generic
  interstitial decay :math:`k_{d,0}` (the case-wide ``ligand.decay_rate``) acts in the tumor
  too, so inside a lesion (u = 1) the decay is :math:`k_{d,0}` in every region and there is no
  stromal source; at u = 0 nothing changes. Where a region keeps the case-wide rate,
  :math:`k_d(x) = k_{d,0}` and the decay is unchanged. Tumor-associated stroma (CAF) sources are
  not modelled;
- receptor states per cell R, C, I: Lauffenburger-Linderman trafficking
  (:func:`tumorpde.model.laws.trafficking`), minus the receptor losses others leave (drugs),
  plus dilution by proliferation: a per-cell state X of a population that grows by g u
  (g the per-cell birth rate, published by the tumor) obeys
  :math:`\dot X = f(X) - g X`, so that the tissue amount uX changes only by uf(X), death and
  cell motion (:math:`\partial_t(uX) = u\dot X + X\partial_t u`); newborn cells make free
  receptor, :math:`+g R_0`, which keeps the ligand-free steady state at :math:`R_0`. Without
  the correction, growth created bound ligand (and bound drug) that no free ligand paid for;
- signal: :math:`\partial_t S = k_S(\mathrm{Hill}(\theta)\,B - S)` with occupancy
  :math:`\theta = (C+I)/(R+C+I+\sum B_{drug})` (or :math:`R/R_0` without a ligand) and the
  kinase block :math:`B = 1 - I_{max} x/(1+x)`, :math:`x = \sum_j (A_j/IC_{50,j})^{h_j}`
  (competitive inhibitors on one target combine Loewe-additively);
  (competitive inhibitors on one target combine Loewe-additively); for a ligand-less pathway
  :math:`\theta = (R + \sum_j s_j B_j)/R_0`, a drug-bound receptor keeping the signal
  fraction :math:`s_j` (partial antibody block, :mod:`tumorpde.model.drug`);
- effects on the tumor, left as modifiers: motility gain, chemotaxis, proliferation and
  survival signals, cytostatic growth block of epithelial cells, and
  oncogene addiction (``therapy.addiction``): the death rate
  :math:`k_{add}\max(0, 1 - S/S_{ref})` when the signal falls below its untreated level
  :math:`S_{ref}` (Hill of the drug-free steady occupancy). Cells addicted to an amplified
  oncogene die, not only slow down, when it is blocked (Weinstein 2002 Science 297:63).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from ufl.core.expr import Expr

from tumorpde.model import laws
from tumorpde.model.base import (
    CellField,
    Component,
    Context,
    Initial,
    QoI,
    global_value,
    region_field,
)
from tumorpde.model.species import FieldNames, Species

if TYPE_CHECKING:
    from tumorpde.config import CaseConfig
    from tumorpde.config.schema import PathwayReceptor

__all__ = ["Pathway", "trafficking_steady_state"]

N = FieldNames

#: Receptor rate constants passed to :func:`tumorpde.model.laws.trafficking`.
RATE_KEYS = ("k_on", "k_off", "k_t", "k_e", "k_rec", "k_deg")
#: Per-region parameters of a pathway's ligand.
LIGAND_REGION_KEYS = ("diffusivity", "decay_rate", "stromal_secretion")


class Pathway(Component):
    """One growth-factor pathway of the case.

    Args:
        cfg: The case.
        name: The pathway (a key of ``cfg.pathways``).
    """

    def __init__(self, cfg: CaseConfig, name: str) -> None:
        self.name = name
        self.pw = pw = cfg.pathways[name]
        self.ligand = pw.ligand.name if pw.ligand is not None else None
        self.internalized = pw.ligand is not None and pw.receptor.internalized
        self.signal = pw.signal.enabled
        self.receptor_total = cfg.receptor_total_nM(name)
        self.addiction = cfg.therapy.addiction.get(name, 0.0) if cfg.therapy is not None else 0.0
        key = f"pathways.{name}.ligand.decay_rate"
        self.decay0 = global_value(cfg, key) if pw.ligand is not None else 0.0
        self.fields = (
            [region_field(cfg, f"pathways.{name}.ligand.{k}") for k in LIGAND_REGION_KEYS]
            if pw.ligand is not None
            else []
        )

    # ------------------------------------------------------------------ declarations
    def receptor_states(self) -> list[str]:
        """Names of R, C and I (those the pathway has)."""
        p = self.name
        out = [N.receptor(p)]
        if self.ligand is not None:
            out.append(N.complex(p))
            if self.internalized:
                out.append(N.internal(p))
        return out

    def species(self) -> Sequence[Species]:
        """Ligand (+ matrix-bound), receptor states and signal."""
        p, pw = self.name, self.pw
        out = []
        if self.ligand is not None:
            out.append(Species(self.ligand, "pde", "nM", "ligand", p))
            if pw.ligand is not None and pw.ligand.ecm is not None:
                out.append(Species(N.ecm(self.ligand), "ode", "nM", "ecm", p))
        out.append(Species(N.receptor(p), "ode", "nM at u = 1", "receptor", p))
        if self.ligand is not None:
            out.append(Species(N.complex(p), "ode", "nM at u = 1", "complex", p))
            if self.internalized:
                out.append(Species(N.internal(p), "ode", "nM at u = 1", "internal", p))
        if self.signal:
            out.append(Species(N.signal(p), "ode", "1", "signal", p))
        return out

    def initial(self) -> Mapping[str, Initial]:
        """Receptors at their trafficking steady state (or given occupancy), signal at Hill."""
        p, pw, r_total = self.name, self.pw, self.receptor_total
        rc = pw.receptor
        out: dict[str, Initial] = {}
        theta0 = rc.initial_occupancy if pw.ligand is not None else 0.0
        out[N.receptor(p)] = (1 - theta0) * r_total
        if pw.ligand is not None:
            lig = pw.ligand
            out[lig.name] = lig.initial
            out[N.complex(p)] = theta0 * r_total
            if rc.initial_state == "steady":
                Rs, Cs, Is = trafficking_steady_state(rc, r_total, lig.initial)
                out[N.receptor(p)] = Rs
                out[N.complex(p)] = Cs
                if rc.internalized:
                    out[N.internal(p)] = Is
                theta0 = (Cs + (Is if rc.internalized else 0.0)) / max(
                    Rs + Cs + (Is if rc.internalized else 0.0), 1e-300
                )
            if lig.ecm is not None:  # matrix sites start in equilibrium with L(0)
                e, L0 = lig.ecm, lig.initial
                out[N.ecm(lig.name)] = (
                    e.sites * e.k_on * L0 / (e.k_on * L0 + e.k_off) if e.k_off + L0 > 0 else 0.0
                )
        if self.signal:
            theta = theta0 if pw.ligand is not None else 1.0
            s0 = pw.signal.initial
            if s0 is None:
                s0 = _hill0(theta, pw.signal.half_max, pw.signal.hill)
            out[N.signal(p)] = s0
        return out

    def reference_signal(self) -> float:
        """Untreated signal level: Hill of the drug-free steady occupancy (1 without ligand)."""
        pw = self.pw
        if pw.ligand is None:
            theta = 1.0
        elif pw.receptor.initial_state == "steady":
            Rs, Cs, Is = trafficking_steady_state(
                pw.receptor, self.receptor_total, pw.ligand.initial
            )
            bound = Cs + (Is if pw.receptor.internalized else 0.0)
            theta = bound / max(Rs + bound, 1e-300)
        else:
            theta = pw.receptor.initial_occupancy
        return _hill0(theta, pw.signal.half_max, pw.signal.hill)

    def constants(self) -> Mapping[str, float]:
        """Rate constants, receptor total, signal and effect parameters."""
        p, pw = self.name, self.pw
        r, ef = pw.receptor, pw.effects
        k: dict[str, float] = {f"{p}.{n}": getattr(r, n) for n in RATE_KEYS}
        k[f"{p}.R0"] = self.receptor_total
        k[f"{p}.half_max"] = pw.signal.half_max
        k[f"{p}.signal_rate"] = pw.signal.rate
        k[f"{p}.motility"] = ef.motility
        k[f"{p}.chi"] = ef.chemotaxis
        if ef.chemotaxis_saturation is not None:
            k[f"{p}.chi_sat"] = ef.chemotaxis_saturation
        k[f"{p}.cytostatic"] = ef.cytostatic
        k[f"{p}.emt_rate"] = ef.emt_rate
        if self.addiction > 0 and self.signal:
            k[f"{p}.addiction"] = self.addiction
            k[f"{p}.S_ref"] = max(self.reference_signal(), 1e-12)
        if pw.ligand is not None:
            k[f"{p}.s_tumor"] = pw.ligand.tumor_secretion
            k[f"{p}.s_hypoxic"] = pw.ligand.hypoxic_secretion
            k[f"{p}.decay0"] = self.decay0
            if pw.ligand.ecm is not None:
                k[f"{p}.ecm_sites"] = pw.ligand.ecm.sites
                k[f"{p}.ecm_on"] = pw.ligand.ecm.k_on
                k[f"{p}.ecm_off"] = pw.ligand.ecm.k_off
        return k

    def cell_fields(self) -> Sequence[CellField]:
        """Ligand diffusivity, decay and stromal secretion by region."""
        return self.fields

    @property
    def drives_emt(self) -> bool:
        """True if the signal drives the epithelial-mesenchymal switch."""
        return self.signal and self.pw.effects.emt_rate > 0

    # ------------------------------------------------------------------ equations
    def modifiers(self, ctx: Context) -> None:
        """Signal effects on the tumor: motility, chemotaxis, growth and survival signals."""
        p, ef, c = self.name, self.pw.effects, ctx.const
        mod = ctx.mod
        e = ctx.f(N.emt) if ctx.has(N.emt) else None
        if self.signal:
            S = ctx.f(N.signal(p))
            if ef.motility > 0:
                mod.motility.append(1 + c(f"{p}.motility") * S)
            if ef.proliferation > 0:
                mod.proliferation_signal.append((ef.proliferation, S))
            if ef.survival > 0:
                mod.survival_signal.append((ef.survival, S))
            if ef.cytostatic > 0:
                epithelial = (1 - e) if e is not None else 1.0
                mod.growth.append(1 - c(f"{p}.cytostatic") * S * epithelial)
            if self.addiction > 0:
                mod.death.append(laws.addiction_death(S, c(f"{p}.S_ref"), c(f"{p}.addiction")))
        if self.ligand is not None and ef.chemotaxis > 0:
            sat = c(f"{p}.chi_sat") if ef.chemotaxis_saturation is not None else None
            mod.chemotaxis.append(
                laws.saturating_chemotactic_flux(
                    ctx.f(N.tumor), ctx.f(self.ligand), c(f"{p}.chi"), sat
                )
            )

    def terms(self, ctx: Context) -> None:
        """Trafficking, ligand transport and balance, signal relaxation."""
        p, pw, c, mod = self.name, self.pw, ctx.const, ctx.mod
        u = ctx.f(N.tumor)
        k = {n: c(f"{p}.{n}") for n in RATE_KEYS}
        R0 = c(f"{p}.R0")
        L = ctx.f(self.ligand) if self.ligand is not None else None
        R = ctx.f(N.receptor(p))
        C = ctx.f(N.complex(p)) if self.ligand is not None else None
        internal = ctx.f(N.internal(p)) if self.internalized else None
        dR, dC, dI, J = laws.trafficking(L, R, C, internal, R0, k)
        # dilution by proliferation: per-cell states lose g X, newborn cells make receptors
        g = ctx.rates["birth"]
        dR = dR + g * (R0 - R)
        dC = dC - g * C if dC is not None and C is not None else dC
        dI = dI - g * internal if dI is not None and internal is not None else dI
        for loss in mod.receptor_loss.get(p, []):
            dR = dR - loss
        ctx.add(N.receptor(p), dR)
        if dC is not None:  # not None exactly when C is (a ligand)
            ctx.add(N.complex(p), dC)
        if dI is not None:  # not None exactly when internal is (internalized implies a ligand)
            ctx.add(N.internal(p), dI)
        if self.ligand is not None and pw.ligand is not None:
            assert L is not None
            key = f"pathways.{p}.ligand"
            ctx.flux[self.ligand] = laws.diffusive_flux(L, ctx.coef(f"{key}.diffusivity"))
            host = 1 - u  # host-tissue fraction: tumor cells displace the host's soil terms
            prod = c(f"{p}.s_tumor") * u + host * ctx.coef(f"{key}.stromal_secretion")
            if pw.ligand.hypoxic_secretion > 0:
                assert mod.hypoxia is not None
                prod = prod + c(f"{p}.s_hypoxic") * mod.hypoxia * u
            for source in mod.ligand_source.get(p, []):
                prod = prod + source
            decay = (host * ctx.coef(f"{key}.decay_rate") + u * c(f"{p}.decay0")) * L
            binding = laws.ligand_sink(u, J)
            ctx.add(self.ligand, prod - decay - binding)
            for name, term in (("production", prod), ("decay", decay), ("binding", binding)):
                ctx.add_balance(self.ligand, name, term)
            if pw.ligand.ecm is not None:
                E = ctx.f(N.ecm(self.ligand))
                jecm = laws.ecm_binding(
                    L, E, c(f"{p}.ecm_sites"), c(f"{p}.ecm_on"), c(f"{p}.ecm_off")
                )
                ctx.add(self.ligand, -jecm)
                ctx.add(N.ecm(self.ligand), jecm)
                ctx.add_balance(self.ligand, "matrix", jecm)
        if self.signal:
            if C is not None:
                bound = C + internal if internal is not None else C
                theta = laws.occupancy(sum(mod.extra_receptor.get(p, []), R), bound)
            else:
                theta = sum(mod.signaling_receptor.get(p, []), R) / R0
            drive = laws.hill(theta, c(f"{p}.half_max"), pw.signal.hill)
            block = _kinase_block(mod.kinase.get(p, []))
            if block is not None:
                drive = drive * (1 - block)
            S = ctx.f(N.signal(p))
            ctx.add(N.signal(p), laws.signal_relaxation(S, drive, c(f"{p}.signal_rate")))

    # ------------------------------------------------------------------ outputs
    def bound(self, ctx: Context) -> Expr:
        """Ligand-bound receptor C + I."""
        p = self.name
        C = ctx.f(N.complex(p))
        return C + ctx.f(N.internal(p)) if self.internalized else C

    def qois(self, ctx: Context) -> Sequence[QoI]:
        """Mean ligand, cell-weighted occupancy (or relative receptor), mean signal."""
        p = self.name
        u = ctx.f(N.tumor)
        out = []
        if self.ligand is not None:
            out.append(QoI(f"mean_{self.ligand}_nM", ctx.f(self.ligand), ctx.const("one")))
            bound = self.bound(ctx)
            R = ctx.f(N.receptor(p))
            out.append(QoI(f"occupancy_{p}", u * bound, u * (R + bound)))
        else:
            out.append(QoI(f"relative_{p}", u * ctx.f(N.receptor(p)), u * ctx.const(f"{p}.R0")))
        if self.signal:
            out.append(QoI(f"signal_{p}", u * ctx.f(N.signal(p)), u))
        return out

    def derived_names(self) -> Sequence[str]:
        """Receptor occupancy (ligand pathways)."""
        return [N.occupancy(self.name)] if self.ligand is not None else []

    def derived(self, ctx: Context) -> Mapping[str, Expr]:
        """Receptor occupancy (C + I)/(R + C + I), 0 where there is no receptor."""
        if self.ligand is None:
            return {}
        import ufl

        bound = self.bound(ctx)
        total = ctx.f(N.receptor(self.name)) + bound
        return {N.occupancy(self.name): ufl.conditional(ufl.gt(total, 0), bound / total, 0.0)}


def _kinase_block(terms: Sequence[tuple[Expr, float]]) -> Expr | None:
    r"""Loewe-additive competitive block :math:`I_{max} x/(1+x)`, :math:`x = \sum x_j`."""
    if not terms:
        return None
    x = terms[0][0]
    for xj, _ in terms[1:]:
        x = x + xj
    imax = max(0.0, *(im for _, im in terms))
    return imax * x / (1 + x)


def trafficking_steady_state(
    rc: PathwayReceptor, r_total: float, ligand: float
) -> tuple[float, float, float]:
    r"""Receptor states at steady state for a constant ligand level (Lauffenburger-Linderman).

    :math:`R_s = k_t R_0 / (k_t + k_{on} L k_e (1-\varphi)/(k_{off}+k_e))`,
    :math:`C_s = k_{on} L R_s/(k_{off}+k_e)`, :math:`I_s = k_e C_s/(k_{rec}+k_{deg})` with the
    recycled fraction :math:`\varphi = k_{rec}/(k_{rec}+k_{deg})` (0 without an internal pool).
    Without synthesis (k_t = 0) the free-receptor start is kept: there is no unique steady state.
    """
    if rc.k_t <= 0 or ligand <= 0:
        return r_total, 0.0, 0.0
    phi = rc.k_rec / (rc.k_rec + rc.k_deg) if rc.internalized and rc.k_rec + rc.k_deg > 0 else 0.0
    if rc.internalized and rc.k_rec + rc.k_deg <= 0 and rc.k_e > 0:
        return r_total, 0.0, 0.0  # internalized receptors accumulate forever: no steady state
    den = rc.k_off + rc.k_e
    Rs = rc.k_t * r_total / (rc.k_t + rc.k_on * ligand * rc.k_e * (1 - phi) / den)
    Cs = rc.k_on * ligand * Rs / den
    Is = rc.k_e * Cs / (rc.k_rec + rc.k_deg) if rc.internalized and rc.k_e > 0 else 0.0
    return Rs, Cs, Is


def _hill0(x: float, half: float, n: float) -> float:
    x = max(x, 0.0)
    return x**n / (half**n + x**n)

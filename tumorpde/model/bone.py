r"""Bone component: the TGF-:math:`\beta` vicious cycle of osteolytic bone metastases.

The chain, explicit (Mundy 2002, Nat. Rev. Cancer 2:584-593):

.. math::

    P &= u_+\,\bigl(p_b + (1 - p_b)\,S_p\bigr)
        &&\text{tumor PTHrP, driven by the TGF-}\beta\text{ signal (Yin et al. 1999)}\\
    R &= \frac{(1 + K_R)\,P}{K_R + P}\,(1 - \theta)
        &&\text{RANKL induction in osteoblasts/stroma (Thomas et al. 1999)}\\
    \partial_t OC &= b(x) + a(x)\,R - k_{OC}\,OC
        &&\text{osteoclast activity (Lacey et al. 1998; Manolagas 2000)}\\
    \partial_t M &= -k_{res}\,\max(OC - b/k_{OC}, 0)\,M
        &&\text{mineralized matrix, uncoupled resorption (Phadke et al. 2006)}

and the pathway's ligand (active TGF-:math:`\beta`) gains the matrix release

.. math::

    s_{bone} = c_M\,\bigl(k_{turn}(x) + k_{res}\max(OC - b/k_{OC}, 0)\bigr)\,M + r(x)\,OC

(latent TGF-:math:`\beta` stored in the matrix, released by resorption and activated by
osteoclasts: Pfeilschifter et al. 1998; Oreffo et al. 1989). ``P`` is in units of a packed,
fully signalling tumor (``P = 1`` at ``u = S = 1``, where ``R = 1``); ``OC = b/k_OC`` is normal
remodelling (``OC = 1`` in the bone profile), at which resorption and formation balance: the
matrix only turns over (``k_turn``) and releases its TGF-:math:`\beta`. Above normal the
tumor-driven excess resorbs matrix without matching formation (osteoblasts are suppressed in
osteolytic lesions, Phadke et al. 2006). Because ``P`` needs tumor cells and resorption needs
matrix, bone is lost only where the tumor meets bone. ``PTHrP``, ``RANKL`` and the release are
algebraic (quasi-steady on the day scale of OC) and written as derived fields.

Therapy acts on two links. TGF-:math:`\beta` inhibitors (galunisertib) lower ``S``. Anti-RANKL
drugs (denosumab, ``targets = ["RANKL"]``, :mod:`tumorpde.model.drug`) neutralize RANKL: it
keeps the free share :math:`1 - \theta`, :math:`\theta = a/(a + K_d)` with the free tissue
drug ``a`` (:func:`rankl_free_share`; several drugs: :math:`1/(1 + \sum_j a_j/K_{d,j})`). The
binding is taken quasi-steady, as RANKL itself: at nM drug it relaxes in seconds to minutes
(:math:`k_{on} a + k_{off}`), against days for OC; the pM ligand does not deplete the drug.
The basal term ``b`` (normal remodelling) is not RANKL-driven here, so a complete block returns
OC to normal, not below it (denosumab also lowers normal turnover in patients: not modelled).

Why TGF-:math:`\beta` inhibition reduces osteolysis little in this model (validation row
"galunisertib", Biswas et al. 2011: 93 % less osteolytic lesion area with the antibody 1D11;
model 7 %; measured with ``benchmarks/validation/bone.py`` and its ``--scan``): every link
passes on only part of the signal's fall. At 150 mg BID the free tissue drug (~63 nM against
the assumed cellular IC50 100 nM, a 38 % kinase block) lowers the lesion signal 0.456 -> 0.279
(-39 %); the TGF-:math:`\beta`-independent PTHrP share ``p_b = 0.3`` halves that (PTHrP
-20 %), the RANKL saturation ``K = 0.5`` halves it again (RANKL and excess OC -10 %), and the
resorbed volume at 50 % resorption falls by 7 %. A saturating block leaves ``p_b``: 24 %. Both
``p_b`` and ``K`` are unsourced assumptions (Yin et al. 1999 is qualitative; no PTHrP data with
and without TGF-:math:`\beta` signalling were found): recalibrated to the same untreated
resorption, ``p_b = 0`` gives 19 % (saturating 96 %), ``K = 5`` 13 % (39 %), both 29 %
(97 %), so exposure limits galunisertib even then. And the model lacks the growth factors that
resorption releases from the matrix to feed the tumor (IGF-I and others; Hauschka et al. 1986),
so TGF-:math:`\beta` or RANKL blockade leaves the tumor burden unchanged here, whereas the
X-ray lesion area of Biswas falls with the (smaller) burden too: at 7 % less resorption per
burden the area would fall 93 % only if the burden fell ~92 %.

References:
    Yin JJ et al. TGF-beta signaling blockade inhibits PTHrP secretion by breast cancer cells
    and bone metastases development. J Clin Invest 103:197-206 (1999).
    Thomas RJ et al. Breast cancer cells interact with osteoblasts to support osteoclast
    formation. Endocrinology 140:4451-4458 (1999).
    Lacey DL et al. Osteoprotegerin ligand is a cytokine that regulates osteoclast
    differentiation and activation. Cell 93:165-176 (1998).
    Manolagas SC. Birth and death of bone cells. Endocr Rev 21:115-137 (2000).
    Phadke PA et al. Kinetics of metastatic breast cancer cell trafficking in bone. Clin Cancer
    Res 12:1431-1440 (2006).
    Pfeilschifter J et al. Concentration of transforming growth factor beta in human bone
    tissue. J Bone Miner Res 13:716-730 (1998).
    Oreffo ROC et al. Activation of the bone-derived latent TGF beta complex by isolated
    osteoclasts. Biochem Biophys Res Commun 158:817-823 (1989).
    Kostenuik PJ et al. Denosumab, a fully human monoclonal antibody to RANKL, inhibits bone
    resorption and increases BMD in knock-in mice that express chimeric (murine/human) RANKL.
    J Bone Miner Res 24:182-195 (2009).
    Hauschka PV et al. Growth factors in bone matrix: isolation of multiple types by affinity
    chromatography on heparin-Sepharose. J Biol Chem 261:12665-12674 (1986).
    Biswas S et al. Anti-transforming growth factor beta antibody treatment rescues bone loss
    and prevents breast cancer metastasis to bone. PLoS One 6:e27090 (2011).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import ufl
from ufl.core.expr import Expr

from tumorpde.model.base import (
    CellField,
    Component,
    Context,
    Initial,
    InitialSum,
    QoI,
    RegionInitial,
    region_field,
)
from tumorpde.model.species import FieldNames, Species

if TYPE_CHECKING:
    from tumorpde.config import CaseConfig

__all__ = [
    "LESION_DENSITY",
    "Bone",
    "matrix_resorption",
    "osteoclast_rate",
    "pthrp_secretion",
    "rankl_free_share",
    "rankl_induction",
]

N = FieldNames

#: Tumor density above which a node counts as lesion (lesion-mean QoIs).
LESION_DENSITY = 0.1

#: Per-region parameters of the module (``bone.<key>``).
REGION_KEYS = ("basal", "activation", "matrix_release", "turnover", "matrix_fraction")


# ------------------------------------------------------------------------------------ laws
def pthrp_secretion(u: Expr, signal: Expr, basal_share: Expr) -> Expr:
    r"""Tumor PTHrP :math:`P = u_+ (p_b + (1 - p_b) S)` (units of a packed, signalling tumor).

    TGF-:math:`\beta` signaling in MDA-MB-231 cells drives their PTHrP secretion, and its
    blockade (dominant-negative TbRII) lowers PTHrP and osteolysis (Yin et al. 1999, J Clin
    Invest 103:197-206); :math:`p_b` is the TGF-:math:`\beta`-independent share.
    """
    return ufl.max_value(u, 0.0) * (basal_share + (1 - basal_share) * signal)


def rankl_induction(pthrp: Expr, half: Expr) -> Expr:
    r"""Quasi-steady RANKL induction :math:`R = (1 + K) P / (K + P)` (1 at :math:`P = 1`).

    Tumor PTHrP induces RANKL in osteoblasts and marrow stroma (Thomas et al. 1999,
    Endocrinology 140:4451-4458); the saturating (Michaelis-Menten) form is an assumption.
    """
    p = ufl.max_value(pthrp, 0.0)
    return (1 + half) * p / (half + p)


def rankl_free_share(x: Expr) -> Expr:
    r"""Free share of RANKL next to neutralizing drugs, :math:`1/(1 + \sum_j a_j/K_{d,j})`.

    Quasi-steady competitive binding (drug in excess of the pM ligand): one drug with free
    level :math:`a` leaves :math:`1 - \theta`, :math:`\theta = a/(a + K_d)`. Denosumab
    binds human RANKL with :math:`K_d \approx 3` pM and blocks its binding to RANK (Kostenuik
    et al. 2009, J Bone Miner Res 24:182-195).
    """
    return 1 / (1 + x)


def osteoclast_rate(oc: Expr, rankl: Expr, basal: Expr, act: Expr, decay: Expr) -> Expr:
    r"""Osteoclast activity :math:`b + a R - k_{OC} OC` (1/h).

    RANKL is the osteoclast differentiation and activation factor (Lacey et al. 1998, Cell
    93:165-176); osteoclasts live ~2 weeks (Manolagas 2000, Endocr Rev 21:115-137).
    """
    return basal + act * rankl - decay * oc


def matrix_resorption(matrix: Expr, excess: Expr, rate: Expr) -> Expr:
    r"""Net (uncoupled) matrix loss :math:`k_{res}\,\max(OC - OC_n, 0)\,M` (1/h).

    Resorption above normal remodelling is not matched by formation: osteoblasts fall to ~8 %
    of control in MDA-MB-435 bone lesions at 4-6 weeks (Phadke et al. 2006, Clin Cancer Res
    12:1431-1440).
    """
    return rate * excess * matrix


# ------------------------------------------------------------------------------------ component
class Bone(Component):
    """The vicious cycle (needs ``[bone]`` and its pathway's signal)."""

    name = "bone"

    def __init__(self, cfg: CaseConfig) -> None:
        assert cfg.bone is not None
        self.cfg = cfg.bone
        self.pathway = cfg.bone.pathway
        key = "bone.matrix_fraction"
        bad = [
            (f"regions.{r}.{key}", f"must be a volume fraction in [0, 1] (got {v[key]:g})")
            for r, v in cfg.regions.items()
            if key in v and not 0.0 <= float(v[key]) <= 1.0
        ]
        if bad:
            from tumorpde.config import ConfigError

            raise ConfigError(cfg.name, bad)
        self.fields = [region_field(cfg, f"bone.{k}") for k in REGION_KEYS]
        self.matrix0 = self.fields[REGION_KEYS.index("matrix_fraction")]
        pw = cfg.pathways.get(self.pathway)
        lig = getattr(pw, "ligand", None) if pw is not None else None
        self.ligand: str | None = getattr(lig, "name", None)

    def species(self) -> Sequence[Species]:
        """Osteoclast activity and the mineralized-matrix volume fraction."""
        return [
            Species(N.osteoclast, "ode", "1 (activity)", "osteoclast"),
            Species(N.bone_matrix, "ode", "1 (volume fraction)", "bone_matrix"),
        ]

    def initial(self) -> Mapping[str, Initial]:
        """OC at the basal steady state basal/decay; M at the region's matrix fraction."""
        m0 = self.matrix0
        parts: list[Initial] = [float(m0.default)]
        parts += [RegionInitial(r, float(v) - m0.default) for r, v in m0.by_region.items()]
        matrix: Initial = InitialSum(tuple(parts)) if len(parts) > 1 else parts[0]
        return {N.osteoclast: self.cfg.basal / self.cfg.decay, N.bone_matrix: matrix}

    def constants(self) -> Mapping[str, float]:
        """Decay, PTHrP and RANKL constants, resorption rate and matrix ligand content."""
        b = self.cfg
        return {
            "bone.decay": b.decay,
            "bone.pthrp_basal": b.pthrp_basal,
            "bone.rankl_half": b.rankl_half,
            "bone.resorption_rate": b.resorption_rate,
            "bone.matrix_tgf": b.matrix_tgf,
        }

    def cell_fields(self) -> Sequence[CellField]:
        """Basal rate, activation, extra release, turnover and initial matrix by region."""
        return self.fields

    def chain(self, ctx: Context) -> dict[str, Expr]:
        """The cycle's algebraic links: PTHrP, RANKL, excess OC, resorption, release."""
        oc, m = ctx.f(N.osteoclast), ctx.f(N.bone_matrix)
        p = pthrp_secretion(
            ctx.f(N.tumor), ctx.f(N.signal(self.pathway)), ctx.const("bone.pthrp_basal")
        )
        r = rankl_induction(p, ctx.const("bone.rankl_half"))
        blockers = ctx.mod.neutralized.get("RANKL", [])
        if blockers:  # anti-RANKL drugs (denosumab): the free, signalling share of RANKL
            r = r * rankl_free_share(sum(blockers[1:], blockers[0]))
        excess = ufl.max_value(oc - ctx.coef("bone.basal") / ctx.const("bone.decay"), 0.0)
        resorb = matrix_resorption(m, excess, ctx.const("bone.resorption_rate"))
        release = (
            ctx.const("bone.matrix_tgf") * (ctx.coef("bone.turnover") * m + resorb)
            + ctx.coef("bone.matrix_release") * oc
        )
        return {"pthrp": p, "rankl": r, "resorption": resorb, "release": release}

    def modifiers(self, ctx: Context) -> None:
        """Matrix release into the pathway's ligand."""
        ctx.mod.add_ligand_source(self.pathway, self.chain(ctx)["release"])

    def terms(self, ctx: Context) -> None:
        """RANKL-driven osteoclast activity; uncoupled matrix resorption."""
        ch = self.chain(ctx)
        ctx.add(
            N.osteoclast,
            osteoclast_rate(
                ctx.f(N.osteoclast),
                ch["rankl"],
                ctx.coef("bone.basal"),
                ctx.coef("bone.activation"),
                ctx.const("bone.decay"),
            ),
        )
        ctx.add(N.bone_matrix, -ch["resorption"])

    def derived_names(self) -> Sequence[str]:
        """PTHrP, RANKL induction and the matrix ligand release (nM/h)."""
        return [N.pthrp, N.rankl, N.matrix_tgf_release]

    def derived(self, ctx: Context) -> Mapping[str, Expr]:
        """The algebraic links of the cycle as output fields."""
        ch = self.chain(ctx)
        return {N.pthrp: ch["pthrp"], N.rankl: ch["rankl"], N.matrix_tgf_release: ch["release"]}

    def qois(self, ctx: Context) -> Sequence[QoI]:
        r"""Osteoclasts (mean, lesion mean), matrix and resorbed volume, matrix release.

        ``osteolytic_volume_mm3`` is the mineralized volume lost, :math:`\int (M_0 - M)`;
        ``matrix_tgf_release_fmol_h`` the released ligand per hour (nM mm^3/h = fmol/h) and
        ``matrix_tgf_share`` its share of the ligand's total production.
        """
        oc, m, u = ctx.f(N.osteoclast), ctx.f(N.bone_matrix), ctx.f(N.tumor)
        lesion = ufl.conditional(ufl.ge(u, LESION_DENSITY), 1.0, 0.0)
        release = self.chain(ctx)["release"]
        out = [
            QoI("mean_osteoclast", oc, ctx.const("one")),
            QoI("mean_osteoclast_lesion", oc * lesion, lesion),
            QoI("bone_matrix_mm3", m),
            QoI("osteolytic_volume_mm3", ctx.coef("bone.matrix_fraction") - m),
            QoI("matrix_tgf_release_fmol_h", release),
        ]
        production = ctx.balance.get(self.ligand or "", {}).get("production")
        if production is not None:
            out.append(QoI("matrix_tgf_share", release, production))
            out.append(QoI("matrix_tgf_share_lesion", release * lesion, production * lesion))
        return out

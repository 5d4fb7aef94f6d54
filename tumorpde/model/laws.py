"""Physics terms as pure UFL: rate laws and fluxes in, UFL expressions out.

No test functions, measures or meshes appear here (those belong to :mod:`tumorpde.fem.forms`).
Every term states its equation and a source. Units are internal (mm, h, nM; u dimensionless).
"""

from __future__ import annotations

import ufl
from ufl.core.expr import Expr

#: A UFL expression or a plain number (coefficients a case gives as floats).
Operand = Expr | float

__all__ = [
    "binding_rate",
    "chemotactic_flux",
    "complex_internalization",
    "diffusive_flux",
    "ligand_sink",
    "logistic_growth",
    "occupancy",
    "receptor_turnover",
]


def diffusive_flux(c: Expr, diffusivity: Operand) -> Expr:
    r"""Fickian flux :math:`\mathbf{j} = -D\nabla c` (D in mm²/h, possibly per region)."""
    return -diffusivity * ufl.grad(c)


def logistic_growth(u: Expr, rate: Expr) -> Expr:
    r"""Logistic proliferation :math:`\rho\,u(1-u)` of the normalized density u (1/h).

    Verhulst's law; used for tumor-cell density in, e.g., Swanson, Alvord & Murray (2000),
    Cell Prolif. 33:317-329.
    """
    return rate * u * (1 - u)


def chemotactic_flux(u: Expr, ligand: Expr, sensitivity: Expr) -> Expr:
    r"""Volume-filling chemotactic flux :math:`\chi\,u(1-u)\nabla L` up the ligand gradient.

    The :math:`(1-u)` factor (Painter & Hillen 2002, Can. Appl. Math. Q. 10:501-543) stops cells
    from crowding beyond carrying capacity and prevents Keller-Segel blow-up.
    :math:`\chi` is in mm² h⁻¹ nM⁻¹.
    """
    return sensitivity * u * (1 - u) * ufl.grad(ligand)


def binding_rate(
    ligand: Expr, receptor: Expr, complex_: Expr, k_on: Operand, k_off: Operand
) -> Expr:
    r"""Net complex formation :math:`k_{on} L R - k_{off} C` (nM/h at carrying capacity).

    Mass-action ligand-receptor binding (Lauffenburger & Linderman 1993, *Receptors*, ch. 2).
    """
    return k_on * ligand * receptor - k_off * complex_


def receptor_turnover(receptor: Expr, total: Expr, k_t: Expr) -> Expr:
    r"""Free receptor synthesis minus constitutive internalization, :math:`k_t (R_0 - R)`.

    Synthesis :math:`V_s = k_t R_0` keeps the ligand-free steady state at :math:`R_0`
    (Lauffenburger & Linderman 1993, ch. 3).
    """
    return k_t * (total - receptor)


def complex_internalization(complex_: Expr, k_e: Expr) -> Expr:
    r"""Ligand-induced internalization of the complex, :math:`k_e C` (1/h times nM)."""
    return k_e * complex_


def ligand_sink(u: Expr, binding: Expr) -> Expr:
    r"""Volumetric ligand consumption by tumor-cell receptors, :math:`u\,(k_{on} L R - k_{off} C)`.

    Receptor states are per cell, stored as the concentration at carrying capacity, so the tissue
    sink scales with the local cell density u (Lauffenburger & Linderman 1993,
    Receptors: Models for Binding, Trafficking, and Signaling, Oxford University Press).
    """
    return u * binding


def occupancy(receptor: Expr, complex_: Expr, eps: float = 1e-30) -> Expr:
    r"""Receptor occupancy :math:`\theta = C / (R + C)`."""
    return complex_ / (receptor + complex_ + eps)


def hill(x: Expr, half: Operand, n: float) -> Expr:
    r"""Hill function :math:`x^n / (K^n + x^n)` of a non-negative input (negative parts clipped).

    Used for signal transduction (occupancy-driven response) and hypoxia responses. ``n >= 1``
    keeps the Jacobian finite at x = 0.
    """
    xp = ufl.max_value(x, 0.0)
    if float(n) == 1.0:
        return xp / (half + xp)
    return xp**n / (half**n + xp**n)


def trafficking(
    ligand: Expr | None,
    free: Expr,
    complex_: Expr | None,
    internal: Expr | None,
    total: Expr,
    k: dict[str, Expr],
) -> tuple[Expr, Expr | None, Expr | None, Expr]:
    r"""Lauffenburger-Linderman receptor trafficking rates (per cell, nM at carrying capacity).

    .. math::

        \dot R &= k_t (R_0 - R) - (k_{on} L R - k_{off} C) + k_{rec} I\\
        \dot C &= k_{on} L R - k_{off} C - k_e C\\
        \dot I &= k_e C - (k_{rec} + k_{deg}) I

    Synthesis :math:`V_s = k_t R_0` keeps the ligand-free steady state at :math:`R_0`
    (Lauffenburger & Linderman 1993, *Receptors*, ch. 3). Without a ligand only the first line
    (with L = 0) remains; without an internal pool, internalized complexes are degraded at once.

    Args:
        ligand: L (None for a ligand-less pathway).
        free: R.
        complex_: C (None without a ligand).
        internal: I (None without an internal pool).
        total: :math:`R_0`.
        k: Rate constants ``k_on, k_off, k_t, k_e, k_rec, k_deg``.

    Returns:
        ``(dR, dC, dI, J)`` with :math:`J = k_{on} L R - k_{off} C` the surface binding flux
        (0 without a ligand).
    """
    dR = k["k_t"] * (total - free)
    if ligand is None or complex_ is None:
        return dR, None, None, 0.0 * free
    J = binding_rate(ligand, free, complex_, k["k_on"], k["k_off"])
    dR = dR - J
    dC = J - k["k_e"] * complex_
    dI = None
    if internal is not None:
        dR = dR + k["k_rec"] * internal
        dI = k["k_e"] * complex_ - (k["k_rec"] + k["k_deg"]) * internal
    return dR, dC, dI, J


def ecm_binding(ligand: Expr, bound: Expr, sites: Expr, k_on: Expr, k_off: Expr) -> Expr:
    r"""Reversible ligand binding to matrix sites, :math:`k_{on} L (E_T - E_b) - k_{off} E_b`.

    Heparan-sulfate sequestration of VEGF165 and HGF (Mac Gabhann & Popel model family; model
    notes 1.3), nM/h.
    """
    return k_on * ligand * (sites - bound) - k_off * bound


def signal_relaxation(signal: Expr, drive: Expr, rate: Expr) -> Expr:
    r"""First-order signal relaxation :math:`k_S (\mathrm{drive} - S)` (phenomenological)."""
    return rate * (drive - signal)


def gompertz_growth(u: Expr, rate: Expr, floor: float = 1e-12) -> Expr:
    r"""Gompertzian proliferation :math:`\rho\,u \ln(1/u)` (u clipped at ``floor`` in the log).

    Norton 1988, Cancer Res. 48:7067.
    """
    return -rate * u * ufl.ln(ufl.max_value(u, floor))


def saturating_chemotactic_flux(
    u: Expr, ligand: Expr, sensitivity: Expr, saturation: Expr | None
) -> Expr:
    r"""Receptor-saturating, volume-filling chemotaxis :math:`\chi u(1-u)\nabla L/(1+L/K)^2`.

    Painter & Hillen 2002 (volume filling) with the receptor-law sensitivity of Keller & Segel.
    ``saturation = None`` gives the linear law.
    """
    flux = chemotactic_flux(u, ligand, sensitivity)
    if saturation is None:
        return flux
    return flux / (1 + ufl.max_value(ligand, 0.0) / saturation) ** 2


def emt_rate(signal: Expr, mesenchymal: Expr, k_emt: Expr) -> Expr:
    r"""Signal-driven epithelial-to-mesenchymal switching :math:`k_{emt} S (1 - e)`.

    TGF-beta's pro-EMT arm (Lowery & Yu 2012, Cancer Metastasis Rev. 31:479-491).
    """
    return k_emt * signal * (1 - mesenchymal)


def oxygen_supply(oxygen: Expr, blood: Expr, rate: Expr) -> Expr:
    r"""Homogenized vascular oxygen supply :math:`k_s (O_b - O)` (mmHg/h)."""
    return rate * (blood - oxygen)


def oxygen_consumption(u: Expr, oxygen: Expr, rate: Expr, half: Expr) -> Expr:
    r"""Michaelis-Menten consumption :math:`M u O / (O + K_m)` by tumor cells (mmHg/h)."""
    op = ufl.max_value(oxygen, 0.0)
    return rate * u * op / (op + half)


def hypoxia(oxygen: Expr, threshold: Expr, n: float) -> Expr:
    r"""Hypoxia level :math:`h(O) = K^n / (K^n + O^n)` in [0, 1] (1 = anoxic)."""
    return 1 - hill(oxygen, threshold, n)


def osteoclast_rate(oc: Expr, u: Expr, signal: Expr, basal: Expr, act: Expr, decay: Expr) -> Expr:
    r"""Vicious-cycle osteoclast activity :math:`k_0 + k_a S_{TGF} u - k_d OC`.

    Tumor TGF-beta signaling (lumping PTHrP -> RANKL) recruits osteoclasts, whose resorption
    releases matrix TGF-beta (Chiechi et al. 2013, Adv. Biosci.
    Biotechnol. 4:15-30; Oreffo et al. 1989, Biochem. Biophys. Res. Commun. 158:817-823).
    """
    return basal + act * signal * u - decay * oc


def addiction_death(signal: Expr, reference: Expr | float, rate: Expr | float) -> Expr:
    r"""Oncogene-addiction death rate :math:`k\,\max(0, 1 - S/S_{ref})` (1/h).

    Cells that depend on an amplified oncogene die when its signal is blocked (Weinstein 2002
    Science 297:63-64); the rate grows linearly with the lost share of the untreated signal.
    """
    return rate * ufl.max_value(1 - signal / reference, 0.0)

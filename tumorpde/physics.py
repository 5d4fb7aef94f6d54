"""Physics terms as pure UFL: rate laws and fluxes in, UFL expressions out.

No test functions, measures or meshes appear here (those belong to :mod:`tumorpde.forms`).
Every term states its equation and a source. Units are internal (mm, h, nM; u dimensionless).
"""

from __future__ import annotations

from typing import Any

import ufl

Expr = Any  # a UFL expression (ufl has no public expression type alias)

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


def diffusive_flux(c: Expr, diffusivity: Expr) -> Expr:
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


def binding_rate(ligand: Expr, receptor: Expr, complex_: Expr, k_on: Expr, k_off: Expr) -> Expr:
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
    sink scales with the local cell density u (model notes 1.3; Lauffenburger & Linderman 1993).
    """
    return u * binding


def occupancy(receptor: Expr, complex_: Expr, eps: float = 1e-30) -> Expr:
    r"""Receptor occupancy :math:`\theta = C / (R + C)`."""
    return complex_ / (receptor + complex_ + eps)

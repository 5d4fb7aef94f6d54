"""Closed-form and exact-solution cases: well-mixed equilibria and steady diffusion-decay.

* ``well_mixed``: binding equilibrium at constant ligand, ligand-depletion equilibrium and
  trafficking steady state (Lauffenburger & Linderman 1993) from a spatially uniform PDE run.
* ``steady_slab``, ``steady_sphere``, ``krogh``: steady diffusion-decay with a Dirichlet wall
  (cosh, sinh(r)/r and Krogh-cylinder Bessel solutions). The product has no Dirichlet
  conditions yet, so these solve the product's *ligand residual* with a DOLFINx Dirichlet
  condition added here: they verify the discretization of diffusion and decay, not the product's
  boundary handling.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from tumorpde.config import CaseConfig, config_from_dict
from tumorpde.fem.domain import Domain, load_domain
from tumorpde.simulation.stepper import StepFailedError
from tumorpde.studies.verification.harness import (
    _NAME,
    _PREFIX,
    SPECIES,
    Row,
    _case,
    _dx,
    _h_eff,
    _integral,
    _mapped_box_domain,
    _march,
    _Problem,
    _rates,
    _row,
    _setup,
    ball_domain,
)

__all__ = ["case_krogh", "case_steady_slab", "case_steady_sphere", "case_well_mixed"]


def case_well_mixed(comm: Any, full: bool = False) -> list[Row]:
    """Spatially uniform runs against Lauffenburger-Linderman closed forms (rel. 1e-8)."""
    rows: list[Row] = []
    mesh = {"kind": "box", "size": [1.0] * 3, "cells": [2, 2, 2]}

    def run(**sections: Any) -> tuple[CaseConfig, dict[str, float]]:
        cfg = config_from_dict(_case(mesh=mesh, **sections))
        p = _setup(cfg, comm)
        _march(p, cfg.time.t_end, cfg.time.dt)
        from dolfinx import fem

        vol = _integral(comm, fem.Constant(p.domain.mesh, 1.0) * p.forms.dx_lumped)
        means = {
            s: _integral(comm, p.state.fields[_NAME[s]] * p.forms.dx_lumped) / vol for s in SPECIES
        }
        p.destroy()
        return cfg, means

    # constant ligand (u = 0: no depletion), no trafficking: C_eq = R_T L0 / (Kd + L0)
    L0 = 2.0
    # (no proliferation: the per-cell states are not diluted by division; the closed forms are
    # those of a non-dividing cell population)
    cfg, m = run(
        tumor={"initial": {"kind": "uniform", "value": 0.0}, "proliferation_rate": 0.0},
        ligand={"initial": L0, "decay_rate": 0.0, "stromal_secretion": 0.0},
        receptor={"k_t": 0.0, "k_e": 0.0},
        time={"t_end": 400.0, "dt": 10.0},
    )
    rc, RT = cfg.pathways["EGFR"].receptor, cfg.receptor_total_nM("EGFR")
    Kd = rc.k_off / rc.k_on
    rows.append(
        _row("well_mixed", "C_eq, constant ligand", RT * L0 / (Kd + L0), m["complex"], 1e-8, "rel")
    )

    # closed system with depletion (u = 1): quadratic equilibrium
    LT = 0.7
    cfg, m = run(
        tumor={"initial": {"kind": "uniform", "value": 1.0}, "proliferation_rate": 0.0},
        ligand={"initial": LT, "decay_rate": 0.0, "stromal_secretion": 0.0, "tumor_secretion": 0.0},
        receptor={"k_t": 0.0, "k_e": 0.0},
        time={"t_end": 400.0, "dt": 10.0},
    )
    s = LT + RT + Kd
    c_eq = (s - math.sqrt(s * s - 4 * LT * RT)) / 2
    rows.append(_row("well_mixed", "C_eq, ligand depletion", c_eq, m["complex"], 1e-8, "rel"))
    rows.append(_row("well_mixed", "L_eq, ligand depletion", LT - c_eq, m["ligand"], 1e-8, "rel"))

    # trafficking at constant ligand (u = 0): R_s = V_s / (k_t + k_on L k_e / (k_off + k_e))
    cfg, m = run(
        tumor={"initial": {"kind": "uniform", "value": 0.0}, "proliferation_rate": 0.0},
        ligand={"initial": L0, "decay_rate": 0.0, "stromal_secretion": 0.0},
        time={"t_end": 400.0, "dt": 10.0},
    )
    rc = cfg.pathways["EGFR"].receptor
    Rs = rc.k_t * RT / (rc.k_t + rc.k_on * L0 * rc.k_e / (rc.k_off + rc.k_e))
    Cs = rc.k_on * L0 * Rs / (rc.k_off + rc.k_e)
    rows.append(_row("well_mixed", "R_s, trafficking", Rs, m["receptor"], 1e-8, "rel"))
    rows.append(_row("well_mixed", "C_s, trafficking", Cs, m["complex"], 1e-8, "rel"))
    return rows


# ------------------------------------------------------------------------------------ steady
def _steady_ligand(
    comm: Any,
    domain: Domain,
    lam: float,
    wall: Callable[[np.ndarray], np.ndarray],
    value: float,
) -> _Problem:
    """Solve the product's ligand residual alone at steady state with L = value on ``wall``.

    The tumor is absent (u = 0) and binding is off, so the ligand equation reads
    -D_L lap L + k_d L = 0. Steady state: one backward-Euler step with dt = 1e12.
    """
    from dolfinx import fem
    from dolfinx.fem.petsc import NonlinearProblem

    cfg = config_from_dict(
        _case(
            tumor={"initial": {"kind": "uniform", "value": 0.0}, "proliferation_rate": 0.0},
            ligand={
                "diffusivity": 1.0,
                "decay_rate": 1.0 / lam**2,
                "tumor_secretion": 0.0,
                "stromal_secretion": 0.0,
                "initial": 0.0,
            },
            receptor={"k_on": 0.0, "k_off": 0.0},
        )
    )
    p = _setup(cfg, comm, domain=domain, dt=1e12, solver=False)
    V = p.state.V
    dofs = fem.locate_dofs_geometrical(V, wall)
    bc = fem.dirichletbc(float(value), dofs, V)
    opts = {
        "snes_type": "newtonls",
        "snes_linesearch_type": "basic",
        "snes_rtol": 1e-12,
        "snes_atol": 1e-14,
        "ksp_type": "preonly",
        "pc_type": "lu",
    }
    problem = NonlinearProblem(
        p.forms.residuals[1],
        p.state.fields[_NAME["ligand"]],
        bcs=[bc],
        petsc_options_prefix=_PREFIX + "steady_",
        petsc_options=opts,
    )
    problem.solve()
    reason = problem.solver.getConvergedReason()  # identical on all ranks
    for obj in (problem.solver, problem.A, problem.b, problem.x):
        obj.destroy()
    if reason <= 0:
        raise StepFailedError(f"steady ligand solve did not converge (reason {reason})")
    return p


def _l2_rel(p: _Problem, exact: Any) -> float:
    dx = _dx(p.domain.mesh, 4)
    e = p.state.fields[_NAME["ligand"]] - exact
    return math.sqrt(_integral(p.domain.comm, e * e * dx) / _integral(p.domain.comm, exact**2 * dx))


def case_steady_slab(comm: Any, full: bool = False) -> list[Row]:
    """Slab 0 <= x <= l, L(0) = L0, no flux at l: L = L0 cosh((l - x)/lam) / cosh(l/lam)."""
    import ufl

    ell, lam, L0 = 2.0, 0.4, 1.0
    ns = [10, 20, 40, 80] if full else [10, 20, 40]
    hs, errs = [], []
    for n in ns:
        cfg = config_from_dict(
            _case(mesh={"kind": "box", "size": [ell, 0.1, 0.1], "cells": [n, 1, 1]})
        )
        dom = load_domain(cfg.mesh, comm)
        p = _steady_ligand(comm, dom, lam, lambda x: np.isclose(x[0], 0.0), L0)
        x = ufl.SpatialCoordinate(dom.mesh)
        errs.append(_l2_rel(p, L0 * ufl.cosh((ell - x[0]) / lam) / math.cosh(ell / lam)))
        hs.append(ell / n)
    r = _rates(hs, errs)
    return [
        _row("steady_slab", "L2 rate (cosh profile)", 2.0, r[-1], 0.15, h=hs, error=errs, rates=r),
        _row("steady_slab", f"rel. L2 error, h={hs[-1]:g}", 0.0, errs[-1], 2e-3, "le"),
    ]


def case_steady_sphere(comm: Any, full: bool = False) -> list[Row]:
    """Ball of radius R, L(R) = L0: L = L0 (R/r) sinh(r/lam) / sinh(R/lam)."""
    import ufl

    R, lam, L0 = 1.0, 0.3, 1.0
    sizes = [0.2, 0.1, 0.07, 0.05] if full else [0.2, 0.1]
    hs, errs = [], []
    for h in sizes:
        dom = ball_domain(comm, R, h)
        p = _steady_ligand(comm, dom, lam, lambda x: np.linalg.norm(x, axis=0) > R * (1 - 1e-6), L0)
        x = ufl.SpatialCoordinate(dom.mesh)
        r = ufl.sqrt(ufl.inner(x, x))
        errs.append(_l2_rel(p, L0 * (R / r) * ufl.sinh(r / lam) / math.sinh(R / lam)))
        hs.append(_h_eff(dom))
    rt = _rates(hs, errs)
    return [
        _row(
            "steady_sphere",
            "L2 rate (sinh(r)/r profile)",
            2.0,
            rt[-1],
            0.15,
            h=hs,
            error=errs,
            rates=rt,
        ),
        _row("steady_sphere", f"rel. L2 error, h_eff={hs[-1]:.3g}", 0.0, errs[-1], 2e-2, "le"),
    ]


def case_krogh(comm: Any, full: bool = False) -> list[Row]:
    """Krogh cylinder, first-order uptake: Bessel solution on a quarter annulus R_c < r < R_t."""
    try:
        from scipy.special import i0, i1, k0, k1
    except ImportError:  # pragma: no cover - scipy is optional
        return [_row("krogh", "skipped: scipy not installed", 0.0, math.nan, 0.0)]
    from dolfinx import fem

    Rc, Rt, lam, Cv = 0.2, 1.0, 0.3, 1.0

    def exact(r: np.ndarray) -> np.ndarray:
        a, b = r / lam, Rt / lam
        num = i0(a) * k1(b) + k0(a) * i1(b)
        return Cv * num / (i0(Rc / lam) * k1(b) + k0(Rc / lam) * i1(b))

    def polar(X: np.ndarray) -> np.ndarray:
        return np.vstack([X[0] * np.cos(X[1]), X[0] * np.sin(X[1]), X[2]])

    ns = [8, 16, 32, 64] if full else [8, 16, 32]
    hs, errs = [], []
    for n in ns:
        dom = _mapped_box_domain(comm, [Rc, 0.0, 0.0], [Rt, math.pi / 2, 0.05], [n, n, 1], polar)
        p = _steady_ligand(comm, dom, lam, lambda x: np.hypot(x[0], x[1]) < Rc * (1 + 1e-9), Cv)
        V2 = fem.functionspace(dom.mesh, ("Lagrange", 3))
        ex = fem.Function(V2)
        ex.interpolate(lambda x: exact(np.hypot(x[0], x[1])))
        errs.append(_l2_rel(p, ex))
        hs.append((Rt - Rc) / n)
    r = _rates(hs, errs)
    return [
        _row(
            "krogh", "L2 rate (I0/K0 Bessel profile)", 2.0, r[-1], 0.15, h=hs, error=errs, rates=r
        ),
        _row("krogh", f"rel. L2 error, h={hs[-1]:.3g}", 0.0, errs[-1], 5e-3, "le"),
    ]

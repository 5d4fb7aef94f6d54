"""Manufactured-solution convergence cases: spatial P1 rates and the backward-Euler rate.

* ``mms_box_space``, ``mms_ball_space``: manufactured solutions of the fully coupled system
  (chemotaxis, logistic growth, secretion, decay, binding, trafficking, host-fraction weighted
  stromal secretion, dilution of the per-cell states by cell division) on the unit cube and on a
  curved domain (a gmsh ball). The forcing is derived here with UFL from the *documented*
  equations (not from :mod:`tumorpde.model.laws`) and enters through ``build_forms(forcing=...)``.
  The exact fields are affine in time, so backward Euler is exact in time and the error is purely
  spatial: P1 rates L2 ≈ 2, H1 ≈ 1.
* ``mms_box_time``: the same system with fields nonlinear in time on a fixed mesh; the
  successive-difference rate ``log2(|u_dt - u_dt/2| / |u_dt/2 - u_dt/4|)`` isolates the temporal
  error of backward Euler (≈ 1), the only time scheme offered.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from tumorpde.config import CaseConfig, config_from_dict
from tumorpde.fem.domain import Domain, load_domain
from tumorpde.studies.verification.harness import (
    _NAME,
    SPECIES,
    Row,
    _case,
    _dx,
    _h_eff,
    _integral,
    _march,
    _Problem,
    _rates,
    _row,
    _set_fields,
    _setup,
    ball_domain,
)

__all__ = ["case_mms_ball_space", "case_mms_box_space", "case_mms_box_time"]


def _mms_exact(x: Any, t: Any, m: Any, R0: float, shape: str, temporal: bool) -> dict[str, Any]:
    """Manufactured fields with zero normal derivative on the boundary.

    ``m`` is ``ufl`` or ``numpy``. ``shape="box"``: cosine products on [0, 1]^3. ``shape="ball"``:
    polynomials in s = |x|^2 on the unit ball, (1 - s)^2 and s - s^2/2 (both have zero radial
    derivative at r = 1 and are smooth at r = 0), times a non-radial factor where allowed.
    Affine in time unless ``temporal``.
    """
    if temporal:
        g1, g2, g3, g4 = m.exp(-t), m.cos(t), 1.0 / (1.0 + t), m.exp(0.5 * t)
    else:
        g1, g2, g3, g4 = 1.0 + t, 1.0 - 0.5 * t, 1.0 + t, 1.0 + 2.0 * t
    pi = math.pi
    if shape == "box":
        cx, cy, cz = m.cos(pi * x[0]), m.cos(pi * x[1]), m.cos(pi * x[2])
        a, b = cx * cy * cz, cx * cy
    else:
        s = x[0] * x[0] + x[1] * x[1] + x[2] * x[2]
        a = (1.0 - s) ** 2 * (0.5 + 0.5 * x[0])
        b = (s - 0.5 * s * s) + (1.0 - s) ** 2 * x[1]
    return {
        "tumor": 0.5 + 0.25 * g1 * a,
        "ligand": 1.0 + 0.4 * g2 * b,
        "receptor": R0 * (0.6 + 0.2 * g3 * m.cos(pi * x[0]) * m.cos(pi * x[2])),
        "complex": R0 * (0.3 + 0.1 * g4 * m.cos(pi * x[1])),
    }


def _mms_forcing(cfg: CaseConfig, msh: Any, shape: str, temporal: bool) -> Callable[[Any], Any]:
    """Sources that make :func:`_mms_exact` an exact solution of the documented equations."""
    import ufl

    tm, lg, rc = cfg.tumor, cfg.pathways["EGFR"].ligand, cfg.pathways["EGFR"].receptor
    Du, chi, rho = tm.motility, cfg.pathways["EGFR"].effects.chemotaxis, tm.proliferation_rate
    DL, kd, st, ss = lg.diffusivity, lg.decay_rate, lg.tumor_secretion, lg.stromal_secretion
    kon, koff, kt, ke, R0 = rc.k_on, rc.k_off, rc.k_t, rc.k_e, cfg.receptor_total_nM("EGFR")
    x = ufl.SpatialCoordinate(msh)

    def forcing(t: Any) -> dict[str, Any]:
        tv = ufl.variable(t)
        ex = _mms_exact(x, tv, ufl, R0, shape, temporal)
        u, L, R, C = (ex[s] for s in SPECIES)
        b = kon * L * R - koff * C
        j_u = Du * ufl.grad(u) - chi * u * (1 - u) * ufl.grad(L)
        g = rho * (1 - u)  # per-cell birth rate: dividing cells share their receptor states
        return {
            "tumor": ufl.diff(u, tv) - ufl.div(j_u) - rho * u * (1 - u),
            # stromal secretion is a host term: weighted by the host fraction 1 - u
            "ligand": ufl.diff(L, tv)
            - ufl.div(DL * ufl.grad(L))
            - st * u
            - (1 - u) * ss
            + kd * L
            + u * b,
            # dilution: newborn cells make free receptor (g (R0 - R)), complexes are shared (g C)
            "receptor": ufl.diff(R, tv) - kt * (R0 - R) + b - g * (R0 - R),
            "complex": ufl.diff(C, tv) - b + ke * C + g * C,
        }

    return forcing


def _mms_run(
    comm: Any,
    domain: Domain,
    shape: str,
    temporal: bool,
    t_end: float,
    dt: float,
) -> tuple[_Problem, dict[str, Any]]:
    """Run the MMS problem; return it and the exact fields (UFL, at t = t_end)."""
    import ufl

    cfg = config_from_dict(_case())
    p = _setup(cfg, comm, domain=domain, forcing=_mms_forcing(cfg, domain.mesh, shape, temporal))
    R0 = cfg.receptor_total_nM("EGFR")
    init = {
        s: (lambda x, s=s: _mms_exact(x, 0.0, np, R0, shape, temporal)[s] + 0.0 * x[0])
        for s in SPECIES
    }
    _set_fields(p.state, init)
    _march(p, t_end, dt)
    tc = p.forms.constants["t"]
    tc.value = t_end
    x = ufl.SpatialCoordinate(domain.mesh)
    return p, _mms_exact(x, tc, ufl, R0, shape, temporal)


def _errors(p: _Problem, exact: dict[str, Any]) -> dict[str, tuple[float, float]]:
    """(L2, H1-seminorm) error per species, MPI-reduced."""
    import ufl

    dx = _dx(p.domain.mesh, 4)
    out = {}
    for s in SPECIES:
        e = p.state.fields[_NAME[s]] - exact[s]
        l2 = _integral(p.domain.comm, e * e * dx)
        h1 = _integral(p.domain.comm, ufl.inner(ufl.grad(e), ufl.grad(e)) * dx)
        out[s] = (math.sqrt(l2), math.sqrt(h1))
    return out


def _space_rows(
    case: str, hs: list[float], errs: list[dict[str, tuple[float, float]]]
) -> list[Row]:
    rows = []
    for s in SPECIES:
        for k, (norm, theory) in enumerate((("L2", 2.0), ("H1", 1.0))):
            e = [err[s][k] for err in errs]
            r = _rates(hs, e)
            rows.append(_row(case, f"{s} {norm} rate", theory, r[-1], 0.15, h=hs, error=e, rates=r))
    return rows


def case_mms_box_space(comm: Any, full: bool = False) -> list[Row]:
    """Spatial MMS rates on the unit cube (Kuhn tetrahedra), full coupled system."""
    ns = [4, 8, 16, 24] if full else [4, 8, 16]
    hs, errs = [], []
    for n in ns:
        cfg = config_from_dict(_case(mesh={"kind": "box", "size": [1.0] * 3, "cells": [n] * 3}))
        dom = load_domain(cfg.mesh, comm)
        p, ex = _mms_run(comm, dom, "box", temporal=False, t_end=0.5, dt=0.25)
        errs.append(_errors(p, ex))
        hs.append(1.0 / n)
        p.destroy()
    return _space_rows("mms_box_space", hs, errs)


def case_mms_ball_space(comm: Any, full: bool = False) -> list[Row]:
    """Spatial MMS rates on a curved domain (unit ball, unstructured gmsh tetrahedra)."""
    # coarser meshes are pre-asymptotic (H1 rates of 1.3-1.5 from the boundary layer)
    sizes = [0.15, 0.1, 0.075, 0.05] if full else [0.1, 0.075]
    hs, errs = [], []
    for h in sizes:
        dom = ball_domain(comm, 1.0, h)
        p, ex = _mms_run(comm, dom, "ball", temporal=False, t_end=0.5, dt=0.25)
        errs.append(_errors(p, ex))
        hs.append(_h_eff(dom))
        p.destroy()
    return _space_rows("mms_ball_space", hs, errs)


def case_mms_box_time(comm: Any, full: bool = False) -> list[Row]:
    """Temporal rate of backward Euler: fields nonlinear in time, fixed mesh."""
    import ufl

    n = 6 if full else 4
    t_end = 1.0
    dts = [t_end / k for k in ((4, 8, 16, 32, 64) if full else (4, 8, 16, 32))]
    cfg = config_from_dict(_case(mesh={"kind": "box", "size": [1.0] * 3, "cells": [n] * 3}))
    dom = load_domain(cfg.mesh, comm)
    finals: list[dict[str, np.ndarray]] = []
    exact_err: list[float] = []
    V = None
    for dt in dts:
        p, ex = _mms_run(comm, dom, "box", temporal=True, t_end=t_end, dt=dt)
        V = p.state.V
        finals.append({s: p.state.fields[_NAME[s]].x.array.copy() for s in SPECIES})
        exact_err.append(_errors(p, ex)["tumor"][0])
        p.destroy()
    from dolfinx import fem

    d = fem.Function(V)
    dx = _dx(dom.mesh, 2)
    rows = []
    for s in SPECIES:
        diffs = []
        for a, b in itertools.pairwise(finals):
            d.x.array[:] = a[s] - b[s]
            diffs.append(math.sqrt(_integral(comm, ufl.inner(d, d) * dx)))
        r = _rates(dts[:-1], diffs)
        rows.append(
            _row(
                "mms_box_time",
                f"{s} BE rate (L2, successive dt)",
                1.0,
                r[-1],
                0.15,
                dt=dts[:-1],
                difference=diffs,
                rates=r,
                tumor_error_vs_exact=exact_err,
                dt_all=dts,
            )
        )
    return rows

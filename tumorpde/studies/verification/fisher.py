"""Fisher-KPP fronts: the exact travelling wave and the asymptotic front speed.

* ``travelling_wave``: the Ablowitz-Zeppetella exact Fisher-KPP wave (space-time convergence of
  the nonlinear solve).
* ``fisher_speed``: Fisher-KPP front speed 2 sqrt(D rho) with the Bramson correction fitted and
  the O(dt) bias of backward Euler removed by Richardson extrapolation (long: full study only).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tumorpde.config import config_from_dict
from tumorpde.studies.verification.harness import (
    Row,
    _case,
    _dx,
    _integral,
    _march,
    _rates,
    _row,
    _set_fields,
    _setup,
)

__all__ = ["case_fisher_speed", "case_travelling_wave"]


def _fisher_case(length: float, n: int, dt: float, t_end: float) -> dict[str, Any]:
    return _case(
        mesh={"kind": "box", "size": [length, 0.2, 0.2], "cells": [n, 1, 1]},
        time={"t_end": t_end, "dt": dt},
        tumor={"proliferation_rate": 1.0, "motility": 1.0, "chemotaxis": 0.0},
        ligand={"initial": 0.0, "tumor_secretion": 0.0, "stromal_secretion": 0.0},
        receptor={"k_on": 0.0, "k_off": 0.0, "k_t": 0.0, "k_e": 0.0},
    )


def case_travelling_wave(comm: Any, full: bool = False) -> list[Row]:
    """Ablowitz-Zeppetella wave u = (1 + e^{(x - x0 - v t)/sqrt 6})^-2, v = 5/sqrt 6 (D = rho = 1).

    Space-time refinement with dt ~ h^2 (error O(h^2 + dt) = O(h^2)). No-flux ends far from the
    front cost only exponentially small errors.
    """
    import ufl

    ell, x0, t_end = 70.0, 35.0, 2.0
    v, s6 = 5.0 / math.sqrt(6.0), math.sqrt(6.0)
    hs_all = [0.5, 0.25, 0.125, 0.0625] if full else [0.5, 0.25]
    hs, errs = [], []
    for h in hs_all:
        n = round(ell / h)
        dt = 0.1 * (h / 0.5) ** 2
        cfg = config_from_dict(_fisher_case(ell, n, dt, t_end))
        p = _setup(cfg, comm)
        _set_fields(p.state, {"tumor": lambda x: (1 + np.exp((x[0] - x0) / s6)) ** -2})
        _march(p, t_end, dt)
        x = ufl.SpatialCoordinate(p.domain.mesh)
        ex = (1 + ufl.exp((x[0] - x0 - v * t_end) / s6)) ** -2
        dx = _dx(p.domain.mesh, 4)
        e = p.state.fields["tumor"] - ex
        area = 0.2 * 0.2
        errs.append(math.sqrt(_integral(comm, e * e * dx) / area))
        hs.append(h)
        p.destroy()
    r = _rates(hs, errs)
    return [
        _row(
            "travelling_wave",
            "L2 rate, dt ~ h^2 (AZ wave)",
            2.0,
            r[-1],
            0.15,
            h=hs,
            error=errs,
            rates=r,
        ),
    ]


def _front_track(
    comm: Any, length: float, h: float, dt: float, t_end: float, every: float
) -> tuple[np.ndarray, np.ndarray]:
    """Front position x(t) = int u dV / area from a step at x < 5 (D = rho = 1)."""
    n = round(length / h)
    cfg = config_from_dict(_fisher_case(length, n, dt, t_end))
    p = _setup(cfg, comm)
    _set_fields(p.state, {"tumor": lambda x: np.where(x[0] <= 5.0, 1.0, 0.0)})
    from dolfinx import fem

    mass = fem.form(p.state.fields["tumor"] * p.forms.dx_lumped)
    from mpi4py import MPI

    ts, xs = [], []
    area = 0.2 * 0.2
    t = 0.0
    while t < t_end - 1e-9:
        _march(p, min(t + every, t_end), dt)
        t = p.state.t
        ts.append(t)
        xs.append(comm.allreduce(fem.assemble_scalar(mass), op=MPI.SUM) / area)
    p.destroy()
    return np.array(ts), np.array(xs)


def _bramson_fit(ts: np.ndarray, xs: np.ndarray, t1: float) -> tuple[float, float]:
    """Least-squares fit x = c t - a ln t + b - 3 sqrt(pi / t) on t >= t1; returns (c, a)."""
    m = ts >= t1
    t = ts[m]
    A = np.vstack([t, -np.log(t), np.ones_like(t)]).T
    y = xs[m] + 3.0 * np.sqrt(np.pi / t)
    (c, a, _), *_ = np.linalg.lstsq(A, y, rcond=None)
    return float(c), float(a)


def case_fisher_speed(comm: Any, full: bool = False) -> list[Row]:
    """Fisher-KPP front speed c* = 2 sqrt(D rho) = 2 (D = rho = 1), Bramson-corrected fit.

    The front position x(t) = int u dV / area is fitted by c t - a ln t + b - 3 sqrt(pi/t)
    on [T/4, T]. Backward Euler overestimates the speed of a pulled front by O(dt) (about 11 %
    at dt = 0.1), so runs at dt and dt/2 are Richardson-extrapolated. A naive slope without the
    log term underestimates c*; it is kept in ``data`` for reference only. ``full`` follows the
    test recipe for the Bramson-corrected front (T = 200/rho, h = 0.1 sqrt(D/rho),
    dt = 0.1/rho; ~45 min serial);
    otherwise T = 60, h = 0.2 (~3 min serial, not in the quick subset).
    """
    t_end, h, dt0 = (200.0, 0.1, 0.1) if full else (60.0, 0.2, 0.1)
    length = 2.0 * t_end + 30.0
    fits, naive = [], []
    data: dict[str, Any] = {}
    for dt in (dt0, dt0 / 2):
        ts, xs = _front_track(comm, length, h, dt, t_end, every=1.0)
        c, a = _bramson_fit(ts, xs, t_end / 4)
        fits.append(c)
        m = ts >= t_end / 2
        naive.append(float(np.polyfit(ts[m], xs[m], 1)[0]))
        data[f"dt={dt:g}"] = {"t": ts.tolist(), "x": xs.tolist(), "c": c, "a": a}
    c_ext = 2 * fits[1] - fits[0]
    return [
        _row(
            "fisher_speed",
            f"front speed (Bramson fit, dt-extrapolated), T={t_end:g}, h={h:g}",
            2.0,
            c_ext,
            0.01,
            "rel",
            fits=fits,
            naive_slope=naive,
            naive_slope_extrapolated=2 * naive[1] - naive[0],
            **data,
        ),
    ]

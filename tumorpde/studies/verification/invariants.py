"""Discrete invariants of the product's scheme: conservation, balances and positivity.

* ``conservation``: no-flux mass conservation (with chemotaxis), exact per-step global balance of
  tumor, ligand and receptors, pointwise receptor conservation.
* ``positivity``: min/max principle on the non-obtuse (Kuhn) box mesh with lumped mass.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tumorpde.config import config_from_dict
from tumorpde.output.qoi import global_max, global_min
from tumorpde.studies.verification.harness import (
    _NAME,
    SPECIES,
    Row,
    _case,
    _march,
    _Problem,
    _row,
    _setup,
)

__all__ = ["case_conservation", "case_positivity"]


def case_conservation(comm: Any, full: bool = False) -> list[Row]:
    """Mass conservation, per-step global balances and receptor conservation (no-flux box)."""
    from dolfinx import fem

    n = 10 if full else 6
    seed = {"kind": "gaussian", "center": [0.3, 0.5, 0.5], "radius": 0.25, "peak": 0.8}
    mesh = {"kind": "box", "size": [1.0] * 3, "cells": [n] * 3}
    rows: list[Row] = []

    # (a) no growth: transport only (diffusion + nonlinear chemotaxis) conserves the cells
    cfg = config_from_dict(
        _case(
            mesh=mesh,
            tumor={"proliferation_rate": 0.0, "initial": seed, "chemotaxis": 1.0},
            ligand={"initial": 0.0},
        )
    )
    p = _setup(cfg, comm)
    p.state.fields[_NAME["ligand"]].interpolate(lambda x: 2.0 * np.exp(-((x[0] - 0.8) ** 2) / 0.05))
    p.state.accept()
    dxl = p.forms.dx_lumped
    mass = fem.form(p.state.fields["tumor"] * dxl)
    from mpi4py import MPI

    def total(f: Any) -> float:
        return float(comm.allreduce(fem.assemble_scalar(f), op=MPI.SUM))

    m0 = total(mass)
    worst = [0.0]

    def check_mass(dt: float) -> None:
        worst[0] = max(worst[0], abs(total(mass) - m0) / m0)

    nsteps = _march(p, 2.0, 0.2, check_mass)
    rows.append(
        _row(
            "conservation",
            "tumor mass drift (rel, max over steps)",
            0.0,
            worst[0],
            1e-10,
            "le",
            steps=nsteps,
        )
    )
    p.destroy()

    # (b) full physics: exact discrete balance of each species' integral in every step
    cfg = config_from_dict(_case(mesh=mesh, tumor={"initial": seed}, ligand={"initial": 0.5}))
    p = _setup(cfg, comm)
    st = p.state
    u, L, R, C = (st.fields[_NAME[s]] for s in SPECIES)
    u0, L0, R0_, C0 = (st.previous[_NAME[s]] for s in SPECIES)
    tm, lg, rc = cfg.tumor, cfg.pathways["EGFR"].ligand, cfg.pathways["EGFR"].receptor
    R0 = cfg.receptor_total_nM("EGFR")
    b = rc.k_on * L * R - rc.k_off * C
    g = tm.proliferation_rate * (1 - u)  # per-cell birth rate (dilution of per-cell states)
    balances = {
        "tumor": (u - u0, tm.proliferation_rate * u * (1 - u)),
        "ligand": (
            L - L0,
            lg.tumor_secretion * u + (1 - u) * lg.stromal_secretion - lg.decay_rate * L - u * b,
        ),
        "receptor+complex": (
            R + C - R0_ - C0,
            rc.k_t * (R0 - R) - rc.k_e * C + g * (R0 - R) - g * C,
        ),
    }
    dtc, dxl = p.forms.dt, p.forms.dx_lumped
    forms = {
        k: (fem.form((dv - dtc * rhs) * dxl), fem.form((abs(dv) + abs(dtc * rhs)) * dxl))
        for k, (dv, rhs) in balances.items()
    }
    worst_b = dict.fromkeys(forms, 0.0)

    def check_balance(dt: float) -> None:
        for k, (res, scale) in forms.items():
            worst_b[k] = max(worst_b[k], abs(total(res)) / max(total(scale), 1e-300))

    nsteps = _march(p, 2.0, 0.2, check_balance)
    for k, v in worst_b.items():
        rows.append(
            _row(
                "conservation",
                f"{k} per-step balance residual (rel)",
                0.0,
                v,
                1e-10,
                "le",
                steps=nsteps,
            )
        )
    p.destroy()

    # (c) no synthesis/internalization: R + C = R0 at every node
    cfg = config_from_dict(
        _case(mesh=mesh, tumor={"initial": seed}, receptor={"k_t": 0.0, "k_e": 0.0})
    )
    p = _setup(cfg, comm)
    _march(p, 2.0, 0.2)
    R0 = cfg.receptor_total_nM("EGFR")
    n_own = p.state.V.dofmap.index_map.size_local
    tot = (
        p.state.fields[_NAME["receptor"]].x.array[:n_own]
        + p.state.fields[_NAME["complex"]].x.array[:n_own]
    )
    dev = comm.allreduce(float(np.abs(tot - R0).max(initial=0.0)) / R0, op=MPI.MAX)
    rows.append(
        _row("conservation", "max |R + C - R0| / R0 (k_t = k_e = 0)", 0.0, dev, 1e-10, "le")
    )
    p.destroy()
    return rows


def case_positivity(comm: Any, full: bool = False) -> list[Row]:
    """Min/max principle on a non-obtuse mesh: steep seed, no chemotaxis, large and small dt."""
    n = 12 if full else 8
    rows: list[Row] = []
    for dt in (0.5, 0.01):
        cfg = config_from_dict(
            _case(
                mesh={"kind": "box", "size": [1.0] * 3, "cells": [n] * 3},
                tumor={
                    "chemotaxis": 0.0,
                    "motility": 0.05,
                    "initial": {
                        "kind": "gaussian",
                        "center": [0.5] * 3,
                        "radius": 0.08,
                        "peak": 1.0,
                    },
                },
                ligand={"initial": 0.0, "stromal_secretion": 0.0, "decay_rate": 2.0},
            )
        )
        p = _setup(cfg, comm)
        lo = dict.fromkeys(SPECIES, math.inf)
        hi = [-math.inf]

        def watch(_dt: float, p: _Problem = p, lo: dict = lo, hi: list = hi) -> None:
            for s in SPECIES:
                lo[s] = min(lo[s], global_min(p.state.fields[_NAME[s]]))
            hi[0] = max(hi[0], global_max(p.state.fields["tumor"]))

        _march(p, 10 * dt, dt, watch)
        p.destroy()
        rows.append(
            _row(
                "positivity",
                f"min(u, L, R, C) over steps, dt={dt:g}",
                0.0,
                min(lo.values()),
                -1e-12,
                "ge",
                minima=lo,
            )
        )
        rows.append(
            _row("positivity", f"max u over steps, dt={dt:g}", 1.0, hi[0], 1.0 + 1e-12, "le")
        )
    return rows

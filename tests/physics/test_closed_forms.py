"""Physics checks of the coupled solver against closed forms (MPI-safe: reduced values only)."""

import math

import numpy as np
import pytest
from helpers import box_case, split_box

from tumorpde.config import config_from_dict
from tumorpde.simulation import Simulation


def _sim(comm, case):
    return Simulation(config_from_dict(case), comm)


def _run(sim):
    infos = list(sim.steps())
    return infos


def test_pure_diffusion_conserves_mass(comm):
    """No-flux boundaries, no reactions: the integral of u and L is constant to round-off."""
    case = box_case(
        tumor={"proliferation_rate": 0.0, "chemotaxis": 0.0, "motility": 0.5},
        ligand={"decay_rate": 0.0, "tumor_secretion": 0.0, "initial": 2.0, "diffusivity": 1.0},
        receptor={"k_on": 0.0, "k_t": 0.0, "k_e": 0.0},
        time={"t_end": 5.0, "dt": 0.5},
    )
    sim = _sim(comm, case)
    m0 = sim.qois.evaluate()
    infos = _run(sim)
    m1 = sim.qois.evaluate()
    assert len(infos) == 10
    # exact for the discrete scheme; what remains is the linear-solver tolerance (1e-10)
    assert m1["tumor_burden_mm3"] == pytest.approx(m0["tumor_burden_mm3"], rel=1e-9)
    assert m1["mean_EGF_nM"] == pytest.approx(2.0, rel=1e-9)
    # diffusion really happened: the peak dropped a lot
    assert m1["max_tumor"] < 0.5 * m0["max_tumor"]
    assert m1["min_tumor"] > 0.0  # lumped mass + this mesh: no undershoot


def _uniform_logistic(comm, dt, rho=0.1, u0=0.05, t_end=24.0):
    case = box_case(
        mesh={"kind": "box", "size": [2.0, 2.0, 2.0], "cells": [2, 2, 2]},
        tumor={
            "proliferation_rate": rho,
            "chemotaxis": 1.0,
            "initial": {"kind": "uniform", "value": u0},
        },
        time={"t_end": t_end, "dt": dt},
    )
    sim = _sim(comm, case)
    _run(sim)
    q = sim.qois.evaluate()
    # stays uniform, to the Newton tolerance (snes_rtol 1e-9 with inexact linear solves)
    assert q["max_tumor"] - q["min_tumor"] < 1e-8
    return q["max_tumor"]


def test_uniform_logistic_matches_backward_euler_recurrence_and_closed_form(comm):
    rho, u0, t_end = 0.1, 0.05, 24.0
    exact = 1.0 / (1.0 + (1.0 / u0 - 1.0) * math.exp(-rho * t_end))
    errors, values = [], []
    for dt in (4.0, 2.0, 1.0):
        # the discrete BE recurrence u_{n+1} = u_n + dt rho u_{n+1}(1 - u_{n+1}), solved exactly
        u = u0
        for _ in range(round(t_end / dt)):
            a, b = dt * rho, 1.0 - dt * rho
            u = (-b + math.sqrt(b * b + 4 * a * u)) / (2 * a)
        got = _uniform_logistic(comm, dt, rho, u0, t_end)
        # the solver implements BE exactly, to the Newton tolerance (snes_rtol 1e-9)
        assert got == pytest.approx(u, rel=1e-8)
        errors.append(abs(got - exact))
        values.append(got)
    rates = [math.log2(errors[i] / errors[i + 1]) for i in range(2)]
    assert all(abs(r - 1.0) < 0.15 for r in rates), rates  # first order in time
    richardson = 2 * values[2] - values[1]  # cancels the O(dt) term
    assert abs(richardson - exact) < 0.1 * errors[-1]


def test_uniform_binding_reaches_ligand_depletion_equilibrium(comm):
    """Closed system, no trafficking or decay: C_eq solves the Lauffenburger-Linderman quadratic."""
    L_T = 5.0
    case = box_case(
        mesh={"kind": "box", "size": [2.0, 2.0, 2.0], "cells": [2, 2, 2]},
        tumor={"proliferation_rate": 0.0, "initial": {"kind": "uniform", "value": 1.0}},
        ligand={"decay_rate": 0.0, "tumor_secretion": 0.0, "initial": L_T},
        receptor={"k_t": 0.0, "k_e": 0.0},
        time={"t_end": 200.0, "dt": 10.0},
    )
    sim = _sim(comm, case)
    cfg = sim.config
    R_T = cfg.receptor_total_nM("EGFR")
    Kd = cfg.pathways["EGFR"].receptor.k_off / cfg.pathways["EGFR"].receptor.k_on
    s = L_T + R_T + Kd
    C_eq = (s - math.sqrt(s * s - 4 * L_T * R_T)) / 2
    _run(sim)
    q = sim.qois.evaluate()
    assert q["occupancy_EGFR"] == pytest.approx(C_eq / R_T, rel=1e-8)
    assert q["mean_EGF_nM"] == pytest.approx(L_T - C_eq, rel=1e-8)


def test_uniform_trafficking_steady_state(comm):
    """Secretion, decay, binding, synthesis and internalization at steady state (u = 1)."""
    case = box_case(
        mesh={"kind": "box", "size": [2.0, 2.0, 2.0], "cells": [2, 2, 2]},
        tumor={"proliferation_rate": 0.0, "initial": {"kind": "uniform", "value": 1.0}},
        ligand={"decay_rate": "1e-4 1/s", "tumor_secretion": "2 nM/h", "initial": 0.0},
        time={"t_end": 2000.0, "dt": 50.0},
    )
    sim = _sim(comm, case)
    c = sim.config
    kon, koff, kt, ke, R0 = (
        c.pathways["EGFR"].receptor.k_on,
        c.pathways["EGFR"].receptor.k_off,
        c.pathways["EGFR"].receptor.k_t,
        c.pathways["EGFR"].receptor.k_e,
        c.receptor_total_nM("EGFR"),
    )
    s, kd = c.pathways["EGFR"].ligand.tumor_secretion, c.pathways["EGFR"].ligand.decay_rate

    def steady(L):  # closed forms at constant L (Lauffenburger & Linderman 1993)
        R = kt * R0 / (kt + kon * L * ke / (koff + ke))
        return R, kon * L * R / (koff + ke)

    lo, hi = 0.0, s / kd  # ligand balance s - kd L - ke C(L) = 0 is monotone in L
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if s - kd * mid - ke * steady(mid)[1] > 0 else (lo, mid)
    L_ss = 0.5 * (lo + hi)
    R_ss, C_ss = steady(L_ss)
    _run(sim)
    q = sim.qois.evaluate()
    assert q["mean_EGF_nM"] == pytest.approx(L_ss, rel=1e-8)
    assert q["occupancy_EGFR"] == pytest.approx(C_ss / (R_ss + C_ss), rel=1e-8)


def test_output_times_are_hit_and_steps_yield(comm):
    case = box_case(time={"t_end": 5.0, "dt": 2.0, "output_every": 1.5})
    sim = _sim(comm, case)
    infos = _run(sim)
    outs = [i.t for i in infos if i.is_output]
    assert np.allclose(outs, [1.5, 3.0, 4.5, 5.0], rtol=0, atol=1e-12)
    assert infos[-1].t == 5.0 and infos[-1].is_last
    assert all(i.newton_iterations >= 1 for i in infos)


def test_region_overrides_set_dg0_coefficients(comm):
    from mpi4py import MPI

    import ufl
    from dolfinx import fem

    case = box_case(
        mesh=split_box((4.0, 2.0, 2.0), (4, 2, 2), "grey", "white", 2.0),
        tumor={"motility": 1.0},
        regions={"white": {"tumor_motility": 5.0}},
    )
    sim = _sim(comm, case)
    D = sim.state.coefficients["tumor.motility"]
    total = comm.allreduce(fem.assemble_scalar(fem.form(D * ufl.dx)), op=MPI.SUM)
    assert total == pytest.approx(1.0 * 8.0 + 5.0 * 8.0)
    vols = sim.domain.region_volumes()
    assert vols == pytest.approx({"grey": 8.0, "white": 8.0})

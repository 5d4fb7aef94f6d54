"""Boundary conditions on named surfaces against closed forms (``[[boundary]]``; MPI-safe).

A box that is long in x is a slab: with a condition on the face x = 0 (``xmin``) and no-flux
faces elsewhere the solution depends on x only, so 1D closed forms apply. The ligand EGF of the
test case is the species (no tumor, so no secretion or binding): D C'' - k C = 0 at steady state.
Every error is an MPI-reduced integral, and each study refines the mesh (and the step) and
checks the observed order.
"""

import math

import numpy as np
import pytest
import ufl
from helpers import REPO, box_case

from tumorpde.config import config_from_dict, load_config
from tumorpde.simulation import Simulation  # loads the MPI/PETSc libraries (fem.backend) first

WIDTH = 0.25  # cross-section of the slab (mm)
AREA = WIDTH * WIDTH


def _slab(n: int, boundary: list[dict], *, length: float = 2.0, cross: int | None = None, **kw):
    """A slab case: ``n`` cells along x, EGF with diffusivity D and decay k, no tumor."""
    c = cross if cross is not None else max(1, n // 8)
    return box_case(
        mesh={"kind": "box", "size": [length, WIDTH, WIDTH], "cells": [n, c, c]},
        tumor={"proliferation_rate": 0.0, "initial": {"kind": "uniform", "value": 0.0}},
        ligand={
            "decay_rate": kw.get("k", 0.0),
            "tumor_secretion": 0.0,
            "initial": 0.0,
            "diffusivity": kw.get("D", 0.1),
        },
        time=kw.get("time", {"t_end": 1e6, "dt": 1e6}),
        boundary=boundary,
    )


def _l2_error(sim: Simulation, exact) -> float:
    """L2 norm of EGF - exact(x) over the slab (reduced over ranks)."""
    from mpi4py import MPI

    from dolfinx import fem

    x = ufl.SpatialCoordinate(sim.domain.mesh)
    e = sim.fields["EGF"] - exact(x[0])
    local = fem.assemble_scalar(fem.form(e * e * ufl.dx(metadata={"quadrature_degree": 4})))
    return math.sqrt(sim.comm.allreduce(local, op=MPI.SUM))


def _orders(errors: list[float]) -> list[float]:
    return [math.log2(errors[i] / errors[i + 1]) for i in range(len(errors) - 1)]


def _run(comm, case) -> tuple[Simulation, dict[str, float]]:
    sim = Simulation(config_from_dict(case), comm)
    list(sim.steps())
    return sim, sim.qoi_values()


def _global_max(sim: Simulation, name: str) -> float:
    from mpi4py import MPI

    f = sim.fields[name]
    n = f.function_space.dofmap.index_map.size_local
    return float(sim.comm.allreduce(f.x.array[:n].max(initial=-np.inf), op=MPI.MAX))


def test_robin_wall_steady_state_matches_cosh(comm):
    r"""Steady D C'' = k C, Robin wall -D C'(0) = -P (C(0) - C_e), no flux at x = L.

    C = A cosh(m (L - x)) with m = sqrt(k/D), A = P C_e / (P cosh(mL) + D m sinh(mL)); the
    integrated outward flux through the wall is -D A m sinh(mL) times the wall area.
    """
    D, k, P, Ce, L = 0.1, 0.4, 0.3, 5.0, 2.0
    m = math.sqrt(k / D)
    A = P * Ce / (P * math.cosh(m * L) + D * m * math.sinh(m * L))
    flux = -D * A * m * math.sinh(m * L) * AREA
    bc = [
        {
            "boundary": "xmin",
            "species": "EGF",
            "kind": "robin",
            "permeability": f"{P} mm/h",
            "external": f"{Ce} nM",
        }
    ]
    errors, flux_errors = [], []
    for n in (8, 16, 32):
        sim, q = _run(comm, _slab(n, bc, D=D, k=k))
        errors.append(_l2_error(sim, lambda x: A * ufl.cosh(m * (L - x))))
        flux_errors.append(abs(q["flux_EGF_xmin"] - flux))
        # the wall flux is the only sink besides decay: the discrete balance closes
        assert q["balance_EGF"] < 1e-9
        sim.close()
    assert errors[-1] < 0.02 * A * math.sqrt(2.0 * AREA)  # relative to the wall value
    assert all(o > 1.8 for o in _orders(errors)), (errors, _orders(errors))
    assert all(o > 1.8 for o in _orders(flux_errors)), (flux_errors, _orders(flux_errors))
    assert flux_errors[-1] < 2e-3 * abs(flux)


def test_fixed_value_matches_cosh_and_closes_the_balance(comm):
    """Steady D C'' = k C with C(0) = C_e: C = C_e cosh(m (L - x)) / cosh(mL).

    The outward flux at a fixed value is the reaction flux of the constrained nodes; it matches
    -D C'(0)... n and closes the ligand's balance.
    """
    D, k, Ce, L = 0.1, 0.4, 3.0, 2.0
    m = math.sqrt(k / D)
    flux = -D * Ce * m * math.tanh(m * L) * AREA  # outward: negative, the ligand enters
    bc = [{"boundary": "xmin", "species": "EGF", "kind": "value", "external": f"{Ce} nM"}]
    errors, flux_errors = [], []
    for n in (8, 16, 32):
        sim, q = _run(comm, _slab(n, bc, D=D, k=k))
        errors.append(_l2_error(sim, lambda x: Ce * ufl.cosh(m * (L - x)) / math.cosh(m * L)))
        flux_errors.append(abs(q["flux_EGF_xmin"] - flux))
        assert _global_max(sim, "EGF") == pytest.approx(Ce, rel=1e-10)  # the fixed nodes
        assert q["balance_EGF"] < 1e-9
        sim.close()
    assert all(o > 1.8 for o in _orders(errors)), (errors, _orders(errors))
    assert flux_errors[-1] < 0.01 * abs(flux)
    assert all(o > 1.5 for o in _orders(flux_errors)), (flux_errors, _orders(flux_errors))


def test_prescribed_flux_ramp_matches_mass_balance(comm):
    r"""Outward flux j(t) = -a t (a supply ramp from a table), no decay.

    Backward Euler takes j at t_{n+1}, so the discrete mass is exactly
    :math:`-A \sum_n j(t_{n+1}) \Delta t`; it converges at first order to the exact
    :math:`A a T^2 / 2`.
    """
    a, T, L = 0.5, 4.0, 2.0
    ramp = [["0 h", "0 nM*mm/h"], [f"{T} h", f"{-a * T} nM*mm/h"]]
    bc = [{"boundary": "xmin", "species": "EGF", "kind": "flux", "flux": ramp}]
    volume = L * AREA
    exact = AREA * a * T * T / 2
    errors = []
    for steps in (4, 8, 16):
        dt = T / steps
        case = _slab(8, bc, time={"t_end": T, "dt": dt})
        sim, q = _run(comm, case)
        mass = q["mean_EGF_nM"] * volume
        discrete = AREA * sum(a * (i + 1) * dt * dt for i in range(steps))
        assert mass == pytest.approx(discrete, rel=1e-9)
        assert q["flux_EGF_xmin"] == pytest.approx(-a * T * AREA, rel=1e-12)
        assert q["balance_EGF"] < 1e-9
        errors.append(abs(mass - exact))
        sim.close()
    assert all(abs(o - 1.0) < 0.05 for o in _orders(errors)), (errors, _orders(errors))


def test_fixed_value_ramp_matches_erfc_closed_form(comm):
    r"""Surface value rising linearly, C(0, t) = a t, on a (practically) semi-infinite slab.

    :math:`C = a t\,[(1 + 2\zeta^2)\,\mathrm{erfc}\,\zeta - 2\zeta e^{-\zeta^2}/\sqrt\pi]`,
    :math:`\zeta = x / (2\sqrt{D t})` (Carslaw & Jaeger 1959, Conduction of Heat in Solids,
    2nd ed., section 2.5). Mesh and step refined together: the error falls at first order
    (backward Euler) or better.
    """
    D, a, T, L = 0.1, 1.0, 2.0, 4.0
    ramp = [["0 h", "0 nM"], ["10 h", f"{10 * a} nM"]]
    bc = [{"boundary": "xmin", "species": "EGF", "kind": "value", "external": ramp}]
    z = 1.0 / (2.0 * math.sqrt(D * T))

    def exact(x):
        zeta = x * z
        erfc = 1.0 - ufl.erf(zeta)
        return (
            a * T * ((1 + 2 * zeta**2) * erfc - 2 * zeta * ufl.exp(-(zeta**2)) / math.sqrt(math.pi))
        )

    errors = []
    for n, steps in ((16, 8), (32, 16), (64, 32)):
        case = _slab(n, bc, length=L, cross=1, D=D, time={"t_end": T, "dt": T / steps})
        sim, q = _run(comm, case)
        assert _global_max(sim, "EGF") == pytest.approx(a * T, rel=1e-10)
        assert q["balance_EGF"] < 1e-9
        errors.append(_l2_error(sim, exact))
        sim.close()
    assert all(o > 0.9 for o in _orders(errors)), (errors, _orders(errors))


def test_interior_interface_is_rejected(comm):
    """A condition on an interface between regions (not an outer surface) stops before compute."""
    cfg = load_config(REPO / "benchmarks" / "cases" / "brain_csf_sink.toml")
    bad = cfg.boundary[0].model_copy(update={"boundary": "grey_white_interface"})
    cfg = cfg.model_copy(update={"boundary": [bad]})
    with pytest.raises(ValueError, match=r"grey_white_interface.*interior facets"):
        Simulation(cfg, comm)


def test_brain_csf_sink_runs_end_to_end(comm):
    """Robin CSF sinks for EGF on the brain's ventricle wall and pia run end to end.

    EGF leaves through both surfaces (outward fluxes > 0), its balance with the wall fluxes as
    sinks closes, and the tissue holds less EGF than the same case without the sinks.
    """
    cfg = load_config(REPO / "benchmarks" / "cases" / "brain_csf_sink.toml")
    levels = {}
    for label, case in (("sink", cfg), ("none", cfg.model_copy(update={"boundary": []}))):
        sim = Simulation(case, comm)
        list(sim.steps())
        q = sim.qoi_values()
        assert q["balance_EGF"] < 1e-9
        levels[label] = (q["mean_EGF_nM"], q["min_EGF"])
        if label == "sink":
            for wall in ("ventricle_wall", "outer"):
                assert f"flux_EGF_{wall}" in sim.qoi_names()
                assert q[f"flux_EGF_{wall}"] > 0.0  # C_ext = 0: the CSF drains the ligand
        sim.close()
    assert levels["sink"][0] < levels["none"][0]
    assert levels["sink"][1] < 0.8 * levels["none"][1]

r"""Verification suite: does tumorpde solve its equations right?

Every case runs the product's own code path (:func:`tumorpde.forms.build_forms`,
:class:`tumorpde.solver.NewtonSolver`, :func:`tumorpde.stepper.steps`) and compares with an
independent reference and returns result rows ``case, quantity, expected, measured, tolerance,
passed``:

* ``mms_box_space``, ``mms_ball_space``: manufactured solutions of the fully coupled system
  (chemotaxis, logistic growth, secretion, decay, binding, trafficking) on the unit cube and on a
  curved domain (a gmsh ball). The forcing is derived here with UFL from the *documented*
  equations (not from :mod:`tumorpde.physics`) and enters through ``build_forms(forcing=...)``.
  The exact fields are affine in time, so backward Euler is exact in time and the error is purely
  spatial: P1 rates L2 ≈ 2, H1 ≈ 1.
* ``mms_box_time``: the same system with fields nonlinear in time on a fixed mesh; the
  successive-difference rate ``log2(|u_dt - u_dt/2| / |u_dt/2 - u_dt/4|)`` isolates the temporal
  error of backward Euler (≈ 1), the only time scheme offered.
* ``conservation``: no-flux mass conservation (with chemotaxis), exact per-step global balance of
  tumor, ligand and receptors, pointwise receptor conservation.
* ``positivity``: min/max principle on the non-obtuse (Kuhn) box mesh with lumped mass.
* ``well_mixed``: binding equilibrium at constant ligand, ligand-depletion equilibrium and
  trafficking steady state (Lauffenburger & Linderman 1993) from a spatially uniform PDE run.
* ``steady_slab``, ``steady_sphere``, ``krogh``: steady diffusion-decay with a Dirichlet wall
  (cosh, sinh(r)/r and Krogh-cylinder Bessel solutions). The product has no Dirichlet
  conditions yet, so these solve the product's *ligand residual* with a DOLFINx Dirichlet
  condition added here: they verify the discretization of diffusion and decay, not the product's
  boundary handling.
* ``travelling_wave``: the Ablowitz-Zeppetella exact Fisher-KPP wave (space-time convergence of
  the nonlinear solve); ``fisher_speed``: Fisher-KPP front speed 2 sqrt(D rho) with the Bramson
  correction fitted and the O(dt) bias of backward Euler removed by Richardson extrapolation.
* ``partition``: the same coupled run on the whole communicator and on one rank.

Everything takes the communicator explicitly and reduces over it. ``tumorpde verify`` (see
:func:`register_cli`) prints the table on rank 0 and writes it as JSON.
"""

from __future__ import annotations

import itertools
import json
import math
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import tumorpde.backend  # noqa: F401  (before any dolfinx import)
from tumorpde.config import DEFAULT_PETSC, CaseConfig, config_from_dict, merge_sections
from tumorpde.forms import Forms, build_forms
from tumorpde.mesh import Domain, load_domain
from tumorpde.metrics import global_max, global_min
from tumorpde.solver import NewtonSolver, solver_for
from tumorpde.state import State, create_state
from tumorpde.stepper import StepFailedError, steps

__all__ = [
    "CASES",
    "QUICK",
    "Row",
    "ball_domain",
    "format_table",
    "register_cli",
    "run_cases",
    "write_json",
]

#: Receptors per cell that give R0 = 1 nM at the default carrying capacity (1e5 cells/mm^3).
_ONE_NM = 6.02214076e3

#: PETSc options of the verification runs: the product defaults with tight tolerances, so that
#: solver error stays far below the discretization errors and balances under test.
VERIFY_PETSC: dict[str, Any] = {
    **DEFAULT_PETSC,
    "snes_rtol": 1e-12,
    "snes_atol": 1e-14,
    "ksp_rtol": 1e-13,
    "ksp_atol": 1e-16,
}
#: The verified model is the single-pathway (EGF/EGFR) shorthand; roles -> species names.
SPECIES = ("tumor", "ligand", "receptor", "complex")
_NAME = {"tumor": "tumor", "ligand": "EGF", "receptor": "EGFR", "complex": "EGFR_complex"}


def _by_name(values: Any) -> Any:
    """Re-key a role-keyed mapping (or a callable returning one) by species name."""
    if values is None:
        return None
    if callable(values):
        return lambda t: {_NAME[k]: v for k, v in values(t).items()}
    return {_NAME[k]: v for k, v in values.items()}


_PREFIX = "tumorpde_verify_"


# ------------------------------------------------------------------------------------ results
@dataclass
class Row:
    """One verified quantity.

    Attributes:
        case: Case name.
        quantity: What is compared.
        expected: Reference value (theory or closed form).
        measured: Computed value.
        tolerance: Allowed deviation (see ``kind``).
        kind: ``"abs"``: |measured - expected| <= tolerance; ``"rel"``: relative to |expected|;
            ``"le"``: measured <= tolerance; ``"ge"``: measured >= tolerance.
        passed: Whether the comparison holds.
        data: Extra data for plots and reports (refinement tables etc.).
    """

    case: str
    quantity: str
    expected: float
    measured: float
    tolerance: float
    kind: str = "abs"
    passed: bool = False
    data: dict[str, Any] = field(default_factory=dict)


def _row(
    case: str,
    quantity: str,
    expected: float,
    measured: float,
    tolerance: float,
    kind: str = "abs",
    **data: Any,
) -> Row:
    m, e = float(measured), float(expected)
    if kind == "abs":
        ok = abs(m - e) <= tolerance
    elif kind == "rel":
        ok = abs(m - e) <= tolerance * abs(e)
    elif kind == "le":
        ok = m <= tolerance
    elif kind == "ge":
        ok = m >= tolerance
    else:  # pragma: no cover - programming error
        raise ValueError(kind)
    ok = ok and math.isfinite(m)
    return Row(case, quantity, e, m, float(tolerance), kind, bool(ok), dict(data))


def _rates(h: Sequence[float], e: Sequence[float]) -> list[float]:
    return [
        math.log(e[i] / e[i + 1]) / math.log(h[i] / h[i + 1]) if e[i + 1] > 0 else math.nan
        for i in range(len(e) - 1)
    ]


# ------------------------------------------------------------------------------------ set-up
def _case(**sections: Any) -> dict[str, Any]:
    """A nondimensional (internal units) case dictionary; keyword tables update the defaults."""
    case: dict[str, Any] = {
        "name": "verify",
        "mesh": {"kind": "box", "size": [1.0, 1.0, 1.0], "cells": [4, 4, 4]},
        "time": {"t_end": 1.0, "dt": 0.1},
        "tumor": {
            "proliferation_rate": 1.0,
            "motility": 0.5,
            "chemotaxis": 0.3,
            "initial": {"kind": "uniform", "value": 0.5},
        },
        "ligand": {
            "diffusivity": 1.0,
            "decay_rate": 0.5,
            "tumor_secretion": 0.4,
            "stromal_secretion": 0.2,
            "initial": 1.0,
        },
        "receptor": {
            "receptors_per_cell": _ONE_NM,
            "k_on": 0.8,
            "k_off": 0.6,
            "k_t": 0.5,
            "k_e": 0.3,
        },
        "solver": {"petsc": {k: v for k, v in VERIFY_PETSC.items() if DEFAULT_PETSC[k] != v}},
        "output": {"picture": False},
    }
    return merge_sections(case, sections)


@dataclass
class _Problem:
    cfg: CaseConfig
    domain: Domain
    state: State
    forms: Forms
    solver: NewtonSolver | None

    def destroy(self) -> None:
        if self.solver is not None:
            self.solver.destroy()


def _setup(
    cfg: CaseConfig,
    comm: Any,
    *,
    domain: Domain | None = None,
    forcing: Any = None,
    dt: float | None = None,
    solver: bool = True,
) -> _Problem:
    dom = domain if domain is not None else load_domain(cfg.mesh, comm)
    state = create_state(cfg, dom)
    forms = build_forms(cfg, state, cfg.time.dt if dt is None else dt, forcing=_by_name(forcing))
    newton = solver_for(state, forms, cfg.solver.options(), prefix=_PREFIX) if solver else None
    return _Problem(cfg, dom, state, forms, newton)


def _march(
    p: _Problem,
    t_end: float,
    dt: float,
    on_step: Callable[[float], None] | None = None,
) -> int:
    """Advance with the product's stepper; ``forms.constants['t']`` holds t_{n+1} in each solve.

    ``on_step(dt)`` is called after each converged solve, before the fields are accepted (so
    ``state.previous`` still holds the old values). Returns the number of steps.
    """
    assert p.solver is not None
    tc = p.forms.constants["t"]

    def set_dt(h: float) -> None:
        p.forms.dt.value = h
        tc.value = p.state.t + h

    def accept(t: float) -> None:
        if on_step is not None:
            on_step(float(p.forms.dt.value))
        p.state.accept()
        p.state.t = t

    n = 0
    for _ in steps(
        p.solver.solve,
        set_dt,
        accept,
        p.state.restore,
        t_end=t_end,
        dt=dt,
        stops=[t_end],
        max_retries=0,
        t0=p.state.t,
    ):
        n += 1
    return n


def _integral(comm: Any, expr: Any) -> float:
    from mpi4py import MPI

    from dolfinx import fem

    return float(comm.allreduce(fem.assemble_scalar(fem.form(expr)), op=MPI.SUM))


def _dx(msh: Any, degree: int = 4) -> Any:
    import ufl

    return ufl.Measure("dx", domain=msh, metadata={"quadrature_degree": degree})


def _set_fields(state: State, values: dict[str, Callable[[np.ndarray], np.ndarray]]) -> None:
    for s, fn in values.items():
        state.fields[_NAME[s]].interpolate(fn)
        state.fields[_NAME[s]].x.scatter_forward()
    for s in SPECIES:
        state.previous[_NAME[s]].x.array[:] = state.fields[_NAME[s]].x.array


# ------------------------------------------------------------------------------------ meshes
def ball_domain(comm: Any, radius: float, h: float) -> Domain:
    """A tetrahedral ball of ``radius`` meshed by gmsh (size ``h``) with one region "tissue".

    Args:
        comm: Communicator to distribute the mesh over (gmsh runs on rank 0).
        radius: Ball radius.
        h: Target element size.

    Returns:
        The domain (boundary vertices lie on the sphere).
    """
    import gmsh
    from dolfinx import mesh as dmesh
    from dolfinx.io import gmsh as gmshio

    owner = not gmsh.isInitialized()  # do not finalize a session someone else opened
    if owner:
        gmsh.initialize()
    try:
        gmsh.option.setNumber("General.Terminal", 0)
        if comm.rank == 0:
            gmsh.model.add("ball")
            gmsh.model.occ.addSphere(0.0, 0.0, 0.0, radius)
            gmsh.model.occ.synchronize()
            gmsh.model.addPhysicalGroup(3, [1], tag=1, name="tissue")
            gmsh.option.setNumber("Mesh.CharacteristicLengthMin", h)
            gmsh.option.setNumber("Mesh.CharacteristicLengthMax", h)
            gmsh.option.setNumber("Mesh.CharacteristicLengthFromCurvature", 0)
            gmsh.option.setNumber("Mesh.Optimize", 1)
            gmsh.model.mesh.generate(3)
        part = dmesh.create_cell_partitioner(dmesh.GhostMode.shared_facet, 2)
        md = gmshio.model_to_mesh(gmsh.model, comm, 0, gdim=3, partitioner=part)
    finally:
        if owner:
            gmsh.finalize()
        elif comm.rank == 0:
            gmsh.model.remove()
    msh = md.mesh
    tdim = msh.topology.dim
    msh.topology.create_connectivity(tdim - 1, tdim)
    ft = dmesh.meshtags(msh, tdim - 1, np.empty(0, dtype=np.int32), np.empty(0, dtype=np.int32))
    return Domain(msh, md.cell_tags, ft, {"tissue": 1}, {})


def _mapped_box_domain(
    comm: Any, lo: Sequence[float], hi: Sequence[float], cells: Sequence[int], mapping: Any
) -> Domain:
    """A Kuhn box mesh whose coordinates are mapped by ``mapping(X) -> x`` (3 x N arrays)."""
    from dolfinx import mesh as dmesh

    msh = dmesh.create_box(
        comm,
        [np.array(lo, dtype=float), np.array(hi, dtype=float)],
        list(cells),
        dmesh.CellType.tetrahedron,
        ghost_mode=dmesh.GhostMode.shared_facet,
    )
    x = msh.geometry.x
    x[:, :] = np.asarray(mapping(x.T.copy())).T
    tdim = msh.topology.dim
    im = msh.topology.index_map(tdim)
    cells_all = np.arange(im.size_local + im.num_ghosts, dtype=np.int32)
    ct = dmesh.meshtags(msh, tdim, cells_all, np.ones(cells_all.size, dtype=np.int32))
    msh.topology.create_connectivity(tdim - 1, tdim)
    ft = dmesh.meshtags(msh, tdim - 1, np.empty(0, dtype=np.int32), np.empty(0, dtype=np.int32))
    return Domain(msh, ct, ft, {"tissue": 1}, {})


def _h_eff(domain: Domain) -> float:
    """Effective mesh size: edge of the regular tetrahedron of mean cell volume."""
    from dolfinx import fem

    vol = _integral(domain.comm, fem.Constant(domain.mesh, 1.0) * _dx(domain.mesh, 1))
    return (6.0 * math.sqrt(2.0) * vol / domain.num_cells_global()) ** (1.0 / 3.0)


# ------------------------------------------------------------------------------------ MMS
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
        return {
            "tumor": ufl.diff(u, tv) - ufl.div(j_u) - rho * u * (1 - u),
            "ligand": ufl.diff(L, tv) - ufl.div(DL * ufl.grad(L)) - st * u - ss + kd * L + u * b,
            "receptor": ufl.diff(R, tv) - kt * (R0 - R) + b,
            "complex": ufl.diff(C, tv) - b + ke * C,
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


# ------------------------------------------------------------------------------------ invariants
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
    balances = {
        "tumor": (u - u0, tm.proliferation_rate * u * (1 - u)),
        "ligand": (
            L - L0,
            lg.tumor_secretion * u + lg.stromal_secretion - lg.decay_rate * L - u * b,
        ),
        "receptor+complex": (R + C - R0_ - C0, rc.k_t * (R0 - R) - rc.k_e * C),
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


# ------------------------------------------------------------------------------------ well mixed
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
    cfg, m = run(
        tumor={"initial": {"kind": "uniform", "value": 0.0}},
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
        tumor={"initial": {"kind": "uniform", "value": 0.0}},
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


# ------------------------------------------------------------------------------------ Fisher-KPP
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
    model-notes recipe (T = 200/rho, h = 0.1 sqrt(D/rho), dt = 0.1/rho; ~45 min serial);
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


# ------------------------------------------------------------------------------------ MPI
def _partition_qois(comm: Any) -> list[float]:
    import ufl

    cfg = config_from_dict(
        _case(
            mesh={"kind": "box", "size": [1.0] * 3, "cells": [7, 6, 5]},
            tumor={"initial": {"kind": "gaussian", "center": [0.3, 0.5, 0.5], "radius": 0.3}},
            ligand={"initial": 0.2},
        )
    )
    p = _setup(cfg, comm)
    p.state.fields[_NAME["ligand"]].interpolate(lambda x: 1.0 + np.sin(3 * x[0]) * np.cos(2 * x[1]))
    p.state.accept()
    _march(p, 1.0, 0.25)
    dx = _dx(p.domain.mesh, 2)
    out = []
    for s in SPECIES:
        f = p.state.fields[_NAME[s]]
        out += [
            _integral(comm, f * dx),
            math.sqrt(_integral(comm, ufl.inner(ufl.grad(f), ufl.grad(f)) * dx)),
        ]
        out += [global_min(f), global_max(f)]
    p.destroy()
    return out


def case_partition(comm: Any, full: bool = False) -> list[Row]:
    """The coupled run on all ranks against the same run on rank 0 alone."""
    from mpi4py import MPI

    here = _partition_qois(comm)
    ref = None
    if comm.size > 1:
        sub = comm.Split(0 if comm.rank == 0 else MPI.UNDEFINED, 0)
        if comm.rank == 0:
            ref = _partition_qois(sub)
            sub.Free()
        ref = comm.bcast(ref, root=0)
    else:
        ref = here
    dev = max(abs(a - b) / max(abs(b), 1e-12) for a, b in zip(here, ref, strict=True))
    return [
        _row(
            "partition",
            f"max rel. QoI difference, {comm.size} ranks vs 1",
            0.0,
            dev,
            1e-9,
            "le",
            qois=here,
            ranks=comm.size,
        )
    ]


# ------------------------------------------------------------------------------------ driver
#: Case name -> function(comm, full) -> rows.
CASES: dict[str, Callable[[Any, bool], list[Row]]] = {
    "mms_box_space": case_mms_box_space,
    "mms_box_time": case_mms_box_time,
    "mms_ball_space": case_mms_ball_space,
    "conservation": case_conservation,
    "positivity": case_positivity,
    "well_mixed": case_well_mixed,
    "steady_slab": case_steady_slab,
    "steady_sphere": case_steady_sphere,
    "krogh": case_krogh,
    "travelling_wave": case_travelling_wave,
    "fisher_speed": case_fisher_speed,
    "partition": case_partition,
}

#: The quick subset (CI): everything except the long Fisher-KPP front-speed run.
QUICK = tuple(c for c in CASES if c != "fisher_speed")


def run_cases(
    comm: Any,
    names: Iterable[str] | None = None,
    *,
    full: bool = False,
    progress: Callable[[str, float], None] | None = None,
) -> list[Row]:
    """Run verification cases.

    Args:
        comm: Communicator (collective: every rank must call this).
        names: Case names (default: :data:`QUICK`, or all of :data:`CASES` when ``full``).
        full: Use the finer refinement studies of the full version.
        progress: Called as ``progress(case, seconds)`` after each case.

    Returns:
        Result rows, identical on all ranks.

    Raises:
        KeyError: For an unknown case name.
    """
    selected = list(names) if names else list(CASES if full else QUICK)
    unknown = [n for n in selected if n not in CASES]
    if unknown:
        raise KeyError(f"unknown verification case(s) {unknown}; known: {', '.join(CASES)}")
    rows: list[Row] = []
    for name in selected:
        t0 = time.perf_counter()
        try:
            rows += CASES[name](comm, full)
        except StepFailedError as exc:  # raised alike on every rank (SNES reasons are global)
            rows.append(_row(name, f"solver failure: {exc}", 0.0, math.nan, 0.0))
        if progress is not None:
            progress(name, time.perf_counter() - t0)
    return rows


def format_table(rows: Sequence[Row]) -> str:
    """A plain-text table: case, quantity, expected, measured, tolerance, pass."""
    sym = {"abs": "±", "rel": "±rel ", "le": "≤ ", "ge": "≥ "}
    head = ("case", "quantity", "expected", "measured", "tolerance", "pass")
    body = [
        (
            r.case,
            r.quantity,
            f"{r.expected:.6g}",
            f"{r.measured:.6g}",
            f"{sym[r.kind]}{r.tolerance:.3g}",
            "PASS" if r.passed else "FAIL",
        )
        for r in rows
    ]
    widths = [max(len(x[i]) for x in [head, *body]) for i in range(len(head))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in [head, *body]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    n_fail = sum(not r.passed for r in rows)
    lines.append(f"{len(rows) - n_fail}/{len(rows)} passed")
    return "\n".join(lines)


def write_json(rows: Sequence[Row], path: str | Path, meta: dict[str, Any] | None = None) -> None:
    """Write the rows (and optional metadata) as JSON (call on one rank)."""
    doc = {"meta": meta or {}, "rows": [asdict(r) for r in rows]}
    Path(path).write_text(json.dumps(doc, indent=2, default=float, allow_nan=True))


# ------------------------------------------------------------------------------------ CLI
def _cmd_verify(args: Any) -> int:
    from mpi4py import MPI

    comm = MPI.COMM_WORLD

    def hook(exc_type: Any, exc: Any, tb: Any) -> None:
        sys.__excepthook__(exc_type, exc, tb)
        sys.stderr.flush()
        if comm.size > 1:
            comm.Abort(1)

    sys.excepthook = hook
    names = args.case or None
    if names:
        bad = [n for n in names if n not in CASES]
        if bad:
            if comm.rank == 0:
                print(f"error: unknown case(s) {bad}; known: {', '.join(CASES)}", file=sys.stderr)
            return 2

    def progress(name: str, sec: float) -> None:
        if comm.rank == 0:
            print(f"  {name}: {sec:.1f} s", flush=True)

    t0 = time.perf_counter()
    rows = run_cases(comm, names, full=args.full, progress=progress)
    wall = time.perf_counter() - t0
    if comm.rank == 0:
        print(format_table(rows))
        print(f"{comm.size} rank(s), {wall:.1f} s", flush=True)
        if args.json:
            meta = {
                "ranks": comm.size,
                "full": bool(args.full),
                "wall_s": wall,
                "cases": names or list(CASES if args.full else QUICK),
            }
            write_json(rows, args.json, meta)
    return 0 if all(r.passed for r in rows) else 1


def register_cli(subparsers: Any) -> None:
    """Add ``tumorpde verify [--quick|--full] [--json FILE] [--case NAME ...]``."""
    v = subparsers.add_parser("verify", help="run the verification suite (works under mpiexec)")
    level = v.add_mutually_exclusive_group()
    level.add_argument("--quick", action="store_true", help="CI subset (default)")
    level.add_argument("--full", action="store_true", help="all cases, finer refinement studies")
    v.add_argument("--json", type=Path, help="write the table as JSON")
    v.add_argument("--case", nargs="+", metavar="NAME", help=f"cases: {', '.join(CASES)}")
    v.set_defaults(func=_cmd_verify)

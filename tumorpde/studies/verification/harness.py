"""Shared set-up of the verification cases: result rows, the case template, problem set-up.

Every case module builds its runs from these pieces, so that each verified run goes through the
product's own code path: :func:`tumorpde.fem.forms.build_forms`,
:class:`tumorpde.fem.solver.NewtonSolver` and :func:`tumorpde.simulation.stepper.steps`. Also here:
the :class:`Row` every case returns, MPI-reduced integrals, and the test meshes (a gmsh ball, a
mapped Kuhn box).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import tumorpde.fem.backend  # noqa: F401  (before any dolfinx import)

import numpy as np

from tumorpde.config import DEFAULT_PETSC, CaseConfig
from tumorpde.fem.domain import Domain, load_domain
from tumorpde.fem.forms import Forms, build_forms
from tumorpde.fem.solver import NewtonSolver, solver_for
from tumorpde.fem.state import State, create_state
from tumorpde.model import build_model
from tumorpde.simulation.stepper import steps
from tumorpde.studies.cases import merge_sections

__all__ = ["SPECIES", "VERIFY_PETSC", "Row", "ball_domain"]

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
    model = build_model(cfg)
    state = create_state(model, dom)
    forms = build_forms(model, state, cfg.time.dt if dt is None else dt, forcing=_by_name(forcing))
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

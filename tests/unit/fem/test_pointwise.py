"""The split (flux matrices + pointwise kernel) assembly equals plain DOLFINx assembly.

A multi-pathway case with two regions, oxygen, matrix binding and drugs; residual and Jacobian
compared at a perturbed state (serial and under ``mpiexec -n 2``).
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import seeded_tumor, two_region_box

from tumorpde.config import config_from_dict
from tumorpde.fem.solver import NewtonSolver
from tumorpde.simulation import Simulation


def _case():
    return {
        "name": "pointwise_check",
        "mesh": two_region_box(),
        "time": {"t_end": "1 day", "dt": "6 h", "scheme": "bdf2"},
        "tumor": seeded_tumor(),
        "pathways": {
            "HER2": {},
            "EGFR": {},
            "VEGFR2": {"ligand": {"hypoxic_secretion": "0.1 nM/h"}},
            "TGFBR": {},
        },
        "oxygen": {"consumption": "2000 mmHg/h"},
        "regions": {
            "core": {"tumor": {"motility": "0.3 mm^2/day"}, "vessels": {"barrier": "brain"}}
        },
        "therapy": {
            "treatments": [
                {"drug": "trastuzumab", "regimen": "q3w"},
                {"drug": "lapatinib", "regimen": "daily_1250"},
                {"drug": "bevacizumab", "regimen": "q2w_5"},
            ]
        },
        "output": {"picture": False},
    }


def test_split_assembly_matches_dolfinx(comm):
    cfg = config_from_dict(_case())
    sim = Simulation(cfg, comm)
    for i, _ in enumerate(sim.steps()):  # move to a non-trivial state (doses, binding)
        if i == 1:
            break
    st = sim.state
    rng = np.random.default_rng(comm.rank)
    for f in st.unknowns():
        f.x.array[:] *= 1 + 0.05 * rng.random(f.x.array.size)
        f.x.scatter_forward()
    ref = NewtonSolver(sim.forms.residuals, st.unknowns(), cfg.solver.options(), prefix="ref_")
    frozen = sim.solver._frozen
    # ligand and drug diffusion are assembled once; their residual rows are matrix products
    assert frozen["blocks"] and frozen["rows"] and frozen["constant"] is not None
    assert sim.solver.flux_jacobian == "auto" and frozen["reuse"] is not None
    sim.solver.refresh_jacobian()  # the tumor flux blocks of the perturbed state
    _compare(sim.solver, ref, st.unknowns())
    # a changed static coefficient is picked up after refresh_static()
    key = next(k for k in st.coefficients if k.endswith(".diffusivity") and "VEGF" in k)
    st.coefficients[key].x.array[:] *= 3.0
    sim.solver.refresh_static()
    _compare(sim.solver, ref, st.unknowns())
    # with flux_jacobian="auto" the next Jacobian at another state keeps the tumor flux blocks
    # (exact pointwise blocks, stale flux blocks) until the next solve or refresh_jacobian()
    f = st.fields["tumor"]
    f.x.array[:] *= 1.2
    with pytest.raises(AssertionError):
        _compare(sim.solver, ref, st.unknowns())
    sim.solver.refresh_jacobian()
    _compare(sim.solver, ref, st.unknowns())
    ref.destroy()
    sim.solver.destroy()


def _compare(solver_a, solver_b, unknowns) -> None:
    """Residual, Jacobian and Jacobian action of two solvers at the same state agree."""
    from dolfinx.fem.petsc import assign

    out = []
    for solver in (solver_a, solver_b):
        x = solver.problem.x
        assign(unknowns, x)
        b = x.duplicate()
        solver.snes.computeFunction(x, b)
        A = solver.problem.A
        solver.snes.computeJacobian(x, A, A)
        y = x.duplicate()
        y.set(1.0)
        Ay = y.duplicate()
        A.mult(y, Ay)
        out.append((b, A, Ay))
    (b1, A1, Ay1), (b2, A2, Ay2) = out
    db = b1.copy()
    db.axpy(-1.0, b2)
    assert db.norm() <= 1e-11 * b2.norm()
    dA = A1.copy()
    dA.axpy(-1.0, A2)
    assert dA.norm() <= 1e-11 * A2.norm()
    dAy = Ay1.copy()
    dAy.axpy(-1.0, Ay2)
    assert dAy.norm() <= 1e-11 * Ay2.norm()


def test_covering_cells_cover_every_owned_node_with_few_cells(comm):
    from dolfinx import fem, mesh

    from tumorpde.fem.pointwise import _covering_cells

    msh = mesh.create_unit_cube(comm, 10, 10, 10)
    V = fem.functionspace(msh, ("Lagrange", 1))
    n = V.dofmap.index_map.size_local
    ncells = msh.topology.index_map(3).size_local + msh.topology.index_map(3).num_ghosts
    dofs = V.dofmap.list[:ncells]
    cover = _covering_cells(dofs, n)
    hit = np.zeros(dofs.max() + 1, dtype=bool)
    hit[dofs[cover].ravel()] = True
    assert hit[:n].all()
    # one evaluation point per vertex of each chosen cell: well under 4 per node
    assert cover.size < 0.5 * n

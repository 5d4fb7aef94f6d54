"""Static condensation of the pointwise species (``[solver] preconditioner = "condensed"``).

The node-block inverse must equal the dense inverse; with an exact solve of the Schur
complement the preconditioner is the exact inverse (one GMRES iteration per Newton iteration,
also on the VI's inactive-set operator); with the default inner GAMG field split the solution
of a case with many ODE species (receptors, complexes, bound drug) must be the default
solver's. Serial and under ``mpiexec -n 2``.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import owned_values, run_counting, seeded_tumor, two_region_box

from tumorpde.config import ConfigError, config_from_dict
from tumorpde.fem.condense import CondensationError, condensed_options, node_block_inverse
from tumorpde.simulation import Simulation

#: tight linear and Newton tolerances for the comparisons (both solvers)
TIGHT = {"ksp_rtol": 1e-11, "snes_rtol": 1e-11}


def _case(**solver):
    """Two regions, oxygen, the VEGFR2 pathway and bevacizumab.

    Matrix-bound ligand, receptor, complex, signal and drug-ligand complex are pointwise (5 ODE
    species); tumor, VEGF, oxygen and the drug are transported (4). The VI Newton clamps
    entries at 0 here.
    """
    case = {
        "name": "condense_check",
        "mesh": two_region_box(),
        "time": {"t_end": "12 h", "dt": "6 h", "scheme": "bdf2"},
        "tumor": seeded_tumor(),
        "pathways": {"VEGFR2": {"ligand": {"hypoxic_secretion": "0.1 nM/h"}}},
        "oxygen": {"consumption": "2000 mmHg/h"},
        "regions": {
            "core": {"tumor": {"motility": "0.3 mm^2/day"}, "vessels": {"barrier": "brain"}}
        },
        "therapy": {"treatments": [{"drug": "bevacizumab", "regimen": "q2w_5"}]},
        "output": {"picture": False},
    }
    if solver:
        case["solver"] = solver
    return case


def _run(comm, **solver):
    sim = Simulation(config_from_dict(_case(**solver)), comm)
    newton, linear = run_counting(sim)
    values = [owned_values(u) for u in sim.state.unknowns()]
    kinds = [s.kind for s in sim.state.species]
    ctx = sim.solver.condensed
    stats = dict(ctx.stats) if ctx is not None else None
    pc_type = sim.solver.snes.getKSP().getPC().getType()
    sim.solver.destroy()
    return values, kinds, newton, linear, stats, pc_type


def _max():
    from mpi4py import MPI

    return MPI.MAX


def _relative_difference(comm, ref, got) -> float:
    """Largest per-species difference, relative to the species' largest value (all ranks)."""
    worst = 0.0
    for a, b in zip(ref, got, strict=True):
        scale = comm.allreduce(float(np.abs(a).max(initial=0.0)), op=_max())
        diff = comm.allreduce(float(np.abs(a - b).max(initial=0.0)), op=_max())
        worst = max(worst, diff / max(scale, 1e-300))
    return worst


#: the default solver's run, per number of ranks (computed once)
_REFERENCE: dict[int, tuple] = {}


def _reference(comm):
    if comm.size not in _REFERENCE:
        _REFERENCE[comm.size] = _run(comm, petsc=TIGHT)
    return _REFERENCE[comm.size]


def test_condensed_matches_default_solution(comm):
    ref, kinds, newton_ref, _, _, pc_ref = _reference(comm)
    got, _, newton, linear, stats, pc = _run(comm, preconditioner="condensed", petsc=TIGHT)
    assert pc_ref == "bjacobi" and pc == "python"
    assert kinds.count("ode") == 5 and len(kinds) == 9
    assert stats is not None and stats["setups"] == newton and stats["applies"] >= linear
    assert newton == newton_ref
    assert _relative_difference(comm, ref, got) <= 1e-8


def test_exact_inner_solve_is_the_exact_inverse(comm):
    """LU on the Schur complement: GMRES converges in one iteration per Newton iteration."""
    ref = _reference(comm)[0]
    got, _, newton, linear, stats, _ = _run(
        comm, preconditioner="condensed", petsc={**TIGHT, "condensed_pc_type": "lu"}
    )
    assert linear == newton
    # the VI Newton handed the preconditioner its inactive-set operator (bounds active)
    assert comm.allreduce(stats["reduced"], op=_max()) > 0
    assert _relative_difference(comm, ref, got) <= 1e-8


def test_node_block_inverse_equals_dense_inverse():
    rng = np.random.default_rng(3)
    nodes, start = 7, 100
    # 3 species per node, one node with an entry removed (a VI-clamped entry): blocks of 3 and 2
    node = np.r_[np.arange(nodes), np.arange(nodes), np.arange(1, nodes)]
    m = node.size
    dense = np.zeros((m, m))
    same = node[:, None] == node[None, :]
    dense[same] = rng.normal(size=int(same.sum()))
    dense += 5.0 * np.eye(m)
    dense[0, 7] = 0.0  # a zero inside a block: a sparse node block
    rows, cols = np.nonzero(dense)
    indptr = np.r_[0, np.cumsum(np.bincount(rows, minlength=m))]
    ptr, idx, val = node_block_inverse(indptr, cols + start, dense[rows, cols], node, start)
    inv = np.zeros((m, m))
    for r in range(m):
        cs = idx[ptr[r] : ptr[r + 1]] - start
        assert np.all(np.diff(cs) > 0)  # sorted columns
        inv[r, cs] = val[ptr[r] : ptr[r + 1]]
    assert np.allclose(inv @ dense, np.eye(m), atol=1e-12)
    # an entry that couples two nodes is not pointwise
    dense[0, 1] = 1.0
    rows, cols = np.nonzero(dense)
    indptr = np.r_[0, np.cumsum(np.bincount(rows, minlength=m))]
    with pytest.raises(CondensationError, match="different nodes"):
        node_block_inverse(indptr, cols + start, dense[rows, cols], node, start)


def test_condensed_options():
    opts = {
        "pc_type": "python",
        "condensed_pc_type": "fieldsplit",
        "condensed_pc_fieldsplit_type": "multiplicative",
        "condensed_fieldsplit_transport_ksp_type": "preonly",
        "condensed_fieldsplit_transport_pc_type": "gamg",
        "condensed_fieldsplit_EGF_pc_type": "jacobi",
    }
    two = condensed_options(opts, ["tumor", "EGF"])
    assert two["condensed_fieldsplit_tumor_pc_type"] == "gamg"
    assert two["condensed_fieldsplit_EGF_pc_type"] == "jacobi"
    assert not any(k.startswith("condensed_fieldsplit_transport_") for k in two)
    # one transported species: no field split, its options become the inner solver's
    one = condensed_options(opts, ["tumor"])
    assert one["condensed_pc_type"] == "gamg" and "condensed_pc_fieldsplit_type" not in one
    assert "condensed_ksp_type" not in one
    # another inner preconditioner: the split options would never be read
    lu = condensed_options({**opts, "condensed_pc_type": "lu"}, ["tumor", "EGF"])
    assert lu == {"pc_type": "python", "condensed_pc_type": "lu"}


def test_conflicting_pc_type_is_a_config_error():
    with pytest.raises(ConfigError, match=r"condensed.*pc_type"):
        config_from_dict(_case(preconditioner="condensed", petsc={"pc_type": "ilu"}))
    with pytest.raises(ConfigError, match="pc_python_type"):
        config_from_dict(_case(preconditioner="condensed", petsc={"pc_python_type": "x.Y"}))

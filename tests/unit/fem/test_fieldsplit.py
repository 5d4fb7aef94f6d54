"""The field-split preconditioner (``[solver] preconditioner = "fieldsplit"``).

One split per transported species (GAMG) and one for the pointwise species (exact node-local
LU): the Newton solution must be the default solver's to the Newton tolerance, the index sets
must follow the ``kind="mpi"`` layout on every rank, and bad options must fail before any step.
Serial and under ``mpiexec -n 2``.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import owned_values, run_counting

from tumorpde.config import ConfigError, config_from_dict
from tumorpde.fem.solver import (
    SolverOptionsError,
    restrict_to_inactive,
    species_splits,
    transport_options,
)
from tumorpde.model.species import Species
from tumorpde.simulation import Simulation
from tumorpde.studies.cases import example_box_case


def _case(**solver):
    case = example_box_case(10.0, 6, "fieldsplit_check", time={"t_end": "24 h", "dt": "12 h"})
    case["output"] = {"picture": False}
    if solver:
        case["solver"] = solver
    return case


def _run(comm, **solver):
    sim = Simulation(config_from_dict(_case(**solver)), comm)
    newton, linear = run_counting(sim)
    values = [owned_values(u) for u in sim.state.unknowns()]
    pc = sim.solver.snes.getKSP().getPC()
    pc_type = pc.getType()
    sim.solver.destroy()
    return values, pc_type, newton, linear


def test_fieldsplit_matches_default_solution(comm):
    ref, pc_ref, _, _ = _run(comm)
    got, pc_fs, newton, lin = _run(comm, preconditioner="fieldsplit")
    assert pc_ref == "bjacobi" and pc_fs == "fieldsplit"
    assert newton > 0 and lin > 0
    for a, b in zip(ref, got, strict=True):
        scale = comm.allreduce(float(np.abs(a).max(initial=0.0)), op=_max())
        diff = comm.allreduce(float(np.abs(a - b).max(initial=0.0)), op=_max())
        # Newton stops at snes_rtol 1e-9 with linear solves to 1e-6: agreement far below the
        # change over a step, far above round-off
        assert diff <= 1e-6 * max(scale, 1e-30), (diff, scale)


def test_index_sets_follow_the_blocked_layout(comm):
    sim = Simulation(config_from_dict(_case(preconditioner="fieldsplit")), comm)
    try:
        pc = sim.solver.snes.getKSP().getPC()
        names = [s.name for s in sim.state.species]
        splits = species_splits(sim.state.species)
        assert list(splits) == ["tumor", "EGF", "local"]
        assert [names[i] for i in splits["local"]] == ["EGFR", "EGFR_complex"]
        sets = sim.solver._split_sets
        assert len(sets) == 3
        n = sim.state.V.dofmap.index_map.size_local
        rstart = sim.solver.problem.x.getOwnershipRange()[0]
        local = sets[2].getIndices()
        assert local.size == 2 * n
        assert local[0] == rstart + 2 * n and local[-1] == rstart + 4 * n - 1
        total = comm.allreduce(sum(int(s.getLocalSize()) for s in sets))
        assert total == sim.state.num_dofs_global()
        assert pc.getType() == "fieldsplit"
    finally:
        sim.solver.destroy()


def test_splits_restricted_to_the_inactive_set():
    """After a VI reset the splits are renumbered in the reduced (inactive-set) space."""
    sets = [np.arange(10, 14), np.arange(14, 20)]
    inactive = np.array([10, 12, 13, 15, 16, 19])  # 11, 14, 17, 18 active
    tumor, local = restrict_to_inactive(sets, inactive, start=4)
    assert tumor.tolist() == [4, 5, 6]
    assert local.tolist() == [7, 8, 9]
    none = restrict_to_inactive(sets, np.zeros(0, dtype=np.int64), start=0)
    assert [a.size for a in none] == [0, 0]


def test_decomposition_of_the_dm_gives_the_splits(comm):
    sim = Simulation(config_from_dict(_case(preconditioner="fieldsplit")), comm)
    try:
        names, sets, _ = sim.solver.snes.getDM().createFieldDecomposition()
        assert names == ["tumor", "EGF", "local"]
        ours = [iset.getIndices().tolist() for iset in sim.solver._split_sets]
        assert [iset.getIndices().tolist() for iset in sets] == ours
    finally:
        sim.solver.destroy()


def test_conflicting_pc_type_is_a_config_error():
    with pytest.raises(ConfigError, match=r"solver.*pc_type"):
        config_from_dict(_case(preconditioner="fieldsplit", petsc={"pc_type": "ilu"}))
    with pytest.raises(ConfigError, match="preconditioner"):
        config_from_dict(_case(preconditioner="amg"))


def test_missing_sub_preconditioner_fails_before_any_step(comm):
    cfg = config_from_dict(
        _case(preconditioner="fieldsplit", petsc={"fieldsplit_transport_pc_type": "hypre"})
    )
    with pytest.raises(SolverOptionsError, match=r"fieldsplit_tumor_pc_type.*hypre"):
        Simulation(cfg, comm)


def test_misspelt_split_option_is_reported(comm):
    cfg = config_from_dict(
        _case(preconditioner="fieldsplit", petsc={"fieldsplit_tumour_pc_type": "gamg"})
    )
    sim = Simulation(cfg, comm)
    try:
        with pytest.raises(SolverOptionsError, match="fieldsplit_tumour_pc_type"):
            next(iter(sim.steps()))
    finally:
        sim.solver.destroy()


def test_species_splits_and_transport_options():
    species = [
        Species("tumor", "pde", "1", "tumor"),
        Species("R", "ode", "nM", "receptor", "P"),
        Species("O", "algebraic", "mmHg", "oxygen"),
        Species("C", "ode", "nM", "complex", "P"),
    ]
    splits = species_splits(species)
    assert splits == {"tumor": [0], "O": [2], "local": [1, 3]}
    opts = transport_options(
        {"fieldsplit_transport_pc_type": "gamg", "fieldsplit_O_pc_type": "jacobi", "x": 1}, splits
    )
    assert opts == {"fieldsplit_tumor_pc_type": "gamg", "fieldsplit_O_pc_type": "jacobi", "x": 1}
    assert species_splits(species[:1]) == {"tumor": [0]}
    # no pointwise species: the local split's options would never be read
    only = transport_options(
        {"fieldsplit_transport_pc_type": "gamg", "fieldsplit_local_pc_type": "bjacobi"},
        species_splits(species[:1]),
    )
    assert only == {"fieldsplit_tumor_pc_type": "gamg"}


def _max():
    from mpi4py import MPI

    return MPI.MAX

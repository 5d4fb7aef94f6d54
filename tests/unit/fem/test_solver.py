"""The Newton solver's PETSc options stay with the case that set them.

DOLFINx 0.11 leaves the options a solver sets in the global PETSc database; a later solver with
the same prefix would inherit them (a comparison arm with ``snes_lag_jacobian`` changing the
next arm). Serial and under ``mpiexec -n 2``.
"""

from __future__ import annotations

# isort: off
import tumorpde.fem.backend  # noqa: F401
from petsc4py import PETSc

# isort: on

from helpers import box_case

from tumorpde.config import DEFAULT_PETSC, config_from_dict
from tumorpde.fem.solver import _release_options
from tumorpde.simulation import Simulation


def _sim(comm, petsc=None):
    case = box_case(time={"t_end": "12 h", "dt": "6 h"})
    if petsc:
        case["solver"] = {"petsc": petsc}
    return Simulation(config_from_dict(case), comm)


def _ilu_fill(sim) -> float:
    """Nonzeros of the block-Jacobi ILU factor, summed over ranks."""
    sub = sim.solver.snes.getKSP().getPC().getBJacobiSubKSP()[0]
    nz = sub.getPC().getFactorMatrix().getInfo()["nz_used"]
    return sim.comm.allreduce(nz)


def test_case_options_do_not_leak_into_the_next_solver(comm):
    first = _sim(comm, {"ksp_rtol": 1e-3, "sub_pc_factor_levels": 1})
    assert first.solver.snes.getKSP().getTolerances()[0] == 1e-3
    default = DEFAULT_PETSC["ksp_rtol"]
    for _ in first.steps():
        pass
    # options read lazily at the first solve (block-Jacobi sub-solvers) still reached them
    fill = [_ilu_fill(first)]
    second = _sim(comm)
    assert second.solver.snes.getKSP().getTolerances()[0] == default  # the default again
    for _ in second.steps():
        pass
    fill.append(_ilu_fill(second))
    assert fill[0] > 1.2 * fill[1]  # ILU(1) in the first, ILU(0) in the second
    first.solver.destroy()
    second.solver.destroy()
    db = PETSc.Options()
    assert not db.hasName("tumorpde_ksp_rtol")
    assert not db.hasName("tumorpde_sub_pc_factor_levels")


def test_options_from_the_environment_survive(comm):
    db = PETSc.Options()
    _release_options(db, "tumorpde_")  # solvers of earlier tests give their options back
    db.setValue("tumorpde_snes_max_it", "40")  # as from PETSC_OPTIONS, before any solver
    try:
        sim = _sim(comm, {"snes_max_it": 30})
        assert sim.solver.snes.getTolerances()[3] == 30
        sim.solver.destroy()
        assert db.getString("tumorpde_snes_max_it") == "40"
    finally:
        db.delValue("tumorpde_snes_max_it")

"""Batched JIT compilation (tumorpde.fem.jit): one C module for many forms, same values."""

import tumorpde.fem.backend  # noqa: F401  (before any dolfinx import)
from mpi4py import MPI

import numpy as np
import pytest
import ufl
from dolfinx import fem, jit, mesh

from tumorpde.fem.jit import batch_compiled, compile_forms
from tumorpde.studies.bench import _jit_probe


def _total(form: fem.Form) -> float:
    return float(MPI.COMM_WORLD.allreduce(fem.assemble_scalar(form), op=MPI.SUM))


@pytest.fixture
def problem():
    comm = MPI.COMM_WORLD
    msh = mesh.create_unit_cube(comm, 4, 4, 4)
    V = fem.functionspace(msh, ("Lagrange", 1))
    u = fem.Function(V)
    u.interpolate(lambda x: x[0])
    c = fem.Constant(msh, 3.0)
    fdim = msh.topology.dim - 1
    right = mesh.locate_entities_boundary(msh, fdim, lambda x: np.isclose(x[0], 1.0))
    tags = mesh.meshtags(msh, fdim, right, np.full(right.size, 7, dtype=np.int32))
    ds = ufl.Measure("ds", domain=msh, subdomain_data=tags)
    dx = ufl.Measure("dx", domain=msh)
    # exact values: int c x dx = 3/2, int x^2 dx = 1/3, int_{x=1} c u ds = 3, int 1 dx = 1
    forms = [c * u * dx, u * u * dx, c * u * ds(7), fem.Constant(msh, 1.0) * dx]
    return forms, [1.5, 1.0 / 3.0, 3.0, 1.0], comm


def test_one_module_for_all_forms_with_the_same_values(problem, shared_tmp):
    forms, exact, comm = problem
    with _jit_probe(str(shared_tmp)) as stats:
        compiled = compile_forms([*forms, None, forms[0]], comm)
    modules = comm.bcast(len(list(shared_tmp.glob("libffcx_*.c.cached"))), root=0)
    assert modules == 1  # one compiler run for the four distinct forms
    assert stats["batches"] == 1 and stats["calls"] == 0
    assert compiled[4] is None
    values = [_total(f) for f in compiled[:4]]
    assert np.allclose(values, exact, rtol=1e-12)
    assert np.isclose(_total(compiled[5]), exact[0], rtol=1e-12)


def test_forms_outside_the_batch_compile_as_usual(problem, shared_tmp):
    forms, exact, comm = problem
    original = jit.ffcx_jit
    with _jit_probe(str(shared_tmp)) as stats:
        with batch_compiled(forms[:2], comm):
            inside = fem.form(forms[0])
            other = fem.form(forms[2])  # not in the batch: its own module
        warm = compile_forms(forms[:2], comm)  # the batch again: cached, nothing compiled
    assert jit.ffcx_jit is original  # the lookup is gone after the block
    assert stats["calls"] == 1 and stats["batches"] == 2
    modules = comm.bcast(len(list(shared_tmp.glob("libffcx_*.c.cached"))), root=0)
    assert modules == 2
    assert np.isclose(_total(inside), exact[0], rtol=1e-12)
    assert np.isclose(_total(other), exact[2], rtol=1e-12)
    assert np.isclose(_total(warm[1]), exact[1], rtol=1e-12)

"""Fixtures and MPI hooks. The suite runs serially and under ``mpiexec -n 2``.

MPI is imported only when a test asks for ``comm`` (or the run is under ``mpiexec``), so the
pure tests (config, library, model, stepper) run without MPI or DOLFINx. Shared helpers live in
``tests/helpers.py``.
"""

from __future__ import annotations

import gc
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("PYVISTA_OFF_SCREEN", "true")


def _world() -> Any:
    import tumorpde.fem.backend  # noqa: F401  (the wheel's MPI library before mpi4py/dolfinx)
    from mpi4py import MPI

    return MPI.COMM_WORLD


def _launched_size() -> int:
    """Ranks of the job as the launcher tells them (no MPI import for a serial run)."""
    for var in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MPI_LOCALNRANKS"):
        if var in os.environ:
            return int(os.environ[var])
    return 1


def pytest_configure(config: Any) -> None:
    # Under mpiexec every rank runs pytest: give each its own tmp_path root so they do not
    # clean up each other's directories.
    if _launched_size() > 1 and not config.option.basetemp:
        comm = _world()
        config.option.basetemp = tempfile.mkdtemp(prefix=f"pytest-rank{comm.rank}-")


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    if _launched_size() > 1 and _world().size > 1:
        skip = pytest.mark.skip(reason="serial-only test (run without mpiexec)")
        for item in items:
            if "serial" in item.keywords:
                item.add_marker(skip)


@pytest.fixture
def comm() -> Any:
    return _world()


@pytest.fixture
def shared_tmp(comm: Any):
    """A temporary directory that is the same on every rank (pytest's tmp_path is not)."""
    path = tempfile.mkdtemp(prefix="tumorpde-test-") if comm.rank == 0 else None
    path = comm.bcast(path, root=0)
    yield Path(path)
    comm.barrier()
    if comm.rank == 0:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(autouse=True)
def _collect():
    """Collect garbage collectively after each test that used MPI (DOLFINx objects)."""
    yield
    if "mpi4py.MPI" in sys.modules:
        gc.collect()
        _world().barrier()

"""Shared fixtures. The suite runs serially and under ``mpiexec -n 2``: assert on reduced values."""

from __future__ import annotations

import gc
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("PYVISTA_OFF_SCREEN", "true")

# isort: off
import tumorpde.backend  # noqa: F401  (the wheel's MPI library before mpi4py/dolfinx)
from mpi4py import MPI

# isort: on
from tumorpde.config import example_box_case, merge_sections

REPO = Path(__file__).resolve().parents[1]


def pytest_configure(config: Any) -> None:
    # Under mpiexec every rank runs pytest: give each its own tmp_path root so they do not
    # clean up each other's directories.
    comm = MPI.COMM_WORLD
    if comm.size > 1 and not config.option.basetemp:
        config.option.basetemp = tempfile.mkdtemp(prefix=f"pytest-rank{comm.rank}-")


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    if MPI.COMM_WORLD.size > 1:
        skip = pytest.mark.skip(reason="serial-only test (run without mpiexec)")
        for item in items:
            if "serial" in item.keywords:
                item.add_marker(skip)


@pytest.fixture
def comm() -> MPI.Comm:
    return MPI.COMM_WORLD


@pytest.fixture
def shared_tmp(comm: MPI.Comm):
    """A temporary directory that is the same on every rank (pytest's tmp_path is not)."""
    path = tempfile.mkdtemp(prefix="tumorpde-test-") if comm.rank == 0 else None
    path = comm.bcast(path, root=0)
    yield Path(path)
    comm.barrier()
    if comm.rank == 0:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(autouse=True)
def _collect(comm: MPI.Comm):
    yield
    gc.collect()
    comm.barrier()


def box_case(**sections: Any) -> dict[str, Any]:
    """A small valid case dictionary on a box; keyword tables replace/extend the defaults."""
    case = example_box_case(
        4.0,
        4,
        "test_box",
        time={"t_end": 4.0, "dt": 1.0},
        tumor={
            "proliferation_rate": "0.5 1/day",
            "motility": "0.1 mm^2/day",
            "initial": {"kind": "gaussian", "center": [2.0, 2.0, 2.0], "radius": 1.0},
        },
        ligand={"diffusivity": "5e-7 cm^2/s", "stromal_secretion": 0.0},
    )
    return merge_sections(case, sections)


def split_box(
    size: tuple[float, float, float],
    cells: tuple[int, int, int],
    left: str,
    right: str,
    split_x: float,
) -> dict[str, Any]:
    """A box mesh table with two regions: ``left`` for x < ``split_x``, ``right`` beyond it."""
    return {
        "kind": "box",
        "size": list(size),
        "cells": list(cells),
        "default_region": left,
        "regions": [{"name": right, "min": [split_x, 0.0, 0.0], "max": list(size)}],
    }

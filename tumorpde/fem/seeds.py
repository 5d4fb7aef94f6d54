"""Seed check on the loaded mesh: delivered against requested initial mass and peak per seed.

Runs the numpy kernels of :mod:`tumorpde.config.seedcheck` on each rank's owned cells of the
mesh the run uses (after any ``[[mesh.refine]]``) and reduces them over the mesh communicator:
the delivered mass is the exact integral of the seed's P1 interpolant (the nodal values the run
starts from), the peak its largest nodal value, the requested mass the profile's integral over
the domain (analytic on a box, quadrature on a mesh file). Every rank gets the same reports, so
a refusal is raised on all ranks alike.
"""

from __future__ import annotations

import math

import tumorpde.fem.backend  # noqa: F401  (before any dolfinx import)

import numpy as np

from tumorpde.config import CaseConfig
from tumorpde.config.schema import BoxMesh, GaussianSeed
from tumorpde.config.seedcheck import (
    SeedReport,
    gaussian_mass_box,
    h_near,
    seed_report,
    seed_sums,
)
from tumorpde.fem.domain import Domain

__all__ = ["owned_cell_coordinates", "seed_reports"]


def owned_cell_coordinates(domain: Domain) -> np.ndarray:
    """Vertex coordinates (mm) of this rank's owned cells, shape (m, 4, 3)."""
    msh = domain.mesh
    n = msh.topology.index_map(msh.topology.dim).size_local
    dofs = msh.geometry.dofmaps[0][:n]
    return msh.geometry.x[dofs]


def seed_reports(cfg: CaseConfig, domain: Domain) -> list[SeedReport]:
    """Delivered against requested mass and peak of every Gaussian seed (collective).

    Args:
        cfg: The case (seeds, ``tumor.initial_tolerance`` for the needed h).
        domain: The loaded domain.

    Returns:
        One report per Gaussian seed, the same on every rank.
    """
    from mpi4py import MPI

    comm = domain.comm
    cells = owned_cell_coordinates(domain)
    mesh = cfg.mesh
    box = isinstance(mesh, BoxMesh)
    out = []
    for where, seed in cfg.tumor.seed_list():
        if not isinstance(seed, GaussianSeed):
            continue
        local = seed_sums(seed, cells, quadrature=not box)
        sums = {
            "mass": comm.allreduce(local["mass"], op=MPI.SUM),
            "requested": comm.allreduce(local["requested"], op=MPI.SUM),
            "peak": comm.allreduce(local["peak"], op=MPI.MAX),
            "gap": comm.allreduce(local["gap"], op=MPI.MIN),
        }
        gap = sums["gap"] if math.isfinite(sums["gap"]) else 0.0
        h = comm.allreduce(h_near(seed, cells, gap), op=MPI.MAX)
        if isinstance(mesh, BoxMesh):
            requested = gaussian_mass_box(seed, mesh.size)
        else:
            requested = sums["requested"]
        out.append(seed_report(where, seed, sums, requested, h, cfg.tumor.initial_tolerance))
    return out

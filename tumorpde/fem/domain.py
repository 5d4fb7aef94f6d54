"""Mesh and domain: load or build a partitioned mesh with named tissue regions and boundaries.

A :class:`Domain` carries the DOLFINx mesh, its cell and facet tags, and the maps from region and
boundary *names* to tags; the rest of tumorpde refers to regions by name only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import tumorpde.fem.backend  # noqa: F401  (before any dolfinx import)

import numpy as np

if TYPE_CHECKING:
    from mpi4py import MPI

    import dolfinx.mesh

    from tumorpde.config import BoxMesh, FileMesh

__all__ = ["Domain", "load_domain"]


@dataclass
class Domain:
    """A partitioned mesh with named regions.

    Attributes:
        mesh: The DOLFINx mesh (coordinates in mm).
        cell_tags: Region tag of every local cell (owned and ghost).
        facet_tags: Boundary tags of exterior facets (may be empty).
        regions: Region name -> cell tag.
        boundaries: Boundary name -> facet tag.
    """

    mesh: dolfinx.mesh.Mesh
    cell_tags: dolfinx.mesh.MeshTags
    facet_tags: dolfinx.mesh.MeshTags
    regions: dict[str, int]
    boundaries: dict[str, int]

    @property
    def comm(self) -> MPI.Comm:
        """The mesh communicator."""
        return self.mesh.comm

    def num_cells_global(self) -> int:
        """Number of cells over all ranks."""
        return int(self.mesh.topology.index_map(self.mesh.topology.dim).size_global)

    def num_vertices_global(self) -> int:
        """Number of vertices over all ranks."""
        return int(self.mesh.topology.index_map(0).size_global)

    def region_volumes(self) -> dict[str, float]:
        """Volume (mm³) of every region, reduced over ranks."""
        from mpi4py import MPI

        import ufl
        from dolfinx import fem

        dx = ufl.Measure("dx", domain=self.mesh, subdomain_data=self.cell_tags)
        one = fem.Constant(self.mesh, 1.0)
        return {
            name: self.comm.allreduce(fem.assemble_scalar(fem.form(one * dx(tag))), op=MPI.SUM)
            for name, tag in self.regions.items()
        }

    def region_of_point(self, point: np.ndarray) -> str | None:
        """Name of the region containing ``point`` (same answer on all ranks), or None."""
        from mpi4py import MPI

        from dolfinx import geometry

        tdim = self.mesh.topology.dim
        n_owned = self.mesh.topology.index_map(tdim).size_local
        tree = geometry.bb_tree(self.mesh, tdim, entities=np.arange(n_owned, dtype=np.int32))
        pts = np.asarray(point, dtype=float).reshape(1, 3)
        coll = geometry.compute_colliding_cells(
            self.mesh, geometry.compute_collisions_points(tree, pts), pts
        )
        tag = -1
        if len(coll.links(0)):
            cell = coll.links(0)[0]
            idx = np.flatnonzero(self.cell_tags.indices == cell)
            tag = int(self.cell_tags.values[idx[0]]) if idx.size else -1
        tag = self.comm.allreduce(tag, op=MPI.MAX)
        names = {t: n for n, t in self.regions.items()}
        return names.get(tag)


def _partitioner() -> Callable:
    from dolfinx import mesh

    # the singledispatch overload for a GhostMode: (mode, max_facet_to_cell_links); mypy sees
    # only the base signature (partitioner, mode, max_facet_to_cell_links)
    return mesh.create_cell_partitioner(mesh.GhostMode.shared_facet, 2)  # type: ignore[call-arg]


def _box(cfg: BoxMesh, comm: MPI.Comm) -> Domain:
    from dolfinx import mesh

    msh = mesh.create_box(
        comm,
        [np.zeros(3), np.array(cfg.size, dtype=float)],
        list(cfg.cells),
        mesh.CellType.tetrahedron,
        ghost_mode=mesh.GhostMode.shared_facet,
    )
    tdim = msh.topology.dim
    names = cfg.region_names()
    regions = {n: i + 1 for i, n in enumerate(names)}
    im = msh.topology.index_map(tdim)
    cells = np.arange(im.size_local + im.num_ghosts, dtype=np.int32)
    mid = mesh.compute_midpoints(msh, tdim, cells)
    values = np.full(cells.size, regions[cfg.default_region], dtype=np.int32)
    for r in cfg.regions:
        inside = np.all((mid >= np.array(r.min)) & (mid <= np.array(r.max)), axis=1)
        values[inside] = regions[r.name]
    ct = mesh.meshtags(msh, tdim, cells, values)
    ct.name = "regions"

    msh.topology.create_connectivity(tdim - 1, tdim)
    bf = mesh.exterior_facet_indices(msh.topology)
    fmid = mesh.compute_midpoints(msh, tdim - 1, bf)
    boundaries: dict[str, int] = {}
    fvals = np.zeros(bf.size, dtype=np.int32)
    tol = 1e-9 * max(cfg.size)
    for axis, label in enumerate("xyz"):
        for side, value in (("min", 0.0), ("max", cfg.size[axis])):
            tag = len(boundaries) + 1
            boundaries[f"{label}{side}"] = tag
            fvals[np.isclose(fmid[:, axis], value, atol=tol) & (fvals == 0)] = tag
    ft = mesh.meshtags(msh, tdim - 1, bf.astype(np.int32), fvals)
    ft.name = "boundaries"
    return Domain(msh, ct, ft, regions, boundaries)


def _file(cfg: FileMesh, comm: MPI.Comm) -> Domain:
    from dolfinx.io import gmsh as gmshio

    from tumorpde.meshing.gmsh_session import gmsh_session, sigint_preserved

    # rank 0 reads: in a session of ours, so that gmsh's log stays off stdout (read_from_msh
    # reuses it); SIGINT is restored, which gmsh.initialize() resets and finalize() does not undo
    with gmsh_session() if comm.rank == 0 else sigint_preserved():
        md = gmshio.read_from_msh(str(cfg.path), comm, 0, gdim=3, partitioner=_partitioner())
    msh = md.mesh
    if cfg.scale_to_mm != 1.0:
        msh.geometry.x[:] *= cfg.scale_to_mm
    tdim = msh.topology.dim
    regions = {n: g.tag for n, g in md.physical_groups.items() if g.dim == tdim}
    boundaries = {n: g.tag for n, g in md.physical_groups.items() if g.dim == tdim - 1}
    if md.cell_tags is None or not regions:
        raise ValueError(f"{cfg.path}: no named 3D physical groups (tissue regions)")
    ct = md.cell_tags
    ct.name = "regions"
    ft = md.facet_tags
    msh.topology.create_connectivity(tdim - 1, tdim)
    if ft is None:
        from dolfinx import mesh

        ft = mesh.meshtags(msh, tdim - 1, np.empty(0, dtype=np.int32), np.empty(0, dtype=np.int32))
    ft.name = "boundaries"
    return Domain(msh, ct, ft, regions, boundaries)


def load_domain(cfg: BoxMesh | FileMesh, comm: MPI.Comm) -> Domain:
    """Build or read the mesh of a case, partitioned over ``comm``.

    Args:
        cfg: The case's mesh section.
        comm: Communicator the mesh is distributed over.

    Returns:
        The domain with named regions (coordinates in mm), refined in the balls of
        ``cfg.refine`` if any.
    """
    from tumorpde.config import BoxMesh

    domain = _box(cfg, comm) if isinstance(cfg, BoxMesh) else _file(cfg, comm)
    if cfg.refine:
        from tumorpde.fem.refine import refine_domain
        from tumorpde.meshing.zones import RefineZone

        zones = [RefineZone(z.center, z.radius, z.size) for z in cfg.refine]
        domain, _ = refine_domain(domain, zones)
    return domain

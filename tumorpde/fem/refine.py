"""Local refinement of a distributed domain around lesions, keeping region and boundary tags.

:func:`refine_domain` bisects, level by level, the edges that cross a
:class:`~tumorpde.meshing.zones.RefineZone` and are longer than its size (DOLFINx's
Plaza refinement of marked edges, in parallel), and carries the cell and facet tags to the
children (owned children from the parent, ghosts by a scatter; in parallel the result is
repartitioned with a shared-facet ghost layer). Bisection does not move any vertex, so every
region volume and boundary area is the parent's to rounding. :func:`gather_mesh_arrays` collects
the result on rank 0 as :class:`~tumorpde.meshing.msh.MeshArrays`; ``tumorpde mesh refine`` is
:func:`tumorpde.fem.refine_file.refine_msh_file` (read, refine, write ``.msh`` + JSON sidecar).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import tumorpde.fem.backend  # noqa: F401  (before any dolfinx import)

import numpy as np

if TYPE_CHECKING:
    import dolfinx.mesh

    from tumorpde.fem.domain import Domain
    from tumorpde.meshing.msh import MeshArrays
    from tumorpde.meshing.zones import RefineZone

__all__ = ["RefineReport", "gather_mesh_arrays", "refine_domain"]

#: Bisection rounds at most (each halves the longest marked edges: 2^12 = 4096x shorter).
MAX_LEVELS = 12


@dataclass
class RefineReport:
    """What :func:`refine_domain` did (global counts, same on all ranks).

    Attributes:
        cells_before: Cells of the input mesh.
        cells_after: Cells of the refined mesh.
        edges_split: Edges marked in each round.
    """

    cells_before: int
    cells_after: int
    edges_split: list[int] = field(default_factory=list)


def _marked_edges(domain: Domain, zones: list[RefineZone]) -> np.ndarray:
    from dolfinx import mesh

    from tumorpde.meshing.zones import edges_to_split

    msh = domain.mesh
    top = msh.topology
    top.create_entities(1)
    top.create_connectivity(1, top.dim)
    n_edges = top.index_map(1).size_local + top.index_map(1).num_ghosts
    geo = mesh.entities_to_geometry(msh, 1, np.arange(n_edges, dtype=np.int32))
    x = msh.geometry.x
    return np.flatnonzero(edges_to_split(x[geo[:, 0]], x[geo[:, 1]], zones)).astype(np.int32)


def _transfer_tags(
    old: dolfinx.mesh.Mesh,
    ct: dolfinx.mesh.MeshTags,
    ft: dolfinx.mesh.MeshTags,
    new: dolfinx.mesh.Mesh,
    parent_cell: np.ndarray,
    parent_facet: np.ndarray,
) -> tuple[dolfinx.mesh.MeshTags, dolfinx.mesh.MeshTags]:
    """Cell and facet tags of the refined mesh, ghosts included.

    ``dolfinx.mesh.transfer_meshtag`` refuses ghosted meshes, and ``refine`` reports parents of
    owned cells only: the owned children inherit here, then the values travel to the ghosts
    (facets: summed with a count on the owner, so both sides of an interface agree).
    """
    from dolfinx import la, mesh

    tdim = old.topology.dim
    nf = tdim + 1  # facets per simplex cell

    def _dense(tags: dolfinx.mesh.MeshTags, imap: object) -> np.ndarray:
        n = imap.size_local + imap.num_ghosts  # type: ignore[attr-defined]
        out = np.full(n, -1, dtype=np.int64)
        out[tags.indices] = tags.values
        return out

    cmap = new.topology.index_map(tdim)
    n_own = cmap.size_local
    n_all = n_own + cmap.num_ghosts
    # refine's parent arrays follow the children as created; the mesh reorders its cells:
    # original_cell_index (global creation index) minus this rank's offset undoes it
    offset = new.comm.exscan(len(parent_cell)) or 0
    order = np.asarray(new.topology.original_cell_index[:n_own], dtype=np.int64) - offset
    parent_cell = np.asarray(parent_cell)[order]
    cv = la.vector(cmap, 1)
    cv.array[:] = -1.0
    cv.array[:n_own] = _dense(ct, old.topology.index_map(tdim))[parent_cell]
    cv.scatter_forward()
    cvals = np.rint(cv.array[:n_all]).astype(np.int32)
    cells = np.flatnonzero(cvals >= 0).astype(np.int32)
    ct1 = mesh.meshtags(new, tdim, cells, cvals[cells])

    old.topology.create_connectivity(tdim, tdim - 1)
    new.topology.create_connectivity(tdim, tdim - 1)
    of = old.topology.connectivity(tdim, tdim - 1).array.reshape(-1, nf)
    cf = new.topology.connectivity(tdim, tdim - 1).array.reshape(-1, nf)
    pf = np.asarray(parent_facet).reshape(-1, nf)[order]
    rows, j = np.nonzero(pf >= 0)
    ptag = _dense(ft, old.topology.index_map(tdim - 1))[of[parent_cell[rows], pf[rows, j]]]
    sel = ptag >= 0
    child = cf[rows[sel], j[sel]]
    fmap = new.topology.index_map(tdim - 1)
    total, count = la.vector(fmap, 1), la.vector(fmap, 1)
    total.array[:] = 0.0
    count.array[:] = 0.0
    np.add.at(total.array, child, ptag[sel].astype(float))
    np.add.at(count.array, child, 1.0)
    for v in (total, count):
        v.scatter_reverse(la.InsertMode.add)
        v.scatter_forward()
    facets = np.flatnonzero(count.array > 0).astype(np.int32)
    fvals = np.rint(total.array[facets] / count.array[facets]).astype(np.int32)
    ft1 = mesh.meshtags(new, tdim - 1, facets, fvals)
    return ct1, ft1


def _owned_entities(domain: Domain) -> tuple[np.ndarray, ...]:
    """Owned vertices (coordinates), cells and tagged facets in global vertex numbers."""
    from dolfinx import mesh

    msh = domain.mesh
    top = msh.topology
    tdim = top.dim
    for d in (tdim, tdim - 1):
        top.create_connectivity(d, 0)
    top.create_connectivity(0, tdim)
    vmap = top.index_map(0)
    verts = np.arange(vmap.size_local, dtype=np.int32)
    x = msh.geometry.x[mesh.entities_to_geometry(msh, 0, verts).ravel()]

    def _global(dim: int, ents: np.ndarray) -> np.ndarray:
        local = top.connectivity(dim, 0).array.reshape(-1, dim + 1)[ents]
        return vmap.local_to_global(local.ravel()).reshape(-1, dim + 1).astype(np.int64)

    n_c = top.index_map(tdim).size_local
    ctag = np.full(n_c, -1, dtype=np.int32)
    keep = domain.cell_tags.indices < n_c
    ctag[domain.cell_tags.indices[keep]] = domain.cell_tags.values[keep]
    n_f = top.index_map(tdim - 1).size_local
    fk = domain.facet_tags.indices < n_f
    facets = domain.facet_tags.indices[fk]
    cells = _global(tdim, np.arange(n_c, dtype=np.int32))
    ftris = _global(tdim - 1, facets)
    ftag = domain.facet_tags.values[fk].astype(np.int32)
    return vmap.local_to_global(verts), x, cells, ctag, ftris, ftag


def _reghost(domain: Domain) -> Domain:
    """Repartition a refined mesh with a shared-facet ghost layer, tags carried along.

    ``refine`` keeps children on their parent's rank but its ghost layer does not cover
    interprocess facets, so ``dS`` integrals (interfaces) would fail: the mesh is rebuilt from
    its owned cells with the partitioner of :mod:`tumorpde.fem.domain`.
    """
    from dolfinx import mesh
    from dolfinx.graph import adjacencylist
    from dolfinx.io.utils import distribute_entity_data

    _, x, cells, ctag, ftris, ftag = _owned_entities(domain)
    tdim = domain.mesh.topology.dim
    part = mesh.create_cell_partitioner(mesh.GhostMode.shared_facet, 2)  # type: ignore[call-arg]
    element = domain.mesh.ufl_domain()
    assert element is not None  # a mesh read or refined by DOLFINx always has one
    new = mesh.create_mesh(domain.comm, cells, element, np.ascontiguousarray(x), part)
    tags = []
    for dim, ents, vals in ((tdim, cells, ctag), (tdim - 1, ftris, ftag)):
        ents_l, vals_l = distribute_entity_data(new, dim, ents, vals)
        new.topology.create_connectivity(dim, tdim)
        tags.append(
            mesh.meshtags_from_entities(
                new, dim, adjacencylist(ents_l), vals_l.astype(np.int32, copy=False)
            )
        )
    return replace(domain, mesh=new, cell_tags=tags[0], facet_tags=tags[1])


def refine_domain(
    domain: Domain, zones: list[RefineZone], max_levels: int = MAX_LEVELS
) -> tuple[Domain, RefineReport]:
    """Refine ``domain`` until no edge crossing a zone is longer than the zone's size.

    Collective on the domain's communicator. The refined cells stay on the rank of their
    parent (no repartitioning); the ghost layer is rebuilt.

    Args:
        domain: The domain (coordinates in mm).
        zones: Refinement zones (mm); an empty list returns ``domain`` unchanged.
        max_levels: Most bisection rounds.

    Returns:
        The refined domain (same region and boundary names and tags) and a report.

    Raises:
        RuntimeError: If edges still need splitting after ``max_levels`` rounds.
    """
    from mpi4py import MPI

    from dolfinx import mesh

    comm = domain.comm
    report = RefineReport(domain.num_cells_global(), domain.num_cells_global())
    if not zones:
        return domain, report
    msh, ct, ft = domain.mesh, domain.cell_tags, domain.facet_tags
    tdim = msh.topology.dim
    for _ in range(max_levels):
        cur = replace(domain, mesh=msh, cell_tags=ct, facet_tags=ft)
        marked = _marked_edges(cur, zones)
        n = comm.allreduce(int(marked.size), op=MPI.SUM)
        if n == 0:
            break
        report.edges_split.append(n)
        msh.topology.create_connectivity(tdim - 1, tdim)
        new, parent_cell, parent_facet = mesh.refine(
            msh, marked, partitioner=None, option=mesh.RefinementOption.parent_cell_and_facet
        )
        new.topology.create_entities(tdim - 1)
        new.topology.create_connectivity(tdim - 1, tdim)
        ct, ft = _transfer_tags(msh, ct, ft, new, parent_cell, parent_facet)
        msh = new
    else:
        cur = replace(domain, mesh=msh, cell_tags=ct, facet_tags=ft)
        left = comm.allreduce(int(_marked_edges(cur, zones).size), op=MPI.SUM)
        if left:
            raise RuntimeError(
                f"mesh refinement: {left} edges still longer than the zone size after "
                f"{max_levels} bisection rounds (is a zone size far below the mesh size?)"
            )
    out = replace(domain, mesh=msh, cell_tags=ct, facet_tags=ft)
    if comm.size > 1 and report.edges_split:
        out = _reghost(out)
    out.cell_tags.name = "regions"
    out.facet_tags.name = "boundaries"
    report.cells_after = out.num_cells_global()
    return out, report


def gather_mesh_arrays(domain: Domain) -> MeshArrays | None:
    """Collect the owned cells, vertices and tagged facets of ``domain`` on rank 0.

    Collective. Vertices are numbered by their global index.

    Args:
        domain: A P1 tetrahedral domain.

    Returns:
        The arrays on rank 0 (facets carry the facet tags, interior ones included), None on
        the other ranks.
    """
    from tumorpde.meshing.msh import MeshArrays

    comm = domain.comm
    parts = comm.gather(_owned_entities(domain), root=0)
    if comm.rank != 0:
        return None
    assert parts is not None
    n_v = sum(p[0].size for p in parts)
    points = np.zeros((n_v, 3))
    for p in parts:
        points[p[0]] = p[1]
    return MeshArrays(
        points=points,
        tets=np.concatenate([p[2] for p in parts]),
        tet_tags=np.concatenate([p[3] for p in parts]),
        tris=np.concatenate([p[4] for p in parts]),
        tri_tags=np.concatenate([p[5] for p in parts]),
        regions=dict(domain.regions),
        boundaries=dict(domain.boundaries),
    )

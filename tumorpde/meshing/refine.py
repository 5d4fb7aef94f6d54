"""Writing a tetrahedral mesh given as arrays (e.g. a refined one) as a tagged gmsh ``.msh``.

The refinement itself runs on the distributed mesh (:func:`tumorpde.fem.refine.refine_domain`,
zones from :mod:`tumorpde.meshing.zones`); this is its serial output step (no DOLFINx).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tumorpde.meshing.msh import MeshArrays

__all__ = ["write_mesh_arrays"]


def write_mesh_arrays(m: MeshArrays, out: str | Path, binary: bool | None = None) -> str:
    """Write tetrahedra and tagged triangles with their physical names as a gmsh ``.msh``.

    One discrete gmsh entity per region and per boundary tag (tags kept), MSH 4.1.

    Args:
        m: The mesh (region and boundary names -> tags; unused names are dropped).
        out: Output ``.msh`` file.
        binary: MSH encoding; None writes whichever is smaller.

    Returns:
        ``"binary"`` or ``"ASCII"``.
    """
    import gmsh
    import numpy as np

    from tumorpde.meshing.gmsh_session import gmsh_session
    from tumorpde.meshing.labels import write_model

    out = Path(out)
    with gmsh_session(terminal=False):
        gmsh.model.add(out.stem)
        ntags = np.arange(1, m.points.shape[0] + 1)
        etag = 1
        first = True
        for dim, groups, conn, tags, etype in (
            (3, m.regions, m.tets, m.tet_tags, 4),
            (2, m.boundaries, m.tris, m.tri_tags, 2),
        ):
            for name, t in groups.items():
                sel = conn[tags == t]
                if not sel.size:
                    continue
                gmsh.model.addDiscreteEntity(dim, t)
                if first:
                    gmsh.model.mesh.addNodes(dim, t, ntags, np.ascontiguousarray(m.points).ravel())
                    first = False
                ids = np.arange(etag, etag + sel.shape[0])
                gmsh.model.mesh.addElementsByType(t, etype, ids, (sel + 1).ravel())
                etag += sel.shape[0]
                gmsh.model.addPhysicalGroup(dim, [t], t, name=name)
        return write_model(out, binary)

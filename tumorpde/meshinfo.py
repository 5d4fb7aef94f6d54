"""Mesh statistics and quality of tetrahedral meshes with named physical groups (no DOLFINx).

Reads a gmsh ``.msh`` file (any version gmsh reads) with the gmsh Python API and computes, with
numpy only: cell and vertex counts, region volumes, boundary areas, dihedral angles, the number
of slivers and the bounding box. :func:`render_png` draws the regions on a cut with PyVista
off-screen (imported lazily).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "SLIVER_DEG",
    "MeshArrays",
    "dihedral_angles",
    "format_info",
    "mesh_info",
    "read_msh",
    "render_png",
    "tet_volumes",
    "triangle_areas",
]

#: Quality gate: a tetrahedron with a dihedral angle below this (degrees) is a sliver.
SLIVER_DEG = 5.0

_TRIANGLE = 2
_TETRAHEDRON = 4


@dataclass
class MeshArrays:
    """A tetrahedral mesh as plain arrays.

    Attributes:
        points: Vertex coordinates, shape (n, 3).
        tets: Tetrahedra (0-based vertex indices), shape (m, 4).
        tet_tags: Region tag of every tetrahedron.
        tris: Tagged boundary triangles, shape (k, 3).
        tri_tags: Boundary tag of every triangle.
        regions: Region name -> tag (3D physical groups).
        boundaries: Boundary name -> tag (2D physical groups).
    """

    points: np.ndarray
    tets: np.ndarray
    tet_tags: np.ndarray
    tris: np.ndarray
    tri_tags: np.ndarray
    regions: dict[str, int]
    boundaries: dict[str, int]


def tet_volumes(p: np.ndarray) -> np.ndarray:
    """Unsigned volumes of tetrahedra given as an array of shape (m, 4, 3)."""
    import numpy as np

    a, b, c = p[:, 1] - p[:, 0], p[:, 2] - p[:, 0], p[:, 3] - p[:, 0]
    return np.abs(np.einsum("ij,ij->i", a, np.cross(b, c))) / 6.0


def triangle_areas(p: np.ndarray) -> np.ndarray:
    """Areas of triangles given as an array of shape (k, 3, 3)."""
    import numpy as np

    return 0.5 * np.linalg.norm(np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]), axis=1)


def dihedral_angles(p: np.ndarray) -> np.ndarray:
    """The six dihedral angles (degrees) of tetrahedra given as an array of shape (m, 4, 3).

    Returns:
        Array of shape (m, 6).
    """
    import numpy as np

    faces = ((1, 2, 3), (0, 3, 2), (0, 1, 3), (0, 2, 1))  # face i opposite vertex i
    normals = []
    for i, j, k in faces:
        n = np.cross(p[:, j] - p[:, i], p[:, k] - p[:, i])
        normals.append(n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-300))
    out = []
    for f, g in ((0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)):
        cos = -np.einsum("ij,ij->i", normals[f], normals[g])
        out.append(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))
    return np.stack(out, axis=1)


def read_msh(path: str | Path) -> MeshArrays:
    """Read the tetrahedra and triangles of the physical groups of a gmsh file.

    Args:
        path: A gmsh ``.msh`` file with 3D physical groups.

    Returns:
        The mesh arrays with group names (unnamed groups are called ``region_<tag>`` or
        ``boundary_<tag>``).

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: If the file has no tetrahedra in a 3D physical group.
    """
    import gmsh
    import numpy as np

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such mesh file")
    own = not gmsh.isInitialized()
    if own:
        gmsh.initialize(readConfigFiles=False)
    try:
        gmsh.option.setNumber("General.Terminal", 0)
        gmsh.clear()
        gmsh.open(str(path))
        node_tags, coords, _ = gmsh.model.mesh.getNodes()
        coords = coords.reshape(-1, 3)
        index = np.full(int(node_tags.max()) + 1 if node_tags.size else 1, -1, dtype=np.int64)
        index[node_tags.astype(np.int64)] = np.arange(node_tags.size)
        groups: dict[int, dict[str, int]] = {3: {}, 2: {}}
        conn: dict[int, list[np.ndarray]] = {3: [], 2: []}
        tags: dict[int, list[np.ndarray]] = {3: [], 2: []}
        for dim, tag in gmsh.model.getPhysicalGroups():
            if dim not in (2, 3):
                continue
            name = gmsh.model.getPhysicalName(dim, tag) or (
                f"{'region' if dim == 3 else 'boundary'}_{tag}"
            )
            groups[dim][name] = int(tag)
            etype = _TETRAHEDRON if dim == 3 else _TRIANGLE
            npe = 4 if dim == 3 else 3
            for ent in gmsh.model.getEntitiesForPhysicalGroup(dim, tag):
                _, enodes = gmsh.model.mesh.getElementsByType(etype, int(ent))
                if enodes.size:
                    c = index[enodes.astype(np.int64)].reshape(-1, npe)
                    conn[dim].append(c)
                    tags[dim].append(np.full(c.shape[0], tag, dtype=np.int32))
    finally:
        gmsh.clear()
        if own:
            gmsh.finalize()
    if not conn[3]:
        raise ValueError(f"{path}: no tetrahedra in a 3D physical group (no tissue regions)")

    def _cat(arrs: list[np.ndarray], n: int, dtype: Any) -> np.ndarray:
        return np.concatenate(arrs) if arrs else np.empty((0, n) if n else 0, dtype=dtype)

    return MeshArrays(
        points=coords,
        tets=_cat(conn[3], 4, np.int64),
        tet_tags=_cat(tags[3], 0, np.int32),
        tris=_cat(conn[2], 3, np.int64),
        tri_tags=_cat(tags[2], 0, np.int32),
        regions=dict(sorted(groups[3].items(), key=lambda kv: kv[1])),
        boundaries=dict(sorted(groups[2].items(), key=lambda kv: kv[1])),
    )


def mesh_info(mesh: str | Path | MeshArrays, sliver_deg: float = SLIVER_DEG) -> dict[str, Any]:
    """Statistics and quality of a tetrahedral mesh.

    Args:
        mesh: A ``.msh`` path or already read arrays.
        sliver_deg: Dihedral angle (degrees) below which a tetrahedron counts as a sliver.

    Returns:
        A JSON-ready dictionary: cells, vertices, cells per region, region volumes (mm³ if
        the mesh is in mm), boundary areas, min/max dihedral angle, sliver count, bounding box.
    """
    import numpy as np

    m = mesh if isinstance(mesh, MeshArrays) else read_msh(mesh)
    tp = m.points[m.tets]
    vols = tet_volumes(tp)
    dih = dihedral_angles(tp)
    min_per_tet = dih.min(axis=1)
    areas = triangle_areas(m.points[m.tris]) if m.tris.size else np.empty(0)
    used = np.unique(m.tets)
    volumes = {n: float(vols[m.tet_tags == t].sum()) for n, t in m.regions.items()}
    volumes["total"] = float(vols.sum())
    return {
        "cells": int(m.tets.shape[0]),
        "vertices": int(used.size),
        "regions": dict(m.regions),
        "boundaries": dict(m.boundaries),
        "cells_per_region": {n: int((m.tet_tags == t).sum()) for n, t in m.regions.items()},
        "volumes_mm3": {k: round(v, 1) for k, v in volumes.items()},
        "boundary_areas_mm2": {
            n: round(float(areas[m.tri_tags == t].sum()), 1) for n, t in m.boundaries.items()
        },
        "min_dihedral_deg": round(float(min_per_tet.min()), 2),
        "max_dihedral_deg": round(float(dih.max()), 2),
        "sliver_threshold_deg": sliver_deg,
        "slivers": int((min_per_tet < sliver_deg).sum()),
        "bounding_box_mm": {
            "min": [round(float(v), 3) for v in m.points[used].min(axis=0)],
            "max": [round(float(v), 3) for v in m.points[used].max(axis=0)],
        },
    }


def format_info(path: str | Path, info: dict[str, Any]) -> str:
    """Human-readable summary of :func:`mesh_info` output."""
    lines = [f"{path}: {info['cells']} tetrahedra, {info['vertices']} vertices"]
    lines.append("  regions (tag, cells, volume mm^3):")
    for n, t in info["regions"].items():
        lines.append(
            f"    {n:24s} {t:4d} {info['cells_per_region'][n]:9d} {info['volumes_mm3'][n]:14.1f}"
        )
    lines.append(
        f"    {'total':24s} {'':4s} {info['cells']:9d} {info['volumes_mm3']['total']:14.1f}"
    )
    lines.append("  boundaries (tag, area mm^2):")
    for n, t in info["boundaries"].items():
        lines.append(f"    {n:24s} {t:4d} {info['boundary_areas_mm2'][n]:14.1f}")
    if not info["boundaries"]:
        lines.append("    (none)")
    ok = info["slivers"] == 0
    lines.append(
        f"  quality: min dihedral {info['min_dihedral_deg']:.2f} deg, max "
        f"{info['max_dihedral_deg']:.2f} deg, {info['slivers']} sliver(s) below "
        f"{info['sliver_threshold_deg']:g} deg: {'OK' if ok else 'BELOW THRESHOLD'}"
    )
    bb = info["bounding_box_mm"]
    lines.append(
        "  bounding box: "
        + " x ".join(f"[{a:.1f}, {b:.1f}]" for a, b in zip(bb["min"], bb["max"], strict=True))
        + " (mesh units, mm for tumorpde meshes)"
    )
    return "\n".join(lines)


def render_png(
    mesh: str | Path | MeshArrays, png: str | Path, axis: str = "z", origin: float | None = None
) -> Path:
    """Draw the regions on a planar cut (PyVista, off-screen).

    Args:
        mesh: A ``.msh`` path or mesh arrays.
        png: Output picture.
        axis: Normal of the cut plane (``x``, ``y`` or ``z``).
        origin: Position of the cut along ``axis`` (default: the centre of the bounding box).

    Returns:
        The written path.
    """
    import numpy as np

    from tumorpde.viz import _pyvista

    pv = _pyvista()  # off-screen, EGL window: no X server needed
    if pv is None:  # pragma: no cover - depends on the environment
        raise RuntimeError("--png needs PyVista: pip install 'tumorpde[viz]'")
    m = mesh if isinstance(mesh, MeshArrays) else read_msh(mesh)
    cells = np.hstack([np.full((m.tets.shape[0], 1), 4), m.tets]).ravel()
    grid = pv.UnstructuredGrid(cells, np.full(m.tets.shape[0], pv.CellType.TETRA), m.points)
    names = {t: n for n, t in m.regions.items()}
    tags = sorted(names)
    grid.cell_data["region"] = np.searchsorted(tags, m.tet_tags)
    ax = "xyz".index(axis)
    centre = list(grid.center)
    if origin is not None:
        centre[ax] = origin
    normal = [0.0, 0.0, 0.0]
    normal[ax] = 1.0
    cut = grid.slice(normal=normal, origin=centre)
    plotter = pv.Plotter(off_screen=True, window_size=(900, 800))
    palette = ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3"]
    n = len(tags)
    plotter.add_mesh(
        grid.extract_surface(algorithm="dataset_surface"), color="lightgrey", opacity=0.15
    )
    plotter.add_mesh(
        cut,
        scalars="region",
        cmap=[palette[i % len(palette)] for i in range(n)],
        clim=(-0.5, n - 0.5),
        n_colors=n,
        show_edges=True,
        edge_color="black",
        line_width=0.3,
        annotations={i: names[t] for i, t in enumerate(tags)},
        scalar_bar_args={"title": "region", "n_labels": 0},
    )
    plotter.view_vector(normal, viewup=(0, 0, 1) if axis != "z" else (0, 1, 0))
    plotter.add_text(f"{axis} = {centre[ax]:.1f}", font_size=10)
    png = Path(png)
    png.parent.mkdir(parents=True, exist_ok=True)
    plotter.screenshot(str(png))
    plotter.close()
    return png

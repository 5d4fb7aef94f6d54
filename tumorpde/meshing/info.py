"""Statistics and quality of tetrahedral meshes with named physical groups (no DOLFINx).

Computes, with numpy only, from a ``.msh`` file read by :func:`tumorpde.meshing.msh.read_msh`:
cell and vertex counts, region volumes, boundary areas, dihedral angles, the number of slivers
and the bounding box. Pictures of a mesh are drawn by :func:`tumorpde.output.viz.render_regions`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from tumorpde.meshing.msh import MeshArrays, read_msh

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "SLIVER_DEG",
    "dihedral_angles",
    "format_info",
    "mesh_info",
    "tet_volumes",
    "triangle_areas",
]

#: Quality gate: a tetrahedron with a dihedral angle below this (degrees) is a sliver.
SLIVER_DEG = 5.0


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

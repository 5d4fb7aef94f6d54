"""Deep mesh checks of a validated case: the mesh file opens fully and the seed lies inside.

:func:`tumorpde.config.load_config` reads only the region names of a ``.msh`` file (cheap, on
every rank). ``tumorpde validate`` also calls :func:`mesh_problems`, which reads the whole mesh
with :func:`tumorpde.meshing.msh.read_msh` (gmsh, the ``mesh`` extra) and checks that a Gaussian
seed's centre lies in a tetrahedron (numpy only). Box meshes are checked arithmetically by the
schema. This module imports neither dolfinx nor MPI.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING

from tumorpde.config.schema import CaseConfig, FileMesh, GaussianSeed
from tumorpde.meshing.msh import MeshArrays

if TYPE_CHECKING:
    import numpy as np

__all__ = ["mesh_problems", "point_in_mesh"]


def point_in_mesh(points: np.ndarray, tets: np.ndarray, x: np.ndarray, tol: float = 1e-9) -> bool:
    """Whether ``x`` lies in (or on) one of the tetrahedra.

    Candidates are the tetrahedra whose bounding box holds ``x``; for those the barycentric
    coordinates decide (all >= ``-tol``).

    Args:
        points: Vertex coordinates, shape (n, 3).
        tets: Tetrahedra as vertex indices, shape (m, 4).
        x: The point, shape (3,).
        tol: Relative tolerance of the barycentric test.

    Returns:
        True if some tetrahedron contains ``x``.
    """
    import numpy as np

    p = points[tets]  # (m, 4, 3)
    scale = float(np.ptp(points, axis=0).max()) if points.size else 1.0
    eps = tol * max(scale, 1.0)
    cand = np.all((p.min(axis=1) - eps <= x) & (x <= p.max(axis=1) + eps), axis=1)
    p = p[cand]
    if not p.shape[0]:
        return False
    T = np.transpose(p[:, 1:] - p[:, :1], (0, 2, 1))  # (k, 3, 3): columns are the edges
    ok = np.abs(np.linalg.det(T)) > 0
    lam = np.linalg.solve(T[ok], (x - p[ok, 0])[:, :, None])[:, :, 0]
    bary = np.concatenate([1.0 - lam.sum(axis=1, keepdims=True), lam], axis=1)
    return bool(np.any(np.all(bary >= -tol, axis=1)))


@functools.lru_cache(maxsize=4)
def _read(path: Path, size: int, mtime_ns: int) -> MeshArrays:
    """:func:`read_msh`, cached per file version (size and modification time)."""
    from tumorpde.meshing.msh import read_msh

    return read_msh(path)


def mesh_problems(cfg: CaseConfig) -> tuple[list[tuple[str, str]], list[str]]:
    """Open the case's mesh file fully and check that the Gaussian seed lies inside it.

    Args:
        cfg: A validated case.

    Returns:
        ``(problems, notes)``: ``(field path, message)`` pairs, and notes on checks that could
        not run (no gmsh).
    """
    if not isinstance(cfg.mesh, FileMesh):
        return [], []  # box meshes: checked by the schema (sub-boxes and seed inside the box)
    try:
        import gmsh  # noqa: F401
    except ImportError:
        return [], [
            "mesh file not opened in full and seed position not checked: needs gmsh "
            "(pip install 'tumorpde[mesh]')"
        ]
    import numpy as np

    try:
        stat = cfg.mesh.path.stat()
        m = _read(cfg.mesh.path, stat.st_size, stat.st_mtime_ns)
    except (OSError, ValueError) as exc:
        return [("mesh.path", str(exc))], []
    seed = cfg.tumor.initial
    if not isinstance(seed, GaussianSeed):
        return [], []
    points = m.points * cfg.mesh.scale_to_mm
    x = np.asarray(seed.center, dtype=float)
    if point_in_mesh(points, m.tets, x):
        return [], []
    used = points[np.unique(m.tets)]
    lo, hi = used.min(axis=0), used.max(axis=0)
    nearest = float(np.sqrt(((used - x) ** 2).sum(axis=1)).min())
    box = " x ".join(f"[{a:.1f}, {b:.1f}]" for a, b in zip(lo, hi, strict=True))
    where = "inside its bounding box (a hole?)" if np.all((lo <= x) & (x <= hi)) else "outside"
    centre = ", ".join(f"{c:g}" for c in seed.center)
    return [
        (
            "tumor.initial.center",
            f"[{centre}] mm is not inside the mesh {cfg.mesh.path.name} ({where}; bounding box "
            f"{box} mm, nearest vertex {nearest:.3g} mm away): the seed would start empty",
        )
    ], []

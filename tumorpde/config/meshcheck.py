"""Deep mesh checks of a validated case: the mesh file opens fully and the seeds fit the mesh.

:func:`tumorpde.config.load_config` reads only the region names of a ``.msh`` file (cheap, on
every rank). ``tumorpde validate`` also calls :func:`mesh_problems`, which reads the whole mesh
with :func:`tumorpde.meshing.msh.read_msh` (gmsh, the ``mesh`` extra) and checks that a Gaussian
seed's centre lies in a tetrahedron (numpy only), that region seeds name a region and image
seeds open. Whether the mesh carries the seeds' mass and peak is checked on the loaded mesh
(:mod:`tumorpde.fem.seeds`). This module imports neither dolfinx nor MPI.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING

from tumorpde.config.schema import CaseConfig, FileMesh, GaussianSeed, ImageSeed, RegionSeed
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
    """Open the case's mesh file fully and check the seeds against it.

    Checks that every Gaussian seed's centre lies inside the mesh, that region seeds and
    ``[initial.fields]`` regions name a mesh region and that image seeds open. Whether the
    mesh carries each Gaussian seed's mass and peak needs the loaded mesh:
    :func:`tumorpde.fem.seeds.seed_reports`.

    Args:
        cfg: A validated case.

    Returns:
        ``(problems, notes)``: ``(field path, message)`` pairs, and notes on checks that could
        not run (no gmsh).
    """
    from tumorpde.config.resolve import mesh_region_names

    problems: list[tuple[str, str]] = []
    notes: list[str] = []
    seeds = cfg.tumor.seed_list()
    try:
        regions = mesh_region_names(cfg.mesh)
    except (OSError, ValueError) as exc:
        return [("mesh.path", str(exc))], []
    for where, seed in seeds:
        if isinstance(seed, RegionSeed) and seed.region not in regions:
            problems.append(
                (
                    f"{where}.region",
                    f"{seed.region!r} is not a region of the mesh (regions: {', '.join(regions)})",
                )
            )
        elif isinstance(seed, ImageSeed):
            problems += _image_problems(where, seed)
    for name, spec in cfg.initial.fields.items():
        region = getattr(spec, "region", None)
        if region is not None and region not in regions:
            problems.append(
                (
                    f"initial.fields.{name}.region",
                    f"{region!r} is not a region of the mesh (regions: {', '.join(regions)})",
                )
            )
    gaussians = [(w, s) for w, s in seeds if isinstance(s, GaussianSeed)]
    if not isinstance(cfg.mesh, FileMesh):
        return problems, notes  # box: the schema checked the sub-boxes and seed centres
    try:
        import gmsh  # noqa: F401
    except ImportError:
        return problems, [
            "mesh file not opened in full and seed position and mass not checked: needs gmsh "
            "(pip install 'tumorpde[mesh]')"
        ]
    import numpy as np

    try:
        stat = cfg.mesh.path.stat()
        m = _read(cfg.mesh.path, stat.st_size, stat.st_mtime_ns)
    except (OSError, ValueError) as exc:
        return [("mesh.path", str(exc))], []
    points = m.points * cfg.mesh.scale_to_mm
    for where, seed in gaussians:
        x = np.asarray(seed.center, dtype=float)
        if point_in_mesh(points, m.tets, x):
            continue
        used = points[np.unique(m.tets)]
        lo, hi = used.min(axis=0), used.max(axis=0)
        nearest = float(np.sqrt(((used - x) ** 2).sum(axis=1)).min())
        box = " x ".join(f"[{a:.1f}, {b:.1f}]" for a, b in zip(lo, hi, strict=True))
        inside = np.all((lo <= x) & (x <= hi))
        what = "inside its bounding box (a hole?)" if inside else "outside"
        centre = ", ".join(f"{c:g}" for c in seed.center)
        problems.append(
            (
                f"{where}.center",
                f"[{centre}] mm is not inside the mesh {cfg.mesh.path.name} ({what}; bounding "
                f"box {box} mm, nearest vertex {nearest:.3g} mm away): the seed would start "
                "empty",
            )
        )
    return problems, notes


def _image_problems(where: str, seed: ImageSeed) -> list[tuple[str, str]]:
    """An image seed's file opens as a 3D scalar map (needs nibabel/pynrrd)."""
    from tumorpde.meshing.imagefield import read_scalar_image
    from tumorpde.meshing.labels import MeshingError

    try:
        read_scalar_image(seed.path)
    except MeshingError as exc:
        return [(f"{where}.path", str(exc))]
    return []

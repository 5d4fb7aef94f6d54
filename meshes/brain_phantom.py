"""Generate the anatomically dimensioned brain phantom mesh shipped with tumorpde.

The phantom is a synthetic, idealised adult brain built from ellipsoids with gmsh's
OpenCASCADE kernel (all lengths in mm, centred at the origin, RAS-like axes: x left→right,
y posterior→anterior, z inferior→superior):

* outer brain surface: ellipsoid with semi-axes (70, 85, 60) mm (about 1.5 L);
* white matter: inner ellipsoid with semi-axes (52, 66, 43) mm, centre shifted 2 mm inferior;
* grey matter: outer ellipsoid minus white matter;
* two lateral ventricles: ellipsoids centred at (±9, 5, 8) mm with semi-axes (5, 22, 8) mm,
  removed from the domain (holes inside the white matter).

All pieces are fragmented together so the grey/white interface is conforming. The mesh is
refined to ``--size-near`` (default 1.8 mm) within ``--refine-radius`` (15 mm) of a tumour seed
point in the right frontal white matter close to the grey/white interface, with linear grading
to the ``--size-far`` background size (default 8 mm), and moderately refined at the ventricle
walls so the small ventricles are resolved. Sizes are gmsh target sizes; the measured mean
edge lengths (recorded in the JSON) come out somewhat larger, e.g. about 2.4 mm near the seed.
Meshing is single-threaded with a fixed random seed, so the output is bitwise reproducible for
a given gmsh version.

Outputs (written to ``--out``, default: the directory of this script):

* ``brain_phantom.msh``: gmsh MSH 4.1 (ASCII by default: smaller than binary for this mesh
  and diff-able) with physical groups
  volume ``grey`` = 1, volume ``white`` = 2, surface ``outer`` = 10,
  surface ``ventricle_wall`` = 11 and surface ``grey_white_interface`` = 12;
* ``brain_phantom.json``: metadata (tags, mesh-computed volumes and areas, cell and vertex
  counts, minimum dihedral angle, seed point and region, generator parameters).

Usage::

    python meshes/brain_phantom.py [--out DIR] [--size-far 8] [--size-near 1.8]

Only gmsh and numpy are required (no DOLFINx).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import gmsh
import numpy as np

NAME = "brain_phantom"

#: Physical volume groups (name → tag).
REGIONS: dict[str, int] = {"grey": 1, "white": 2}
#: Physical surface groups (name → tag).
BOUNDARIES: dict[str, int] = {"outer": 10, "ventricle_wall": 11, "grey_white_interface": 12}

#: gmsh element type ids.
_TRIANGLE = 2
_TETRAHEDRON = 4


@dataclass
class PhantomParameters:
    """Geometric and meshing parameters of the phantom (lengths in mm).

    Attributes:
        outer_semi_axes: Semi-axes (x, y, z) of the outer brain ellipsoid.
        white_semi_axes: Semi-axes (x, y, z) of the white-matter ellipsoid.
        white_centre: Centre of the white-matter ellipsoid.
        ventricle_centres: Centres of the two lateral ventricles.
        ventricle_semi_axes: Semi-axes (x, y, z) of each ventricle ellipsoid.
        seed_point: Tumour seed point around which the mesh is refined.
        size_far: Background element size.
        size_near: Element size within ``refine_radius`` of the seed point.
        refine_radius: Radius of the uniformly refined ball around the seed point.
        grading_distance: Distance over which the size grows linearly from ``size_near``
            to ``size_far`` outside the refined ball.
        size_ventricle: Element size at the ventricle walls.
        ventricle_grading_distance: Distance from the ventricle walls over which the size
            grows linearly from ``size_ventricle`` to ``size_far``.
        algorithm_2d: gmsh ``Mesh.Algorithm`` (1 = MeshAdapt; 6 = Frontal-Delaunay gives
            slivers at the OCC sphere poles of the ventricles).
        algorithm_3d: gmsh ``Mesh.Algorithm3D`` (1 = Delaunay, 10 = HXT).
        random_seed: gmsh ``Mesh.RandomSeed``.
        binary: Write binary (``True``) or ASCII (``False``) MSH 4.1.
    """

    outer_semi_axes: tuple[float, float, float] = (70.0, 85.0, 60.0)
    white_semi_axes: tuple[float, float, float] = (52.0, 66.0, 43.0)
    white_centre: tuple[float, float, float] = (0.0, 0.0, -2.0)
    ventricle_centres: tuple[tuple[float, float, float], ...] = field(
        default_factory=lambda: ((-9.0, 5.0, 8.0), (9.0, 5.0, 8.0))
    )
    ventricle_semi_axes: tuple[float, float, float] = (5.0, 22.0, 8.0)
    seed_point: tuple[float, float, float] = (30.0, 35.0, 20.0)
    size_far: float = 8.0
    size_near: float = 1.8
    refine_radius: float = 15.0
    grading_distance: float = 25.0
    size_ventricle: float = 2.5
    ventricle_grading_distance: float = 20.0
    algorithm_2d: int = 1
    algorithm_3d: int = 1
    random_seed: int = 1
    binary: bool = False


def _add_ellipsoid(
    centre: tuple[float, float, float], semi_axes: tuple[float, float, float]
) -> tuple[int, int]:
    """Add an OCC ellipsoid as a unit sphere scaled by its semi-axes.

    Args:
        centre: Centre of the ellipsoid.
        semi_axes: Semi-axes along x, y and z.

    Returns:
        The ``(dim, tag)`` of the new volume.
    """
    tag = gmsh.model.occ.addSphere(*centre, 1.0)
    gmsh.model.occ.dilate([(3, tag)], *centre, *semi_axes)
    return (3, tag)


def build_geometry(params: PhantomParameters) -> dict[str, list[int]]:
    """Build the fragmented phantom geometry and its physical groups.

    Args:
        params: Phantom parameters.

    Returns:
        Entity tags per physical group name (volumes for regions, surfaces for boundaries).
    """
    occ = gmsh.model.occ
    outer = _add_ellipsoid((0.0, 0.0, 0.0), params.outer_semi_axes)
    white = _add_ellipsoid(params.white_centre, params.white_semi_axes)
    vents = [_add_ellipsoid(c, params.ventricle_semi_axes) for c in params.ventricle_centres]

    _, children = occ.fragment([outer], [white, *vents])
    # children[i] lists the pieces of input i (outer, white, ventricles...).
    outer_pieces = {t for _, t in children[0]}
    white_pieces = {t for _, t in children[1]}
    vent_pieces = {t for ch in children[2:] for _, t in ch}
    grey_vols = sorted(outer_pieces - white_pieces - vent_pieces)
    white_vols = sorted(white_pieces - vent_pieces)
    if len(grey_vols) != 1 or len(white_vols) != 1 or len(vent_pieces) != len(vents):
        raise RuntimeError(
            f"unexpected fragment result: grey={grey_vols}, white={white_vols}, "
            f"ventricles={sorted(vent_pieces)}"
        )
    # Remove the ventricle volumes but keep their bounding surfaces (the ventricle walls).
    occ.remove([(3, t) for t in sorted(vent_pieces)], recursive=False)
    occ.synchronize()

    def _bnd(vols: list[int]) -> set[int]:
        dimtags = gmsh.model.getBoundary([(3, v) for v in vols], oriented=False)
        return {abs(t) for _, t in dimtags}

    grey_bnd, white_bnd = _bnd(grey_vols), _bnd(white_vols)
    interface = sorted(grey_bnd & white_bnd)
    groups = {
        "grey": grey_vols,
        "white": white_vols,
        "outer": sorted(grey_bnd - white_bnd),
        "ventricle_wall": sorted(white_bnd - grey_bnd),
        "grey_white_interface": interface,
    }
    for name, tag in REGIONS.items():
        gmsh.model.addPhysicalGroup(3, groups[name], tag, name=name)
    for name, tag in BOUNDARIES.items():
        gmsh.model.addPhysicalGroup(2, groups[name], tag, name=name)
    return groups


def set_mesh_size(params: PhantomParameters, ventricle_surfaces: list[int]) -> None:
    """Define the background mesh-size field (seed refinement and ventricle refinement).

    Args:
        params: Phantom parameters.
        ventricle_surfaces: OCC surface tags of the ventricle walls.
    """
    fld = gmsh.model.mesh.field
    sx, sy, sz = params.seed_point
    seed_dist = fld.add("MathEval")
    fld.setString(seed_dist, "F", f"Sqrt((x-({sx}))^2+(y-({sy}))^2+(z-({sz}))^2)")
    seed_thr = fld.add("Threshold")
    fld.setNumber(seed_thr, "InField", seed_dist)
    fld.setNumber(seed_thr, "SizeMin", params.size_near)
    fld.setNumber(seed_thr, "SizeMax", params.size_far)
    fld.setNumber(seed_thr, "DistMin", params.refine_radius)
    fld.setNumber(seed_thr, "DistMax", params.refine_radius + params.grading_distance)

    vent_dist = fld.add("Distance")
    fld.setNumbers(vent_dist, "SurfacesList", ventricle_surfaces)
    fld.setNumber(vent_dist, "Sampling", 60)
    vent_thr = fld.add("Threshold")
    fld.setNumber(vent_thr, "InField", vent_dist)
    fld.setNumber(vent_thr, "SizeMin", params.size_ventricle)
    fld.setNumber(vent_thr, "SizeMax", params.size_far)
    fld.setNumber(vent_thr, "DistMin", 0.0)
    fld.setNumber(vent_thr, "DistMax", params.ventricle_grading_distance)

    size = fld.add("Min")
    fld.setNumbers(size, "FieldsList", [seed_thr, vent_thr])
    fld.setAsBackgroundMesh(size)

    gmsh.option.setNumber("Mesh.MeshSizeExtendFromBoundary", 0)
    gmsh.option.setNumber("Mesh.MeshSizeFromPoints", 0)
    gmsh.option.setNumber("Mesh.MeshSizeFromCurvature", 0)
    gmsh.option.setNumber("Mesh.MeshSizeMin", min(params.size_near, params.size_ventricle))
    gmsh.option.setNumber("Mesh.MeshSizeMax", params.size_far)


def generate_mesh(params: PhantomParameters) -> None:
    """Mesh the current model in 3D (first order) with quality optimisation.

    Args:
        params: Phantom parameters.
    """
    opt = gmsh.option.setNumber
    opt("General.NumThreads", 1)  # single-threaded for bitwise reproducibility
    opt("Mesh.MaxNumThreads1D", 1)
    opt("Mesh.MaxNumThreads2D", 1)
    opt("Mesh.MaxNumThreads3D", 1)
    opt("Mesh.RandomSeed", params.random_seed)
    opt("Mesh.Algorithm", params.algorithm_2d)
    opt("Mesh.Algorithm3D", params.algorithm_3d)
    opt("Mesh.ElementOrder", 1)
    opt("Mesh.Optimize", 1)
    opt("Mesh.OptimizeNetgen", 1)
    opt("Mesh.OptimizeThreshold", 0.3)
    gmsh.model.mesh.generate(3)
    gmsh.model.mesh.optimize("Netgen")
    gmsh.model.mesh.optimize("")


def _nodes() -> tuple[np.ndarray, np.ndarray]:
    """Return all mesh node tags and coordinates.

    Returns:
        Node tags (``(n,)``) and coordinates (``(n, 3)``).
    """
    tags, coords, _ = gmsh.model.mesh.getNodes()
    return np.asarray(tags, dtype=np.int64), np.asarray(coords, dtype=float).reshape(-1, 3)


def _group_elements(dim: int, entities: list[int], etype: int, npe: int) -> np.ndarray:
    """Collect the node tags of all elements of one type on a list of entities.

    Args:
        dim: Entity dimension.
        entities: Entity tags.
        etype: gmsh element type id.
        npe: Nodes per element.

    Returns:
        Element connectivity in node tags, shape ``(m, npe)``.
    """
    blocks = []
    for ent in entities:
        _, node_tags = gmsh.model.mesh.getElementsByType(etype, ent)
        blocks.append(np.asarray(node_tags, dtype=np.int64).reshape(-1, npe))
    return np.concatenate(blocks) if blocks else np.zeros((0, npe), dtype=np.int64)


def tet_volumes(x: np.ndarray) -> np.ndarray:
    """Unsigned volumes of tetrahedra.

    Args:
        x: Vertex coordinates, shape ``(m, 4, 3)``.

    Returns:
        Volumes, shape ``(m,)``.
    """
    d = x[:, 1:, :] - x[:, :1, :]
    return np.abs(np.linalg.det(d)) / 6.0


def triangle_areas(x: np.ndarray) -> np.ndarray:
    """Areas of triangles.

    Args:
        x: Vertex coordinates, shape ``(m, 3, 3)``.

    Returns:
        Areas, shape ``(m,)``.
    """
    return 0.5 * np.linalg.norm(np.cross(x[:, 1] - x[:, 0], x[:, 2] - x[:, 0]), axis=1)


def dihedral_angles(x: np.ndarray) -> np.ndarray:
    """All six interior dihedral angles of each tetrahedron.

    The dihedral angle between the faces opposite vertices ``a`` and ``b`` is
    ``pi - angle(n_a, n_b)`` with ``n_a``, ``n_b`` the outward unit face normals.

    Args:
        x: Vertex coordinates, shape ``(m, 4, 3)``.

    Returns:
        Dihedral angles in degrees, shape ``(m, 6)``.
    """
    normals = []
    for a in range(4):
        i, j, k = (v for v in range(4) if v != a)
        n = np.cross(x[:, j] - x[:, i], x[:, k] - x[:, i])
        # Orient outward: away from the opposite vertex a.
        sign = np.sign(np.einsum("ij,ij->i", n, x[:, i] - x[:, a]))
        normals.append(n * sign[:, None] / np.linalg.norm(n, axis=1)[:, None])
    angles = []
    for a in range(4):
        for b in range(a + 1, 4):
            cos = np.clip(-np.einsum("ij,ij->i", normals[a], normals[b]), -1.0, 1.0)
            angles.append(np.degrees(np.arccos(cos)))
    return np.stack(angles, axis=1)


def _contains(x: np.ndarray, p: np.ndarray, tol: float = 1e-10) -> np.ndarray:
    """Whether a point lies in each of a set of tetrahedra (barycentric test).

    Args:
        x: Vertex coordinates, shape ``(m, 4, 3)``.
        p: Query point, shape ``(3,)``.
        tol: Tolerance on the barycentric coordinates.

    Returns:
        Boolean mask, shape ``(m,)``.
    """
    t = np.transpose(x[:, 1:, :] - x[:, :1, :], (0, 2, 1))
    lam = np.linalg.solve(t, (p - x[:, 0, :])[:, :, None])[:, :, 0]
    bary = np.concatenate([1.0 - lam.sum(axis=1, keepdims=True), lam], axis=1)
    return np.all(bary >= -tol, axis=1)


def point_triangle_distance(x: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Euclidean distance from a point to each of a set of triangles.

    Args:
        x: Triangle vertex coordinates, shape ``(m, 3, 3)``.
        p: Query point, shape ``(3,)``.

    Returns:
        Distances, shape ``(m,)``.
    """
    a, b, c = x[:, 0], x[:, 1], x[:, 2]
    n = np.cross(b - a, c - a)
    n /= np.linalg.norm(n, axis=1)[:, None]
    h = np.einsum("ij,ij->i", p - a, n)
    q = p - h[:, None] * n  # projection onto the triangle plane
    inside = np.ones(len(x), dtype=bool)
    for u, v in ((a, b), (b, c), (c, a)):
        inside &= np.einsum("ij,ij->i", np.cross(v - u, q - u), n) >= 0.0
    dist = np.where(inside, np.abs(h), np.inf)
    for u, v in ((a, b), (b, c), (c, a)):
        e = v - u
        t = np.clip(np.einsum("ij,ij->i", p - u, e) / np.einsum("ij,ij->i", e, e), 0.0, 1.0)
        dist = np.minimum(dist, np.linalg.norm(p - (u + t[:, None] * e), axis=1))
    return dist


def mean_edge_lengths(x: np.ndarray) -> np.ndarray:
    """Mean of the six edge lengths of each tetrahedron.

    Args:
        x: Vertex coordinates, shape ``(m, 4, 3)``.

    Returns:
        Mean edge lengths, shape ``(m,)``.
    """
    pairs = [(i, j) for i in range(4) for j in range(i + 1, 4)]
    return np.mean([np.linalg.norm(x[:, i] - x[:, j], axis=1) for i, j in pairs], axis=0)


def mesh_statistics(groups: dict[str, list[int]], params: PhantomParameters) -> dict[str, object]:
    """Compute mesh statistics from the mesh elements (not from the CAD model).

    Args:
        groups: Entity tags per physical group name.
        params: Phantom parameters (seed point and refinement radii).

    Returns:
        Cell and vertex counts, region volumes, boundary areas, minimum dihedral angle,
        measured mean edge lengths near and far from the seed point, the region containing
        the seed point and its distance to the grey/white interface.
    """
    seed = np.asarray(params.seed_point, dtype=float)
    tags, coords = _nodes()
    index = np.full(int(tags.max()) + 1, -1, dtype=np.int64)
    index[tags] = np.arange(tags.size)

    volumes: dict[str, float] = {}
    region_tets: dict[str, np.ndarray] = {}
    for name in REGIONS:
        conn = index[_group_elements(3, groups[name], _TETRAHEDRON, 4)]
        region_tets[name] = conn
        volumes[name] = float(tet_volumes(coords[conn]).sum())
    volumes["total"] = sum(volumes[n] for n in REGIONS)

    areas: dict[str, float] = {}
    boundary_tris: dict[str, np.ndarray] = {}
    for name in BOUNDARIES:
        conn = index[_group_elements(2, groups[name], _TRIANGLE, 3)]
        boundary_tris[name] = conn
        areas[name] = float(triangle_areas(coords[conn]).sum())

    all_tets = np.concatenate(list(region_tets.values()))
    used = np.unique(all_tets)
    min_dihedral = float(dihedral_angles(coords[all_tets]).min())
    seed_region = "outside"
    for name, conn in region_tets.items():
        if _contains(coords[conn], seed).any():
            seed_region = name
            break
    seed_to_interface = point_triangle_distance(
        coords[boundary_tris["grey_white_interface"]], seed
    ).min()
    centroid_dist = np.linalg.norm(coords[all_tets].mean(axis=1) - seed, axis=1)
    edges = mean_edge_lengths(coords[all_tets])
    far = centroid_dist > params.refine_radius + params.grading_distance
    return {
        "cells": int(all_tets.shape[0]),
        "cells_per_region": {n: int(c.shape[0]) for n, c in region_tets.items()},
        "vertices": int(used.size),
        "volumes_mm3": {k: round(v, 1) for k, v in volumes.items()},
        "boundary_areas_mm2": {k: round(v, 1) for k, v in areas.items()},
        "min_dihedral_deg": round(min_dihedral, 2),
        "seed_region": seed_region,
        "seed_distance_to_interface_mm": round(float(seed_to_interface), 2),
        "mean_edge_mm": {
            "within_refine_radius": round(
                float(edges[centroid_dist < params.refine_radius].mean()), 2
            ),
            "beyond_grading": round(float(edges[far].mean()), 2),
        },
    }


def build(params: PhantomParameters, out_dir: Path) -> dict[str, object]:
    """Build, mesh and write the phantom and its metadata.

    Args:
        params: Phantom parameters.
        out_dir: Output directory for ``brain_phantom.msh`` and ``brain_phantom.json``.

    Returns:
        The metadata written to the JSON file.
    """
    t0 = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    msh_path = out_dir / f"{NAME}.msh"
    json_path = out_dir / f"{NAME}.json"

    gmsh.initialize(readConfigFiles=False)
    try:
        gmsh.option.setNumber("General.Terminal", 1)
        gmsh.option.setNumber("General.Verbosity", 2)
        gmsh.model.add(NAME)
        groups = build_geometry(params)
        set_mesh_size(params, groups["ventricle_wall"])
        generate_mesh(params)
        gmsh.option.setNumber("Mesh.MshFileVersion", 4.1)
        gmsh.option.setNumber("Mesh.Binary", int(params.binary))
        gmsh.option.setNumber("Mesh.SaveAll", 0)
        gmsh.write(str(msh_path))
        stats = mesh_statistics(groups, params)
        gmsh_version = gmsh.__version__
    finally:
        gmsh.finalize()

    meta: dict[str, object] = {
        "name": NAME,
        "organ": "brain",
        "units": "mm",
        "regions": dict(REGIONS),
        "boundaries": dict(BOUNDARIES),
        "volumes_mm3": stats["volumes_mm3"],
        "boundary_areas_mm2": stats["boundary_areas_mm2"],
        "cells": stats["cells"],
        "cells_per_region": stats["cells_per_region"],
        "vertices": stats["vertices"],
        "cell_type": "tetrahedron (P1)",
        "min_dihedral_deg": stats["min_dihedral_deg"],
        "seed_point_mm": list(params.seed_point),
        "seed_region": stats["seed_region"],
        "seed_distance_to_interface_mm": stats["seed_distance_to_interface_mm"],
        "seed_note": "right frontal lobe (x>0 right, y>0 anterior, z>0 superior), "
        "just below the grey/white interface",
        "mean_edge_mm": stats["mean_edge_mm"],
        "source": "synthetic phantom, anatomically dimensioned (adult brain ~1.5 L, "
        "ellipsoidal grey/white matter and lateral ventricles); not patient data",
        "license": "CC0-1.0 (generated by tumorpde)",
        "format": f"gmsh MSH 4.1 {'binary' if params.binary else 'ASCII'}",
        "generator": {
            "script": "meshes/brain_phantom.py",
            "gmsh": gmsh_version,
            "parameters": asdict(params),
        },
        "build_time_s": round(time.perf_counter() - t0, 2),
    }
    json_path.write_text(json.dumps(meta, indent=2) + "\n")
    return meta


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse command-line arguments.

    Args:
        argv: Argument list (defaults to ``sys.argv[1:]``).

    Returns:
        Parsed arguments.
    """
    defaults = PhantomParameters()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).resolve().parent, help="output directory"
    )
    parser.add_argument(
        "--size-far", type=float, default=defaults.size_far, help="background element size [mm]"
    )
    parser.add_argument(
        "--size-near",
        type=float,
        default=defaults.size_near,
        help="element size near the seed point [mm]",
    )
    parser.add_argument(
        "--refine-radius",
        type=float,
        default=defaults.refine_radius,
        help="radius of the refined ball around the seed point [mm]",
    )
    parser.add_argument(
        "--size-ventricle",
        type=float,
        default=defaults.size_ventricle,
        help="element size at the ventricle walls [mm]",
    )
    parser.add_argument(
        "--algorithm-3d",
        type=int,
        default=defaults.algorithm_3d,
        choices=(1, 10),
        help="gmsh Mesh.Algorithm3D (1 Delaunay, 10 HXT)",
    )
    parser.add_argument(
        "--binary", action="store_true", help="write binary MSH 4.1 instead of ASCII"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point.

    Args:
        argv: Argument list (defaults to ``sys.argv[1:]``).
    """
    args = parse_args(argv)
    params = PhantomParameters(
        size_far=args.size_far,
        size_near=args.size_near,
        refine_radius=args.refine_radius,
        size_ventricle=args.size_ventricle,
        algorithm_3d=args.algorithm_3d,
        binary=args.binary,
    )
    meta = build(params, args.out)
    summary = {
        k: meta[k]
        for k in (
            "cells",
            "vertices",
            "volumes_mm3",
            "min_dihedral_deg",
            "seed_region",
            "build_time_s",
        )
    }
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()

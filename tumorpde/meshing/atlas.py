"""Organ atlas: reproducible recipes for the shipped organ meshes (brain, liver, bone, lung).

Each recipe turns an offline source into a tagged mesh with :mod:`tumorpde.meshing.labels`:

* ``brain``: MNI ICBM152 2009a symmetric template (grey/white-matter probability maps and T1)
  shipped with nilearn; lateral ventricles segmented from the maps, meshed as holes.
* ``liver``: the CT liver label image of CGAL's example data (Debian ``libcgal-demo``).
* ``bone``: the closed upper-femur surface of CGAL's example data, with a cortical shell and
  marrow.
* ``lung``: no real source is available offline: an anatomically dimensioned parametric pair
  of lungs built with gmsh's OpenCASCADE kernel.

``coarse`` meshes (20k–60k cells) ship in ``meshes/``; ``fine`` ones (300k–1M cells) are built
on demand into a cache directory.
"""

from __future__ import annotations

import os
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tumorpde.meshing.labels import LabelImage, MeshingError, MeshParameters, labels_to_mesh
from tumorpde.progress import stage

if TYPE_CHECKING:
    from tumorpde.meshing.zones import RefineZone

__all__ = ["ORGANS", "Organ", "atlas_stem", "build_organ", "default_cache_dir"]

#: Where CGAL's example data lives once ``apt-get install libcgal-demo`` has run.
CGAL_DATA = Path("/usr/share/doc/libcgal-dev/data.tar.gz")
CGAL_LICENSE = (
    "CC0-1.0: CGAL's LICENSE puts all files without an explicit copyright notice (examples, "
    "demo data) under CC0 1.0; the data file has no notice. Debian package libcgal-demo "
    "5.5.1, /usr/share/doc/libcgal-dev/data.tar.gz."
)
CGAL_ATTRIBUTION = "The CGAL Project, CGAL 5.5.1 example data (https://www.cgal.org)."
MNI_LICENSE = (
    "MNI ICBM152 2009 licence (permissive): 'Copyright (C) 1993-2009 Louis Collins, McConnell "
    "Brain Imaging Centre, Montreal Neurological Institute, McGill University. Permission to "
    "use, copy, modify, and distribute this software and its documentation for any purpose "
    "and without fee is hereby granted, provided that the above copyright notice appear in "
    "all copies.' (nilearn's dataset description lists the licence as 'unknown'.)"
)
MNI_ATTRIBUTION = (
    "Fonov VS, Evans AC, McKinstry RC, Almli CR, Collins DL. NeuroImage 47 (2009) S102; "
    "Fonov VS et al., NeuroImage 54 (2011) 313-327; Collins DL et al., NeuroImage 10 (1999) "
    "S1 (ICBM152 2009a nonlinear symmetric, as distributed with nilearn)."
)


@dataclass(frozen=True)
class Organ:
    """An atlas entry.

    Attributes:
        name: Registry key (``tumorpde mesh build NAME``).
        description: One line.
        sizes: Target edge length (mm) per resolution.
        builder: Function ``(organ, params, out_msh) -> metadata``.
        requires: What must be installed to rebuild it (for error messages).
    """

    name: str
    description: str
    sizes: dict[str, float]
    builder: Callable[[Organ, MeshParameters, Path, str], dict[str, Any]]
    requires: str


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/tumorpde/meshes`` (default ``~/.cache/tumorpde/meshes``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tumorpde" / "meshes"


# ------------------------------------------------------------------------------------ helpers
def _cgal_member(member: str) -> bytes:
    if not CGAL_DATA.is_file():
        raise MeshingError(
            f"{CGAL_DATA} not found: the source data of this mesh is CGAL's example data; "
            "install it with `apt-get install libcgal-demo` (Debian/Ubuntu) and retry"
        )
    with tarfile.open(CGAL_DATA) as tar:
        try:
            f = tar.extractfile(member)
        except KeyError as exc:
            raise MeshingError(f"{CGAL_DATA}: no member {member}") from exc
        assert f is not None
        return f.read()


def choose_seed(
    msh: Path, region: str, target_depth: float, box: tuple[tuple[float, float], ...] | None
) -> tuple[list[float], float]:
    """A tumour seed point inside ``region`` at a chosen depth below its boundary.

    The point is the centroid of a tetrahedron of the region whose distance to the region's
    boundary is closest to ``target_depth`` (mm), optionally restricted to a box.

    Args:
        msh: The mesh.
        region: Region name.
        target_depth: Wanted distance below the region boundary (mm).
        box: ``((xmin, xmax), (ymin, ymax), (zmin, zmax))`` to search in, or None.

    Returns:
        The point (mm, rounded to 0.1 mm) and its depth below the region boundary.
    """
    import numpy as np
    from scipy.spatial import cKDTree

    from tumorpde.meshing.msh import read_msh

    m = read_msh(msh)
    tag = m.regions[region]
    inside = m.tets[m.tet_tags == tag]
    # boundary of the region: faces of its tets that appear once
    faces = np.sort(
        np.concatenate(
            [inside[:, [0, 1, 2]], inside[:, [0, 1, 3]], inside[:, [0, 2, 3]], inside[:, [1, 2, 3]]]
        ),
        axis=1,
    )
    uniq, counts = np.unique(faces, axis=0, return_counts=True)
    bverts = np.unique(uniq[counts == 1])
    # sample boundary densely: vertices + face centroids
    bf = uniq[counts == 1]
    samples = np.concatenate([m.points[bverts], m.points[bf].mean(axis=1)])
    cents = m.points[inside].mean(axis=1)
    if box is not None:
        sel = np.all(
            [(cents[:, i] >= lo) & (cents[:, i] <= hi) for i, (lo, hi) in enumerate(box)], axis=0
        )
        if sel.any():
            cents = cents[sel]
    depth, _ = cKDTree(samples).query(cents)
    i = int(np.argmin(np.abs(depth - target_depth)))
    return [round(float(v), 1) for v in cents[i]], round(float(depth[i]), 2)


def _finish(
    organ: Organ,
    out: Path,
    meta: dict[str, Any],
    seed_region: str,
    depth: float,
    box: tuple[tuple[float, float], ...] | None,
    note: str,
) -> dict[str, Any]:
    import json

    stage("seed point")
    seed, d = choose_seed(out, seed_region, depth, box)
    meta["seed_point_mm"] = seed
    meta["seed_region"] = seed_region
    meta["seed_depth_mm"] = d
    meta["seed_note"] = note
    meta["atlas"] = {"organ": organ.name, "description": organ.description}
    out.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta


# -------------------------------------------------------------------------------------- brain
def brain_labels() -> LabelImage:
    """MNI152 2009a label image: 1 grey, 2 white, 3 lateral ventricles (1 mm, MNI mm)."""
    import warnings

    import numpy as np
    from scipy import ndimage as ndi

    try:
        from nilearn import datasets
    except ImportError as exc:
        raise MeshingError("the brain atlas needs nilearn: pip install 'tumorpde[mesh]'") from exc
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gm_img = datasets.load_mni152_gm_template(resolution=1)
        g = np.asarray(gm_img.get_fdata(), dtype=np.float32)
        w = np.asarray(datasets.load_mni152_wm_template(resolution=1).get_fdata(), np.float32)
    affine = np.asarray(gm_img.affine, dtype=float)
    tissue = (g + w) > 0.5
    lab, n = ndi.label(tissue)
    tissue = lab == (np.argmax(np.bincount(lab.ravel())[1:]) + 1)
    closed = ndi.binary_fill_holes(ndi.binary_closing(tissue, iterations=3))
    brain = ndi.binary_fill_holes(tissue) | closed
    csf = closed & ((g + w) < 0.3)
    lab, n = ndi.label(csf)
    vent = np.zeros_like(csf)
    ijk = np.indices(csf.shape).reshape(3, -1).T
    for c in range(1, n + 1):
        sel = (lab == c).ravel()
        size = int(sel.sum())
        if size < 2000:
            continue
        x, y, z = (ijk[sel].mean(axis=0) @ affine[:3, :3].T) + affine[:3, 3]
        if abs(x) < 30 and -45 < y < 25 and 0 < z < 35:  # lateral ventricles (MNI mm)
            vent |= lab == c
    data = np.zeros(g.shape, dtype=np.int32)
    data[brain] = 1
    data[brain & (w > g)] = 2
    data[vent & brain] = 3
    return LabelImage(data, affine, "nilearn MNI152 2009a (gm/wm probability maps)")


def _build_brain(organ: Organ, params: MeshParameters, out: Path, res: str) -> dict[str, Any]:
    stage("label image")
    img = brain_labels()
    meta = labels_to_mesh(
        img,
        {1: "grey", 2: "white"},
        out,
        holes={3: "ventricle"},
        params=params,
        name=out.stem,
        organ="brain",
        source=(
            "MNI ICBM152 2009a nonlinear symmetric template, 1 mm (grey/white-matter "
            "probability maps as shipped with nilearn; loaded offline). Labels: brain = "
            "p_grey + p_white > 0.5 (largest component, holes filled); white where p_white > "
            "p_grey; lateral ventricles = CSF-like voxels (p_grey + p_white < 0.3) inside the "
            "closed brain, components > 2 mL centred in |x| < 30, -45 < y < 25, 0 < z < 35 mm; "
            "meshed as holes. Coordinates: MNI space, mm (RAS)."
        ),
        license=MNI_LICENSE,
        attribution=MNI_ATTRIBUTION,
        extra_meta={"resolution": res},
    )
    return _finish(
        organ,
        out,
        meta,
        "white",
        4.0,
        ((15.0, 45.0), (20.0, 50.0), (10.0, 40.0)),
        "right frontal white matter (MNI x>0 right, y>0 anterior, z>0 superior), about 4 mm "
        "below the grey/white interface",
    )


# -------------------------------------------------------------------------------------- liver
def liver_labels() -> LabelImage:
    """CGAL's CT liver label image; only label 255 (the liver) is kept, as label 1."""
    import gzip
    import tempfile

    import numpy as np

    from tumorpde.meshing.labels import read_label_image

    raw = gzip.decompress(_cgal_member("data/images/liver.inr.gz"))
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "liver.inr"
        p.write_bytes(raw)
        img = read_label_image(p)
    data = (img.data == 255).astype(np.int32)
    return LabelImage(data, img.affine, "CGAL data/images/liver.inr.gz")


def _build_liver(organ: Organ, params: MeshParameters, out: Path, res: str) -> dict[str, Any]:
    stage("label image")
    img = liver_labels()
    params.outer_name = "capsule"
    meta = labels_to_mesh(
        img,
        {1: "liver"},
        out,
        params=params,
        name=out.stem,
        organ="liver",
        source=(
            "CT liver segmentation data/images/liver.inr.gz from CGAL 5.5.1 example data "
            "(438x353x165 voxels, 0.617x0.617x1.333 mm). Label 255 = liver (1.61 L). The other "
            "labels (127: 160 mL, mostly outside the liver; 85: 9 mL; 84: 2 voxels) are not "
            "documented and are not included. Internal cavities filled. Coordinates: image "
            "frame, mm (origin at the first voxel)."
        ),
        license=CGAL_LICENSE,
        attribution=CGAL_ATTRIBUTION,
        extra_meta={"resolution": res},
    )
    return _finish(
        organ,
        out,
        meta,
        "liver",
        25.0,
        None,
        "inside the liver parenchyma, about 25 mm below the capsule",
    )


# --------------------------------------------------------------------------------------- bone
#: Length (mm) the unit-length CGAL femur is scaled to (shaft diameter then ~28 mm, adult).
FEMUR_LENGTH_MM = 240.0
#: Cortical shell thickness (mm); the rest is marrow (medullary cavity + cancellous bone).
CORTICAL_MM = 4.0


def bone_labels(voxel: float) -> LabelImage:
    """Voxelised upper femur: 1 cortical shell (outer ``CORTICAL_MM``), 2 marrow."""
    import io

    import numpy as np
    import pyvista as pv
    from scipy import ndimage as ndi

    text = _cgal_member("data/meshes/femur.off").decode()
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    nv, nf, _ = (int(v) for v in lines[1].split()[:3])
    pts = np.loadtxt(io.StringIO("\n".join(lines[2 : 2 + nv])))
    faces = np.loadtxt(io.StringIO("\n".join(lines[2 + nv : 2 + nv + nf])), dtype=np.int64)
    pts = pts * FEMUR_LENGTH_MM
    pts[:, 1:] *= -1.0  # rotate 180 deg about x: femoral head up (+z)
    pts -= pts.min(axis=0)
    surf = pv.PolyData(pts, np.hstack([np.full((nf, 1), 3), faces[:, 1:4]]).ravel())
    pad = 3 * voxel
    dims = np.ceil((pts.max(axis=0) + 2 * pad) / voxel).astype(int) + 1
    ref = pv.ImageData(dimensions=dims, spacing=(voxel,) * 3, origin=(-pad,) * 3)
    mask = surf.voxelize_binary_mask(reference_volume=ref)
    inside = np.asarray(mask.point_data[mask.point_data.keys()[0]]).reshape(dims, order="F") > 0
    inside = ndi.binary_fill_holes(inside)
    depth = ndi.distance_transform_edt(inside, sampling=voxel)
    data = np.zeros(inside.shape, dtype=np.int32)
    data[inside] = 1
    data[depth > CORTICAL_MM] = 2
    affine = np.diag([voxel, voxel, voxel, 1.0])
    affine[:3, 3] = -pad
    return LabelImage(data, affine, "CGAL data/meshes/femur.off (voxelised)")


def _build_bone(organ: Organ, params: MeshParameters, out: Path, res: str) -> dict[str, Any]:
    stage("label image")
    img = bone_labels(min(0.5, params.size / 4.0))
    params.outer_name = "periosteum"
    meta = labels_to_mesh(
        img,
        {1: "cortical", 2: "marrow"},
        out,
        params=params,
        name=out.stem,
        organ="bone (upper femur)",
        source=(
            "closed upper-femur surface data/meshes/femur.off from CGAL 5.5.1 example data "
            f"(unit length), scaled to {FEMUR_LENGTH_MM:g} mm (shaft diameter ~28 mm, adult), "
            "rotated 180 deg about x so the femoral head points to +z, shifted to the positive "
            f"octant; voxelised; cortical bone = outer {CORTICAL_MM:g} mm shell (uniform; "
            "an assumption: real cortex is ~1-2 mm at the head and 5-7 mm in the shaft), "
            "marrow = the rest (medullary cavity and cancellous bone, not separated)."
        ),
        license=CGAL_LICENSE,
        attribution=CGAL_ATTRIBUTION,
        extra_meta={
            "resolution": res,
            "femur_length_mm": FEMUR_LENGTH_MM,
            "cortical_thickness_mm": CORTICAL_MM,
        },
    )
    return _finish(
        organ, out, meta, "marrow", 6.0, None, "in the marrow, about 6 mm from the cortical bone"
    )


# --------------------------------------------------------------------------------------- lung
@dataclass
class LungShape:
    """Parametric lung pair (mm). x: left→right of the patient, y: posterior→anterior, z up.

    Each lung is the upper part of an ellipsoid (apex up), cut by the dome of the diaphragm;
    the left lung has a cardiac notch. Dimensions follow adult chest CT at mid-inspiration:
    height ~22–24 cm, antero-posterior depth ~16–17 cm, width ~10–12 cm per lung, total
    volume ~4.5 L (right ~55 %).
    """

    right_semi_axes: tuple[float, float, float] = (62.0, 85.0, 240.0)
    left_semi_axes: tuple[float, float, float] = (56.0, 82.0, 230.0)
    mediastinum_half_width: float = 45.0
    base_z: float = 0.0  # lowest point of the lung bases (posterior costophrenic recess)
    dome_semi_axes: tuple[float, float, float] = (60.0, 80.0, 50.0)
    right_dome_top: float = 60.0  # right hemidiaphragm sits higher (liver)
    left_dome_top: float = 45.0
    notch_centre: tuple[float, float, float] = (-35.0, 40.0, 70.0)
    notch_radius: float = 40.0


def _build_lung(organ: Organ, params: MeshParameters, out: Path, res: str) -> dict[str, Any]:
    import gmsh

    from tumorpde.meshing.gmsh_session import gmsh_session
    from tumorpde.meshing.labels import _gmsh_options, _optimize, write_metadata, write_model

    t0 = time.perf_counter()
    s = LungShape()
    with gmsh_session(terminal=False):
        gmsh.model.add(out.stem)
        occ = gmsh.model.occ

        def ellipsoid(c: tuple[float, float, float], ax: tuple[float, float, float]) -> int:
            t = occ.addSphere(*c, 1.0)
            occ.dilate([(3, t)], *c, *ax)
            return t

        lungs = {}
        for side, sign, ax, dome_top in (
            ("right", 1.0, s.right_semi_axes, s.right_dome_top),
            ("left", -1.0, s.left_semi_axes, s.left_dome_top),
        ):
            cx = sign * (s.mediastinum_half_width + ax[0])
            body = ellipsoid((cx, 0.0, s.base_z), ax)
            cut = occ.addBox(
                cx - 2 * ax[0], -2 * ax[1], s.base_z - 2 * ax[2], 4 * ax[0], 4 * ax[1], 2 * ax[2]
            )
            dome = ellipsoid((cx, 0.0, dome_top - s.dome_semi_axes[2]), s.dome_semi_axes)
            tools = [(3, cut), (3, dome)]
            if side == "left":
                tools.append((3, occ.addSphere(*s.notch_centre, s.notch_radius)))
            res_ = occ.cut([(3, body)], tools)
            vols = [t for d, t in res_[0] if d == 3]
            lungs[side] = vols
        occ.synchronize()
        _gmsh_options(params)
        gmsh.option.setNumber("Mesh.MeshSizeMax", params.size)
        gmsh.option.setNumber("Mesh.MeshSizeMin", params.size / 4.0)
        gmsh.option.setNumber("Mesh.MeshSizeFromCurvature", 12)
        gmsh.option.setNumber("Mesh.Algorithm", 6)
        if params.refine:  # CAD geometry: the zones refine the pleura they cross as well
            from tumorpde.meshing.zones import apply_size_fields

            apply_size_fields(params.refine, params.size)
        regions = {"right_lung": 1, "left_lung": 2}
        for (n, t), side in zip(regions.items(), ("right", "left"), strict=True):
            gmsh.model.addPhysicalGroup(3, lungs[side], t, name=n)
            bnd = gmsh.model.getBoundary([(3, v) for v in lungs[side]], oriented=False)
            gmsh.model.addPhysicalGroup(
                2, sorted({abs(b) for _, b in bnd}), 10 + t - 1, name=f"{side}_pleura"
            )
        stage("volume mesh")
        gmsh.model.mesh.generate(3)
        stage("optimise")
        _optimize(params.optimize_passes)
        stage("write")
        fmt = write_model(out)
    from dataclasses import asdict

    stage("quality")
    meta = write_metadata(
        out,
        name=out.stem,
        organ="lung",
        fmt=fmt,
        source=(
            "PARAMETRIC, NOT PATIENT ANATOMY: no real lung source is available offline. Each "
            "lung is an ellipsoid's upper part cut by a diaphragm dome (right higher), the "
            "left with a cardiac notch, built with gmsh OpenCASCADE; dimensions of an adult "
            "chest at mid-inspiration (see generator parameters)."
        ),
        license="CC0-1.0 (generated by tumorpde)",
        attribution="",
        parameters={
            "size": params.size,
            "shape": asdict(s),
            "optimize_passes": params.optimize_passes,
            "random_seed": params.random_seed,
            "refine": [asdict(z) for z in params.refine],
        },
        t0=t0,
        extra={"resolution": res},
    )
    return _finish(
        organ, out, meta, "right_lung", 20.0, None, "right lung, about 20 mm inside the pleura"
    )


ORGANS: dict[str, Organ] = {
    o.name: o
    for o in (
        Organ(
            "brain",
            "MNI152 2009a brain: grey, white matter; lateral ventricles as holes",
            {"coarse": 6.0, "fine": 2.6},
            _build_brain,
            "nilearn (tumorpde[mesh])",
        ),
        Organ(
            "liver",
            "CT liver (CGAL example data): one region",
            {"coarse": 5.5, "fine": 2.5},
            _build_liver,
            "apt-get install libcgal-demo",
        ),
        Organ(
            "bone",
            "upper femur (CGAL example data): cortical bone, marrow",
            {"coarse": 3.0, "fine": 1.4},
            _build_bone,
            "apt-get install libcgal-demo",
        ),
        Organ(
            "lung",
            "parametric adult lung pair (gmsh OpenCASCADE)",
            {"coarse": 7.5, "fine": 3.4},
            _build_lung,
            "gmsh",
        ),
    )
}


def atlas_stem(name: str, resolution: str, refined: bool = False) -> str:
    """File stem of an atlas build: ``brain``, ``brain_fine``, ``brain_refined``, ..."""
    stem = name if resolution == "coarse" else f"{name}_{resolution}"
    return f"{stem}_refined" if refined else stem


def build_organ(
    name: str,
    resolution: str = "coarse",
    out_dir: str | Path | None = None,
    size: float | None = None,
    refine: list[RefineZone] | None = None,
) -> dict[str, Any]:
    """Build an atlas mesh.

    Args:
        name: Organ (a key of :data:`ORGANS`).
        resolution: ``coarse`` or ``fine``.
        out_dir: Output directory (default :func:`default_cache_dir`). The file is
            :func:`atlas_stem` ``.msh``: ``<organ>.msh`` for coarse, ``<organ>_<resolution>.msh``
            otherwise, with ``_refined`` appended when ``refine`` is given.
        size: Override the target edge length (mm).
        refine: Balls with smaller tetrahedra (gmsh size fields, e.g. around a lesion).

    Returns:
        The metadata (also written as ``.json`` next to the mesh).
    """
    if name not in ORGANS:
        raise MeshingError(f"unknown organ {name!r}; available: {', '.join(ORGANS)}")
    organ = ORGANS[name]
    if resolution not in organ.sizes:
        raise MeshingError(f"--resolution {resolution!r}: use one of {', '.join(organ.sizes)}")
    out_dir = Path(out_dir) if out_dir is not None else default_cache_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = atlas_stem(name, resolution, bool(refine))
    params = MeshParameters(
        size=size if size is not None else organ.sizes[resolution], refine=list(refine or [])
    )
    return organ.builder(organ, params, out_dir / f"{stem}.msh", resolution)

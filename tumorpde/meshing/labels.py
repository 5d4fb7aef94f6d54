"""Label images to tagged tetrahedral meshes: the tumorpde meshing pipeline (no DOLFINx).

Pipeline (:func:`labels_to_mesh`)::

    label image --resample/smooth--> nested level sets (signed distances, mm)
        --marching cubes (scikit-image)--> surfaces --pyacvd (remesh) + pymeshfix (repair)-->
        closed, non-intersecting surfaces --gmsh (Delaunay + Netgen optimisation)--> .msh + .json

Regions are *nested*: the outermost region (the smallest mean depth below the organ surface)
encloses the next one, and so on; labels given as *holes* (e.g. ventricles) are removed from the
innermost region. Each level set is kept at least ``gap`` (mm) inside the one enclosing it, so
the surfaces never touch and every interface is conforming. Thin layers thinner than ``gap`` are
widened to ``gap`` at the expense of the inner region; structures smaller than
``min_component`` are dropped. Physical groups: regions 1.., boundaries 10.. (the outer surface
``outer`` (or a given name), ``<a>_<b>_interface`` between nested regions (interior facets),
``<hole>_wall`` around holes).

Heavy dependencies (numpy, scipy, scikit-image, pyacvd, pymeshfix, pyvista, gmsh, nibabel,
pynrrd, meshio) are imported inside the functions that need them: importing this module is
cheap; the ``mesh`` extra installs them.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
import warnings
from dataclasses import asdict, dataclass
from dataclasses import field as _field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tumorpde.meshing.gmsh_session import gmsh_session
from tumorpde.progress import stage

if TYPE_CHECKING:
    import numpy as np

    from tumorpde.meshing.zones import RefineZone

__all__ = [
    "GENERATOR_VERSION",
    "LabelImage",
    "MeshParameters",
    "MeshingError",
    "import_mesh",
    "labels_to_mesh",
    "parse_labels",
    "read_label_image",
    "write_model",
]

#: Bumped whenever the pipeline changes its output for the same input and parameters.
GENERATOR_VERSION = "1.1"

REGION_TAG0 = 1
BOUNDARY_TAG0 = 10


class MeshingError(ValueError):
    """Invalid meshing input; the message names the file or field and what is wrong."""


# ------------------------------------------------------------------------------- label images
@dataclass
class LabelImage:
    """An integer label volume on a voxel grid.

    Attributes:
        data: Labels, shape (ni, nj, nk), indexed by voxel index (i, j, k); 0 is background.
        affine: 4x4 map from voxel index to world coordinates in mm.
        source: Where it came from (file name), for messages and metadata.
    """

    data: np.ndarray
    affine: np.ndarray
    source: str = "<array>"

    @property
    def spacing(self) -> np.ndarray:
        """Voxel size (mm) along i, j, k."""
        import numpy as np

        return np.linalg.norm(self.affine[:3, :3], axis=0)

    def labels(self) -> list[int]:
        """Non-zero labels present in the image."""
        import numpy as np

        return [int(v) for v in np.unique(self.data) if v != 0]


def _parse_spacing(spacing: str | tuple[float, ...] | None, source: str) -> tuple[float, ...]:
    if spacing is None:
        raise MeshingError(f"{source}: a .npy label image needs --spacing (voxel size in mm)")
    if isinstance(spacing, str):
        try:
            vals = tuple(float(v) for v in spacing.replace("x", ",").split(","))
        except ValueError as exc:
            raise MeshingError(f"--spacing {spacing!r}: expected e.g. 1 or 0.5,0.5,1.2") from exc
    else:
        vals = tuple(float(v) for v in spacing)
    if len(vals) == 1:
        vals = vals * 3
    if len(vals) != 3 or min(vals) <= 0:
        raise MeshingError(f"--spacing {spacing!r}: need one or three positive voxel sizes (mm)")
    return vals


def _read_inr(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read an INRIMAGE-4 (``.inr`` / ``.inr.gz``) scalar volume (as used by CGAL)."""
    import gzip

    import numpy as np

    raw = (gzip.open if path.name.endswith(".gz") else open)(path, "rb").read()
    if not raw.startswith(b"#INRIMAGE-4#{"):
        raise MeshingError(f"{path}: not an INRIMAGE-4 file")
    end = raw.index(b"##}\n") + 4
    hdr = dict(line.split("=", 1) for line in raw[:end].decode("ascii").splitlines() if "=" in line)
    shape = tuple(int(hdr[k]) for k in ("XDIM", "YDIM", "ZDIM"))
    if int(hdr.get("VDIM", 1)) != 1:
        raise MeshingError(f"{path}: vector images are not label images")
    bits = int(hdr["PIXSIZE"].split()[0])
    kind = hdr["TYPE"].strip()
    if kind == "float":
        dtype: Any = {32: np.float32, 64: np.float64}[bits]
    else:
        signed = kind.startswith("signed")
        dtype = np.dtype(f"{'i' if signed else 'u'}{bits // 8}")
    if hdr.get("CPU", "decm").strip() in ("sun", "sgi"):
        dtype = np.dtype(dtype).newbyteorder(">")
    data = np.frombuffer(raw[end:], dtype=dtype, count=int(np.prod(shape)))
    data = data.reshape(shape[::-1]).transpose(2, 1, 0)  # stored x fastest
    sp = [float(hdr.get(k, 1.0)) for k in ("VX", "VY", "VZ")]
    return np.ascontiguousarray(data), np.diag([*sp, 1.0])


def read_label_image(
    path: str | Path, spacing: str | tuple[float, ...] | None = None
) -> LabelImage:
    """Read a label image.

    Args:
        path: NIfTI (``.nii``, ``.nii.gz``), NRRD (``.nrrd``, ``.nhdr``), INRIMAGE
            (``.inr``, ``.inr.gz``) or a numpy ``.npy`` integer array.
        spacing: Voxel size in mm for ``.npy`` (one value or three); overrides the file's
            spacing for the other formats.

    Returns:
        The label image with its voxel-to-mm affine.

    Raises:
        MeshingError: Missing file, unknown format, non-integer or empty label data.
    """
    import numpy as np

    path = Path(path)
    src = str(path)
    if not path.is_file():
        raise MeshingError(f"{path}: label image not found")
    try:
        data, affine, spacing = _read_label_data(path, spacing)
    except MeshingError:
        raise
    except Exception as exc:  # nibabel, pynrrd and numpy raise many kinds on damaged files
        raise MeshingError(
            f"{path}: cannot read the label image ({type(exc).__name__}: {exc})"
        ) from None
    data = np.squeeze(np.asarray(data))
    if data.ndim != 3:
        raise MeshingError(f"{path}: expected a 3D label volume, got shape {data.shape}")
    if data.dtype.kind == "f":
        if not np.all(np.isfinite(data)) or not np.all(data == np.round(data)):
            raise MeshingError(f"{path}: label image has non-integer values (not a label map)")
        data = data.astype(np.int64)
    elif data.dtype.kind not in "iub":
        raise MeshingError(f"{path}: label image has unsupported data type {data.dtype}")
    if spacing is not None:
        sp = _parse_spacing(spacing, src)
        cols = affine[:3, :3] / np.linalg.norm(affine[:3, :3], axis=0)
        affine[:3, :3] = cols * np.asarray(sp)
    img = LabelImage(np.ascontiguousarray(data.astype(np.int32)), affine, src)
    if not img.labels():
        raise MeshingError(f"{path}: image has no labels (every voxel is 0)")
    return img


def _read_label_data(
    path: Path, spacing: str | tuple[float, ...] | None
) -> tuple[Any, Any, str | tuple[float, ...] | None]:
    """Voxel data, voxel-to-mm affine and the spacing still to apply, by file format."""
    import numpy as np

    src = str(path)
    name = path.name.lower()
    if name.endswith(".npy"):
        data = np.load(path)
        affine = np.diag([*_parse_spacing(spacing, src), 1.0])
        spacing = None
    elif name.endswith((".nii", ".nii.gz")):
        try:
            import nibabel as nib
        except ImportError as exc:
            raise MeshingError(f"{path}: reading NIfTI needs nibabel (tumorpde[mesh])") from exc
        img = nib.load(str(path))
        data = np.asanyarray(img.dataobj)
        affine = np.asarray(img.affine, dtype=float)
        if img.header.get_xyzt_units()[0] == "meter":
            affine[:3] *= 1000.0
        elif img.header.get_xyzt_units()[0] == "micron":
            affine[:3] *= 1e-3
    elif name.endswith((".nrrd", ".nhdr")):
        try:
            import nrrd
        except ImportError as exc:
            raise MeshingError(f"{path}: reading NRRD needs pynrrd (tumorpde[mesh])") from exc
        data, hdr = nrrd.read(str(path))
        affine = np.eye(4)
        if "space directions" in hdr and hdr["space directions"] is not None:
            affine[:3, :3] = np.asarray(hdr["space directions"], dtype=float)[-3:].T
        elif "spacings" in hdr:
            affine[:3, :3] = np.diag(np.asarray(hdr["spacings"], dtype=float)[-3:])
        if "space origin" in hdr and hdr["space origin"] is not None:
            affine[:3, 3] = np.asarray(hdr["space origin"], dtype=float)
    elif name.endswith((".inr", ".inr.gz")):
        data, affine = _read_inr(path)
    else:
        raise MeshingError(
            f"{path}: unknown label-image format (use .nii, .nii.gz, .nrrd, .nhdr, .inr, "
            ".inr.gz or .npy)"
        )
    return data, affine, spacing


def parse_labels(text: str, option: str = "--labels") -> dict[int, str]:
    """Parse ``"1=tumor,2=white"`` into ``{1: "tumor", 2: "white"}``.

    Several labels may share a name (they are merged). Names must be identifiers.

    Raises:
        MeshingError: Malformed entry, non-integer or duplicate label, bad name.
    """
    out: dict[int, str] = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        key, sep, name = item.partition("=")
        if not sep or not name.strip():
            raise MeshingError(f"{option}: entry {item!r} is not LABEL=NAME")
        try:
            label = int(key)
        except ValueError as exc:
            raise MeshingError(f"{option}: label {key!r} in {item!r} is not an integer") from exc
        name = name.strip()
        if not name.isidentifier():
            raise MeshingError(f"{option}: name {name!r} must be letters, digits and _")
        if label == 0:
            raise MeshingError(f"{option}: label 0 is the background and cannot be a region")
        if label in out:
            raise MeshingError(f"{option}: label {label} is given twice")
        out[label] = name
    if not out and option == "--labels":
        raise MeshingError(f"{option}: no labels given (e.g. --labels 1=tumor,2=white)")
    return out


# ------------------------------------------------------------------------------ parameters
@dataclass
class MeshParameters:
    """Parameters of :func:`labels_to_mesh` (lengths in mm).

    Attributes:
        size: Target edge length of surface triangles and tetrahedra.
        voxel: Working voxel size the labels are resampled to (default ``size / 4``, never
            finer than the image).
        smoothing: Gaussian smoothing (standard deviation) of each label before surfaces are
            extracted (default ``0.3 * size``).
        gap: Minimum distance between nested surfaces (default ``0.5 * size``).
        min_component: Connected pieces smaller than this volume (mm³) are dropped (default
            ``(1.5 * size)³``).
        outer_name: Name of the outer boundary.
        optimize_passes: Rounds of gmsh's default + Netgen optimisation after meshing.
        algorithm_3d: gmsh ``Mesh.Algorithm3D`` (1 Delaunay, 10 HXT).
        random_seed: gmsh ``Mesh.RandomSeed`` (fixed: reproducible output).
        refine: Balls (:class:`~tumorpde.meshing.zones.RefineZone`) where the tetrahedra are
            smaller (gmsh size fields, e.g. around a lesion); the surfaces keep ``size``.
    """

    size: float = 6.0
    voxel: float | None = None
    smoothing: float | None = None
    gap: float | None = None
    min_component: float | None = None
    outer_name: str = "outer"
    optimize_passes: int = 2
    algorithm_3d: int = 1
    random_seed: int = 1
    refine: list[RefineZone] = _field(default_factory=list)

    def resolved(self) -> MeshParameters:
        """A copy with every default filled in."""
        if self.size <= 0:
            raise MeshingError(f"size = {self.size}: the target edge length must be positive")
        return MeshParameters(
            size=self.size,
            voxel=self.voxel if self.voxel is not None else self.size / 4.0,
            smoothing=self.smoothing if self.smoothing is not None else 0.3 * self.size,
            gap=self.gap if self.gap is not None else 0.5 * self.size,
            min_component=(
                self.min_component if self.min_component is not None else (1.5 * self.size) ** 3
            ),
            outer_name=self.outer_name,
            optimize_passes=self.optimize_passes,
            algorithm_3d=self.algorithm_3d,
            random_seed=self.random_seed,
            refine=list(self.refine),
        )


# ------------------------------------------------------------------------ level-set geometry
@dataclass
class _Grid:
    """Working grid: affine (index -> mm) and voxel sizes."""

    affine: np.ndarray
    spacing: np.ndarray


def _resample(
    img: LabelImage, names: dict[int, str], voxel: float, sigma: float
) -> tuple[np.ndarray, list[str], _Grid]:
    """Smoothed label map on the working grid: index into ``["", *names]`` per voxel."""
    import numpy as np
    from scipy import ndimage as ndi

    spacing = img.spacing
    factors = np.minimum(spacing / voxel, 1.0)  # never refine beyond the image
    factors = np.where(np.abs(factors - 1.0) < 1e-6, 1.0, factors)
    uniq = list(dict.fromkeys(names.values()))
    pad = 3 + math.ceil(3 * sigma / voxel)
    fields = []
    for name in ["", *uniq]:
        if name:
            mask = np.isin(img.data, [k for k, v in names.items() if v == name])
        else:
            mask = ~np.isin(img.data, list(names))
        f = mask.astype(np.float32)
        if np.any(factors != 1.0):
            f = ndi.zoom(f, factors, order=1, grid_mode=True, mode="grid-constant")
        f = np.pad(f, pad, constant_values=1.0 if not name else 0.0)
        new_spacing = spacing / factors
        if sigma > 0:
            f = ndi.gaussian_filter(f, sigma / new_spacing, mode="nearest")
        fields.append(f)
    labels = np.argmax(np.stack(fields), axis=0).astype(np.int16)
    # grid_mode zoom: new voxel centre j maps to old index (j + 0.5) / f - 0.5.
    scale = np.diag([*(1.0 / factors), 1.0])
    shift = np.eye(4)
    shift[:3, 3] = 0.5 / factors - 0.5 - pad / factors
    aff = img.affine @ shift @ scale
    return labels, uniq, _Grid(aff, spacing / factors)


def _remove_small(mask: np.ndarray, min_voxels: float) -> np.ndarray:
    import numpy as np
    from scipy import ndimage as ndi

    lab, n = ndi.label(mask, structure=np.ones((3, 3, 3)))
    if n == 0:
        return mask
    sizes = np.bincount(lab.ravel())
    keep = sizes >= min_voxels
    keep[0] = False
    return keep[lab]


def _sdf(mask: np.ndarray, spacing: np.ndarray) -> np.ndarray:
    """Signed distance (mm), positive inside ``mask``."""
    import numpy as np
    from scipy import ndimage as ndi

    inside = ndi.distance_transform_edt(mask, sampling=spacing)
    outside = ndi.distance_transform_edt(~mask, sampling=spacing)
    return (np.where(mask, inside - 0.5 * spacing.min(), -(outside - 0.5 * spacing.min()))).astype(
        np.float32
    )


@dataclass
class _Surface:
    """A closed triangulated surface (mm)."""

    points: np.ndarray
    faces: np.ndarray
    level: int
    component: int
    name: str = ""


def _extract(sdf: np.ndarray, comp: np.ndarray, c: int, grid: _Grid) -> tuple[Any, Any]:
    """Marching cubes of one connected component of ``sdf > 0``; largest closed piece."""
    import numpy as np
    from skimage import measure

    idx = np.argwhere(comp == c)
    lo = np.maximum(idx.min(axis=0) - 2, 0)
    hi = np.minimum(idx.max(axis=0) + 3, comp.shape)
    sl = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
    field = np.where(comp[sl] == c, sdf[sl], np.minimum(sdf[sl], -1e-3)).astype(np.float32)
    field = np.pad(field, 1, constant_values=-1.0)
    verts, faces, _, _ = measure.marching_cubes(field, 0.0)
    verts = verts - 1.0 + lo
    pts = verts @ grid.affine[:3, :3].T + grid.affine[:3, 3]
    return pts, faces


def _remesh(points: np.ndarray, faces: np.ndarray, size: float, where: str) -> tuple[Any, Any]:
    """Uniform remeshing (pyacvd) and repair (pymeshfix) of a closed surface."""
    import numpy as np
    import pyacvd
    import pymeshfix
    import pyvista as pv

    surf = pv.PolyData(points, np.hstack([np.full((faces.shape[0], 1), 3), faces]).ravel())
    surf = surf.clean()
    area = float(surf.area)
    nclus = max(40, round(1.1547 * area / size**2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pyacvd uses deprecated PyVista attributes
        clus = pyacvd.Clustering(surf)
        if surf.n_points < 3 * nclus:
            clus.subdivide(max(1, math.ceil(math.log(3 * nclus / max(surf.n_points, 1), 4))))
        clus.cluster(nclus)
        rem = clus.create_mesh()
    tri = rem.faces.reshape(-1, 4)[:, 1:]
    fix = pymeshfix.MeshFix(np.asarray(rem.points, dtype=float), tri.astype(np.int32))
    fix.repair(joincomp=False, remove_smallest_components=True)
    pts, fcs = np.asarray(fix.points, dtype=float), np.asarray(fix.faces, dtype=np.int64)
    if fcs.shape[0] < 4:
        raise MeshingError(f"{where}: surface vanished during remeshing (too small for size)")
    # closed 2-manifold check: every edge shared by exactly two triangles
    edges = np.sort(np.concatenate([fcs[:, [0, 1]], fcs[:, [1, 2]], fcs[:, [2, 0]]]), axis=1)
    _, counts = np.unique(edges, axis=0, return_counts=True)
    if not np.all(counts == 2):
        raise MeshingError(f"{where}: repaired surface is not closed (mesh size too coarse?)")
    return pts, fcs


def nested_surfaces(
    img: LabelImage,
    regions: dict[int, str],
    holes: dict[int, str],
    params: MeshParameters,
) -> tuple[list[str], list[str], list[_Surface], dict[str, Any]]:
    """Nested, separated surfaces for the regions (outer to inner) and holes of a label image.

    Args:
        img: Label image.
        regions: Label -> region name.
        holes: Label -> hole name (removed from the innermost region).
        params: Resolved parameters.

    Returns:
        Region names outer to inner, hole names, surfaces, and diagnostics (voxel volumes).
    """
    import numpy as np
    from scipy import ndimage as ndi

    p = params
    assert p.voxel is not None and p.smoothing is not None and p.gap is not None
    assert p.min_component is not None
    all_names = {**regions, **holes}
    labels, uniq, grid = _resample(img, all_names, p.voxel, p.smoothing)
    vox_vol = float(np.prod(grid.spacing))
    region_names = list(dict.fromkeys(regions.values()))
    hole_names = list(dict.fromkeys(holes.values()))
    idx = {n: i + 1 for i, n in enumerate(uniq)}
    fg = labels > 0
    if not fg.any():
        raise MeshingError(f"{img.source}: nothing left after smoothing (size {p.size} too large?)")
    depth = ndi.distance_transform_edt(fg, sampling=grid.spacing)
    mean_depth = {}
    for n in region_names:
        sel = labels == idx[n]
        if not sel.any():
            raise MeshingError(
                f"{img.source}: region {n!r} vanishes at mesh size {p.size} mm "
                "(too small or too thin; use a smaller size)"
            )
        mean_depth[n] = float(depth[sel].mean())
    order = sorted(region_names, key=lambda n: (mean_depth[n], region_names.index(n)))
    diag = {
        "voxel_volumes_mm3": {
            n: round(
                float(np.isin(img.data, [k for k, v in all_names.items() if v == n]).sum())
                * float(np.prod(img.spacing)),
                1,
            )
            for n in uniq
        },
        "nesting_order": order,
    }
    min_vox = p.min_component / vox_vol
    levels: list[np.ndarray] = []
    for k in range(len(order) + (1 if hole_names else 0)):
        inner = order[k:] + hole_names if k < len(order) else hole_names
        mask = np.isin(labels, [idx[n] for n in inner])
        if hole_names and k == len(order) - 1:
            # the innermost region wraps the holes by >= 2 gaps, so that holes bordering an
            # outer region (e.g. ventricles next to the caudate) are not squeezed away
            hole = np.isin(labels, [idx[n] for n in hole_names])
            mask |= ndi.distance_transform_edt(~hole, sampling=grid.spacing) <= 2.0 * p.gap
        mask = ndi.binary_fill_holes(_remove_small(mask, min_vox))
        sdf = _sdf(mask, grid.spacing)
        if levels:
            sdf = np.minimum(sdf, levels[-1] - p.gap)
        levels.append(sdf)
    surfaces: list[_Surface] = []
    for k, sdf in enumerate(levels):
        mask = _remove_small(sdf > 0, min_vox)
        if k == 0 and not mask.any():
            raise MeshingError(f"{img.source}: domain smaller than min_component")
        comp, n = ndi.label(mask, structure=np.ones((3, 3, 3)))
        for c in range(1, n + 1):
            is_hole = k == len(order)
            name = ""
            if is_hole:
                vals = labels[comp == c]
                counts = np.bincount(vals, minlength=len(uniq) + 1)
                name = max(hole_names, key=lambda h: counts[idx[h]])
            where = f"{img.source}: level {k} ({order[k] if not is_hole else name}) piece {c}"
            pts, faces = _extract(sdf, comp, c, grid)
            pts, faces = _remesh(pts, faces, p.size, where)
            surfaces.append(_Surface(pts, faces, k, c, name))
        levels[k] = np.where(mask, comp, 0)  # component ids, reused for containment
    # containment: each surface of level k>0 lies in one component of level k-1
    parents: dict[tuple[int, int], int] = {}
    for s in surfaces:
        if s.level == 0:
            continue
        ids = levels[s.level]
        vox = np.argwhere(ids == s.component)[0]
        parents[(s.level, s.component)] = int(levels[s.level - 1][tuple(vox)])
    diag["parents"] = parents
    return order, hole_names, surfaces, diag


# --------------------------------------------------------------------------------- gmsh model
def _gmsh_options(params: MeshParameters) -> None:
    import gmsh

    opt = gmsh.option.setNumber
    opt("General.Terminal", 0)
    opt("General.NumThreads", 1)  # single-threaded: reproducible
    opt("Mesh.MaxNumThreads1D", 1)
    opt("Mesh.MaxNumThreads2D", 1)
    opt("Mesh.MaxNumThreads3D", 1)
    opt("Mesh.RandomSeed", params.random_seed)
    opt("Mesh.Algorithm3D", params.algorithm_3d)
    opt("Mesh.ElementOrder", 1)
    opt("Mesh.Optimize", 1)
    opt("Mesh.OptimizeNetgen", 1)
    opt("Mesh.OptimizeThreshold", 0.3)


#: Extra optimisation rounds (node relocation, Netgen, gmsh) while slivers remain. They remove
#: interior slivers (a lung with a 4 mm size field: 2 -> 0); the 6 of the fine MNI brain (min
#: 0.78 deg) have a face or more on a remeshed surface and stay.
SLIVER_ROUNDS = 4


def _slivers() -> tuple[int, float]:
    """Tetrahedra of the current gmsh model below the sliver angle, and the min dihedral (deg)."""
    import gmsh
    import numpy as np

    from tumorpde.meshing.info import SLIVER_DEG, dihedral_angles

    node_tags, coords, _ = gmsh.model.mesh.getNodes()
    _, enodes = gmsh.model.mesh.getElementsByType(4)
    if not enodes.size:
        return 0, 180.0
    index = np.zeros(int(node_tags.max()) + 1, dtype=np.int64)
    index[node_tags.astype(np.int64)] = np.arange(node_tags.size)
    pts = coords.reshape(-1, 3)[index[enodes.astype(np.int64)]].reshape(-1, 4, 3)
    mins = dihedral_angles(pts).min(axis=1)
    return int((mins < SLIVER_DEG).sum()), float(mins.min())


def _optimize(passes: int) -> None:
    import gmsh

    for _ in range(passes):
        gmsh.model.mesh.optimize("Netgen")
        gmsh.model.mesh.optimize("")
    for _ in range(SLIVER_ROUNDS):  # a mesh without slivers is left exactly as it is
        if _slivers()[0] == 0:
            break
        gmsh.model.mesh.optimize("Relocate3D")
        gmsh.model.mesh.optimize("Netgen")
        gmsh.model.mesh.optimize("")


def surfaces_to_model(
    order: list[str],
    hole_names: list[str],
    surfaces: list[_Surface],
    parents: dict[tuple[int, int], int],
    params: MeshParameters,
) -> tuple[dict[str, int], dict[str, int]]:
    """Create and mesh a gmsh model bounded by the given nested surfaces.

    gmsh must be initialised with an empty current model.

    Returns:
        Region name -> tag, boundary name -> tag (physical groups created).
    """
    import gmsh
    import numpy as np

    _gmsh_options(params)
    gmsh.option.setNumber("Mesh.MeshSizeMax", params.size)
    gmsh.option.setNumber("Mesh.MeshSizeMin", params.size / 4.0)
    if params.refine:
        from tumorpde.meshing.zones import apply_size_fields

        apply_size_fields(params.refine, params.size)
    node0 = 1
    stag: dict[tuple[int, int], int] = {}
    for i, s in enumerate(surfaces):
        tag = i + 1
        gmsh.model.addDiscreteEntity(2, tag)
        ntags = np.arange(node0, node0 + s.points.shape[0], dtype=np.int64)
        gmsh.model.mesh.addNodes(2, tag, ntags, s.points.ravel())
        gmsh.model.mesh.addElementsByType(tag, 2, [], (s.faces + node0).ravel())
        node0 += s.points.shape[0]
        stag[(s.level, s.component)] = tag
    n_region_levels = len(order)
    vol_groups: dict[str, list[int]] = {n: [] for n in order}
    surf_groups: dict[str, list[int]] = {}
    for s in surfaces:
        if s.level >= n_region_levels:
            continue
        children = [
            stag[(c.level, c.component)]
            for c in surfaces
            if c.level == s.level + 1 and parents[(c.level, c.component)] == s.component
        ]
        loops = [gmsh.model.geo.addSurfaceLoop([stag[(s.level, s.component)]])]
        loops += [gmsh.model.geo.addSurfaceLoop([c]) for c in children]
        vol_groups[order[s.level]].append(gmsh.model.geo.addVolume(loops))
    gmsh.model.geo.synchronize()
    for s in surfaces:
        t = stag[(s.level, s.component)]
        if s.level == 0:
            name = params.outer_name
        elif s.level < n_region_levels:
            name = f"{order[s.level - 1]}_{order[s.level]}_interface"
        else:
            name = f"{s.name}_wall"
        surf_groups.setdefault(name, []).append(t)
    gmsh.model.mesh.generate(3)
    stage("optimise")
    _optimize(params.optimize_passes)
    regions = {n: REGION_TAG0 + i for i, n in enumerate(order) if vol_groups[n]}
    boundaries: dict[str, int] = {}
    for n in [params.outer_name, *(k for k in surf_groups if k != params.outer_name)]:
        if n in surf_groups:
            boundaries[n] = BOUNDARY_TAG0 + len(boundaries)
    _check_unique(regions, boundaries)
    for n, t in regions.items():
        gmsh.model.addPhysicalGroup(3, vol_groups[n], t, name=n)
    for n, t in boundaries.items():
        gmsh.model.addPhysicalGroup(2, surf_groups[n], t, name=n)
    return regions, boundaries


def _check_unique(regions: dict[str, int], boundaries: dict[str, int]) -> None:
    clash = set(regions) & set(boundaries)
    if clash:
        raise MeshingError(f"names used for both a region and a boundary: {sorted(clash)}")


def write_model(path: Path, binary: bool | None = None) -> str:
    """Write the current gmsh model's mesh as MSH 4.1 (physical groups only).

    Args:
        path: Output ``.msh`` file.
        binary: True/False for binary/ASCII; None writes whichever is smaller.

    Returns:
        ``"binary"`` or ``"ASCII"``.
    """
    import gmsh

    path.parent.mkdir(parents=True, exist_ok=True)
    gmsh.option.setNumber("Mesh.MshFileVersion", 4.1)
    gmsh.option.setNumber("Mesh.SaveAll", 0)
    sizes = {}
    for b in [binary] if binary is not None else [False, True]:
        tmp = path.with_suffix(f".{int(b)}.tmp.msh")
        gmsh.option.setNumber("Mesh.Binary", int(b))
        gmsh.write(str(tmp))
        sizes[b] = tmp
    best = min(sizes, key=lambda b: sizes[b].stat().st_size)
    sizes[best].replace(path)
    for b, tmp in sizes.items():
        if b != best:
            tmp.unlink()
    return "binary" if best else "ASCII"


def write_metadata(
    msh: Path,
    *,
    name: str,
    organ: str,
    fmt: str,
    source: str,
    license: str,
    attribution: str,
    parameters: dict[str, Any],
    t0: float,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Compute mesh statistics of ``msh`` and write ``<msh>.json`` next to it.

    Returns:
        The metadata dictionary.
    """
    import gmsh

    from tumorpde._version import __version__
    from tumorpde.meshing.info import mesh_info

    info = mesh_info(msh)
    meta: dict[str, Any] = {
        "name": name,
        "organ": organ,
        "units": "mm",
        "regions": info["regions"],
        "boundaries": info["boundaries"],
        "volumes_mm3": info["volumes_mm3"],
        "boundary_areas_mm2": info["boundary_areas_mm2"],
        "cells": info["cells"],
        "cells_per_region": info["cells_per_region"],
        "vertices": info["vertices"],
        "cell_type": "tetrahedron (P1)",
        "min_dihedral_deg": info["min_dihedral_deg"],
        "slivers_below_5deg": info["slivers"],
        "bounding_box_mm": info["bounding_box_mm"],
    }
    meta.update(extra or {})
    meta.update(
        {
            "source": source,
            "license": license,
            "attribution": attribution,
            "format": f"gmsh MSH 4.1 {fmt}",
            "generator": {
                "module": "tumorpde.meshing.labels",
                "version": GENERATOR_VERSION,
                "tumorpde": __version__,
                "gmsh": gmsh.__version__,
                "libraries": _versions(),
                "parameters": parameters,
            },
            "build_time_s": round(time.perf_counter() - t0, 2),
        }
    )
    msh.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta


def _versions() -> dict[str, str]:
    from importlib import metadata

    out = {}
    for pkg in ("numpy", "scipy", "scikit-image", "pyacvd", "pymeshfix", "pyvista", "nilearn"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[pkg] = metadata.version(pkg)
    return out


def auto_size(img: LabelImage, regions: dict[int, str], cap: float = 4.0) -> float:
    """Default edge length: ``cap`` mm, reduced so the smallest region keeps a few elements.

    Args:
        img: The label image.
        regions: Label -> region name.
        cap: Largest size returned (mm).

    Returns:
        ``min(cap, V_min^(1/3) / 4)`` with ``V_min`` the smallest region's voxel volume (mm³),
        so that region exceeds the default ``min_component`` of ``(1.5 size)^3``.
    """
    import numpy as np

    voxel = float(np.prod(img.spacing))
    vols = [float(np.isin(img.data, [k]).sum()) * voxel for k in regions]
    return float(min(cap, max(min(vols), 1e-9) ** (1 / 3) / 4.0))


def labels_to_mesh(
    img: LabelImage,
    regions: dict[int, str],
    out: str | Path,
    *,
    holes: dict[int, str] | None = None,
    params: MeshParameters | None = None,
    name: str | None = None,
    organ: str = "",
    source: str | None = None,
    license: str = "as the input image",
    attribution: str = "",
    binary: bool | None = None,
    extra_meta: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Turn a label image into a tagged tetrahedral mesh (``.msh`` + ``.json`` metadata).

    Args:
        img: The label image (world coordinates in mm).
        regions: Label -> region name (labels sharing a name are merged).
        out: Output ``.msh`` path.
        holes: Label -> hole name: removed from the innermost region, walls tagged.
        params: Meshing parameters (defaults: :class:`MeshParameters`).
        name: Mesh name for the metadata (default: the output stem).
        organ: Organ, for the metadata.
        source: Source description (default: the image file).
        license: Licence of the derived mesh.
        attribution: Attribution text.
        binary: MSH encoding; None chooses the smaller file.
        extra_meta: More metadata keys.

    Returns:
        The metadata written next to the mesh.

    Raises:
        MeshingError: Unknown labels, overlapping names, or a geometry the pipeline cannot mesh.
    """
    import gmsh

    t0 = time.perf_counter()
    holes = dict(holes or {})
    params = (params or MeshParameters()).resolved()
    present = set(img.labels())
    for opt, mapping in (("--labels", regions), ("--holes", holes)):
        for label, n in mapping.items():
            if label not in present:
                raise MeshingError(
                    f"{img.source}: {opt} label {label} ({n}) does not occur in the image; "
                    f"labels present: {sorted(present)}"
                )
    if not regions:
        raise MeshingError(f"{img.source}: no region labels given")
    both = set(regions) & set(holes)
    if both:
        raise MeshingError(f"labels {sorted(both)} are given as both regions and holes")
    shared = set(regions.values()) & set(holes.values())
    if shared:
        raise MeshingError(f"names {sorted(shared)} are used for both regions and holes")
    out = Path(out)
    stage("surfaces")
    order, hole_names, surfaces, diag = nested_surfaces(img, regions, holes, params)
    levels_meshed = {srf.level for srf in surfaces}
    lost = [n for k, n in enumerate(order) if k not in levels_meshed]
    if lost:  # a region smaller than min_component, or squeezed out by the nesting gaps
        vols = diag["voxel_volumes_mm3"]
        smallest = min(vols.get(n, 0.0) for n in lost)
        hint = max(smallest, 1e-9) ** (1 / 3) / 4.0
        raise MeshingError(
            f"{img.source}: region(s) {lost} vanish at mesh size {params.size:g} mm "
            f"(voxel volume {smallest:g} mm^3); use --size {hint:.2g} or smaller"
        )
    stage("volume mesh")
    with gmsh_session():
        gmsh.model.add(name or out.stem)
        surfaces_to_model(order, hole_names, surfaces, diag["parents"], params)
        stage("write")
        fmt = write_model(out, binary)
    pars = {k: v for k, v in asdict(params).items()}
    pars.update(
        {
            "labels": {str(k): v for k, v in regions.items()},
            "holes": {str(k): v for k, v in holes.items()},
        }
    )
    extra = {
        "label_voxel_volumes_mm3": diag["voxel_volumes_mm3"],
        "nesting_order": diag["nesting_order"],
        **(extra_meta or {}),
    }
    stage("quality")
    return write_metadata(
        out,
        name=name or out.stem,
        organ=organ,
        fmt=fmt,
        source=source or f"label image {img.source}",
        license=license,
        attribution=attribution,
        parameters=pars,
        t0=t0,
        extra=extra,
    )


# ------------------------------------------------------------------------------------ import
def import_mesh(
    src: str | Path, out: str | Path, scale: float = 1.0, binary: bool | None = None
) -> dict[str, Any]:
    """Import a tetrahedral mesh with tagged regions as a tumorpde ``.msh`` + metadata.

    A gmsh ``.msh`` keeps its physical names. Other formats are read with meshio: the first
    integer cell-data array (e.g. ``gmsh:physical``, ``medit:ref``, ``cell_tags``) gives
    region tags of tetrahedra and boundary tags of triangles; names come from meshio's
    ``field_data`` when present, otherwise ``region_<tag>`` / ``boundary_<tag>``.

    Args:
        src: Input mesh file.
        out: Output ``.msh``.
        scale: Factor from the file's length unit to mm.
        binary: MSH encoding; None chooses the smaller file.

    Returns:
        The metadata written next to the mesh.

    Raises:
        MeshingError: Missing file, unreadable format, no tetrahedra, untagged cells.
    """
    import gmsh
    import numpy as np

    from tumorpde.meshing.msh import read_msh

    t0 = time.perf_counter()
    src, out = Path(src), Path(out)
    if not src.is_file():
        raise MeshingError(f"{src}: mesh file not found")
    if src.suffix == ".msh":
        try:
            m = read_msh(src)
        except ValueError as exc:
            raise MeshingError(str(exc)) from exc
        regions, boundaries = m.regions, m.boundaries
        pts, tets, ttags, tris, ftags = m.points, m.tets, m.tet_tags, m.tris, m.tri_tags
    else:
        pts, tets, ttags, tris, ftags, regions, boundaries = _read_meshio(src)
    _check_unique(regions, boundaries)
    pts = np.asarray(pts, dtype=float) * scale
    with gmsh_session(terminal=False):
        gmsh.model.add(out.stem)
        ntags = np.arange(1, pts.shape[0] + 1)
        etag = 1
        first = True
        for dim, groups, conn, tags, etype in (
            (3, regions, tets, ttags, 4),
            (2, boundaries, tris, ftags, 2),
        ):
            for n, t in groups.items():
                sel = conn[tags == t]
                if not sel.size:
                    continue
                gmsh.model.addDiscreteEntity(dim, t)
                if first:
                    gmsh.model.mesh.addNodes(dim, t, ntags, pts.ravel())
                    first = False
                ids = np.arange(etag, etag + sel.shape[0])
                gmsh.model.mesh.addElementsByType(t, etype, ids, (sel + 1).ravel())
                etag += sel.shape[0]
                gmsh.model.addPhysicalGroup(dim, [t], t, name=n)
        fmt = write_model(out, binary)
    return write_metadata(
        out,
        name=out.stem,
        organ="",
        fmt=fmt,
        source=f"imported from {src.name}",
        license="as the input mesh",
        attribution="",
        parameters={"input": str(src), "scale_to_mm": scale},
        t0=t0,
    )


def _read_meshio(src: Path) -> tuple[Any, ...]:
    import meshio
    import numpy as np

    try:
        m = meshio.read(str(src))
    except Exception as exc:
        raise MeshingError(f"{src}: cannot read with meshio ({exc})") from exc
    names = {int(v[0]): (str(k), int(v[1]) if len(v) > 1 else -1) for k, v in m.field_data.items()}
    key = next(
        (
            k
            for k, arrs in m.cell_data.items()
            if all(np.asarray(a).dtype.kind in "iu" for a in arrs)
        ),
        None,
    )
    tets, ttags, tris, ftags = [], [], [], []
    for i, block in enumerate(m.cells):
        tag = np.asarray(m.cell_data[key][i]) if key else np.ones(len(block.data), dtype=int)
        if block.type == "tetra":
            tets.append(block.data)
            ttags.append(tag)
        elif block.type == "triangle" and key:
            tris.append(block.data)
            ftags.append(tag)
    if not tets:
        raise MeshingError(f"{src}: no tetrahedra (only 3D tetrahedral meshes can be imported)")
    tet, ttag = np.concatenate(tets), np.concatenate(ttags).astype(np.int32)
    tri = np.concatenate(tris) if tris else np.empty((0, 3), dtype=np.int64)
    ftag = np.concatenate(ftags).astype(np.int32) if ftags else np.empty(0, dtype=np.int32)
    if np.any(ttag <= 0):
        raise MeshingError(f"{src}: {int((ttag <= 0).sum())} tetrahedra have no region tag (<= 0)")

    def _name(t: int, dim: int) -> str:
        n, d = names.get(t, ("", -1))
        return n if n and d in (dim, -1) else f"{'region' if dim == 3 else 'boundary'}_{t}"

    regions = {_name(int(t), 3): int(t) for t in np.unique(ttag)}
    ftag_ok = ftag > 0
    boundaries = {_name(int(t), 2): int(t) for t in np.unique(ftag[ftag_ok])}
    clash = set(regions.values()) & set(boundaries.values())
    if clash:  # gmsh tags are per dimension; keep them, names must differ
        boundaries = {
            (n if n not in regions else f"{n}_boundary"): t for n, t in boundaries.items()
        }
    return m.points[:, :3], tet, ttag, tri[ftag_ok], ftag[ftag_ok], regions, boundaries

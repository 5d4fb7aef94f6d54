"""Scalar images as fields: read a NIfTI/NRRD map and sample it at points in world coordinates.

Reading reuses the label-image readers of :mod:`tumorpde.meshing.labels` (the same voxel-to-mm
affine, NIfTI spatial units honoured) but keeps the voxel values as floats. Sampling is
trilinear interpolation of the voxel array at ``affine^-1 x`` (voxel centres at integer
indices, so flipped and oblique affines need nothing special); points outside the voxel-centre
grid get a fill value. Numpy only; nibabel/pynrrd are imported when a file is read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tumorpde.meshing.labels import MeshingError, _read_label_data

__all__ = ["ScalarImage", "read_scalar_image"]


@dataclass(frozen=True)
class ScalarImage:
    """A scalar volume on a voxel grid.

    Attributes:
        data: Values, shape (ni, nj, nk), indexed by voxel index.
        affine: 4x4 map from voxel index to world coordinates (mm).
        source: File name, for messages.
    """

    data: np.ndarray
    affine: np.ndarray
    source: str = "<array>"

    def sample(self, x: np.ndarray, fill: float = 0.0) -> np.ndarray:
        """Trilinear interpolation at world points.

        Args:
            x: Points in mm, shape (3, n) (the layout DOLFINx interpolation passes).
            fill: Value at points outside the grid of voxel centres.

        Returns:
            Values, shape (n,).
        """
        inv = np.linalg.inv(self.affine)
        ijk = inv[:3, :3] @ np.asarray(x, dtype=float)[:3] + inv[:3, 3:4]
        shape = np.asarray(self.data.shape)
        tol = 1e-9
        inside = np.all((ijk >= -tol) & (ijk <= (shape - 1)[:, None] + tol), axis=0)
        out = np.full(ijk.shape[1], float(fill))
        if not inside.any():
            return out
        q = np.clip(ijk[:, inside], 0, (shape - 1)[:, None])
        i0 = np.minimum(np.floor(q).astype(int), np.maximum(shape - 2, 0)[:, None])
        t = q - i0
        d = self.data
        val = np.zeros(q.shape[1])
        for corner in range(8):
            o = np.array([(corner >> a) & 1 for a in range(3)])[:, None]
            idx = np.minimum(i0 + o, (shape - 1)[:, None])
            w = np.prod(np.where(o == 1, t, 1 - t), axis=0)
            val += w * d[idx[0], idx[1], idx[2]]
        out[inside] = val
        return out


def read_scalar_image(path: str | Path) -> ScalarImage:
    """Read a 3D scalar map (NIfTI ``.nii``/``.nii.gz`` or NRRD ``.nrrd``/``.nhdr``).

    Args:
        path: The image file.

    Returns:
        The values as float64 with the voxel-to-mm affine.

    Raises:
        MeshingError: Missing or unreadable file, not 3D, non-finite values, singular affine.
    """
    path = Path(path)
    if not path.is_file():
        raise MeshingError(f"{path}: image not found")
    if not path.name.lower().endswith((".nii", ".nii.gz", ".nrrd", ".nhdr")):
        raise MeshingError(f"{path}: use a NIfTI (.nii, .nii.gz) or NRRD (.nrrd, .nhdr) image")
    try:
        data, affine, _ = _read_label_data(path, None)
        data = np.squeeze(np.asarray(data, dtype=float))
    except MeshingError:
        raise
    except Exception as exc:  # nibabel, pynrrd and numpy raise many kinds on damaged files
        raise MeshingError(f"{path}: cannot read the image ({type(exc).__name__}: {exc})") from None
    if data.ndim != 3:
        raise MeshingError(f"{path}: expected a 3D scalar volume, got shape {data.shape}")
    if not np.all(np.isfinite(data)):
        raise MeshingError(f"{path}: image has non-finite values (NaN or inf)")
    affine = np.asarray(affine, dtype=float)
    if abs(np.linalg.det(affine[:3, :3])) < 1e-12:
        raise MeshingError(f"{path}: the voxel-to-world affine is singular")
    return ScalarImage(np.ascontiguousarray(data), affine, str(path))

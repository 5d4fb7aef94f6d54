"""Write the synthetic imaging example: a labelled NIfTI segmentation and an ADC map.

Run from anywhere: ``python examples/imaging/make_data.py [OUTDIR]`` (default: this folder).
It writes, on a 40 x 40 x 40 voxel grid of 1 mm voxels with an oblique, flipped affine (the
voxel i axis runs towards -x, the grid is turned 20 degrees about z and 10 degrees about x, the
way scanner images are rarely axis-aligned):

* ``labels.nii.gz`` (uint8): 2 = tissue (an ellipsoid, semi-axes 17 x 15 x 14 mm), 1 = tumor
  (a 6 mm sphere off the tissue centre), 0 = background;
* ``adc.nii.gz`` (float32, mm^2/s): an apparent diffusion coefficient map. Inside the tumor
  the cell fraction falls from 0.9 at the centre to 0 at the rim, written as ADC through the
  inverse of the conversion the case applies, ADC = ADC_w - u (ADC_w - ADC_min) with
  ADC_w = 3.0e-3 and ADC_min = 0.6e-3 mm^2/s (Hormuth et al. 2015, Phys. Biol. 12:046006);
  outside the tumor segmentation the map holds ADC_w (u = 0), as when the conversion is
  restricted to the segmented lesion.

Everything is deterministic (no random numbers): running it again gives the same voxels.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nibabel as nib
import numpy as np

N = 40
ADC_WATER = 3.0e-3
ADC_MIN = 0.6e-3
TISSUE_AXES = np.array([17.0, 15.0, 14.0])
TUMOR_RADIUS = 6.0
#: Tumor centre relative to the tissue centre, in the image's world frame (mm).
TUMOR_OFFSET = np.array([5.0, -3.0, 2.0])


def affine() -> np.ndarray:
    """Voxel index -> world (mm): 1 mm voxels, i flipped, turned about z and x, shifted."""
    az, ax = np.radians(20.0), np.radians(10.0)
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    a = np.eye(4)
    a[:3, :3] = rz @ rx @ np.diag([-1.0, 1.0, 1.0])
    a[:3, 3] = [60.0, -20.0, 35.0]
    return a


def world_grid(aff: np.ndarray) -> np.ndarray:
    """World coordinates of every voxel centre, shape (N, N, N, 3)."""
    i, j, k = np.meshgrid(np.arange(N), np.arange(N), np.arange(N), indexing="ij")
    ijk = np.stack([i, j, k], axis=-1).astype(float)
    return ijk @ aff[:3, :3].T + aff[:3, 3]


def make(outdir: Path) -> tuple[Path, Path]:
    """Write ``labels.nii.gz`` and ``adc.nii.gz`` into ``outdir``; returns their paths."""
    aff = affine()
    x = world_grid(aff)
    centre = aff[:3, :3] @ np.full(3, (N - 1) / 2) + aff[:3, 3]
    tissue = (((x - centre) / TISSUE_AXES) ** 2).sum(axis=-1) <= 1.0
    d = np.sqrt(((x - centre - TUMOR_OFFSET) ** 2).sum(axis=-1))
    tumor = d <= TUMOR_RADIUS
    labels = np.zeros((N, N, N), dtype=np.uint8)
    labels[tissue] = 2
    labels[tumor] = 1
    u = np.where(tumor, 0.9 * (1 - (d / TUMOR_RADIUS) ** 2), 0.0)
    adc = (ADC_WATER - u * (ADC_WATER - ADC_MIN)).astype(np.float32)
    outdir.mkdir(parents=True, exist_ok=True)
    paths = outdir / "labels.nii.gz", outdir / "adc.nii.gz"
    for data, path in zip((labels, adc), paths, strict=True):
        img = nib.Nifti1Image(data, aff)
        img.header.set_xyzt_units("mm")
        img.header.set_qform(aff, code=1)
        img.header.set_sform(aff, code=1)
        nib.save(img, str(path))
    return paths


if __name__ == "__main__":
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent
    for p in make(out):
        print(p)

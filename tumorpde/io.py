"""Run-directory layout and file writing: directory preparation, atomic JSON, versions.

Layout of a run directory::

    OUTDIR/
      case.toml        the case as given (copied)
      manifest.json    resolved parameters, versions, ranks, wall times, status (written last)
      qoi.csv          one row per accepted step
      fields.xdmf/.h5  (or fields.bp) the fields at output times, readable by ParaView
      final.png        picture of the final fields

``manifest.json`` is replaced atomically; ``"status": "complete"`` marks a finished run.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["OutputDirError", "prepare_run_dir", "versions", "write_json_atomic"]

MANIFEST = "manifest.json"


class OutputDirError(RuntimeError):
    """The output directory cannot be used (exists with content and no --overwrite)."""


def prepare_run_dir(path: str | Path, *, overwrite: bool) -> Path:
    """Check (and on the caller's rank 0, create) an output directory.

    Refuses to touch a non-empty directory unless ``overwrite``; with ``overwrite`` only files
    that tumorpde writes are removed, so nothing else in the directory is lost.

    Args:
        path: The run directory.
        overwrite: Allow replacing an earlier tumorpde run there.

    Returns:
        The resolved path.

    Raises:
        OutputDirError: If the directory has content and ``overwrite`` is false, or if it holds
            files that are not tumorpde outputs.
    """
    p = Path(path).resolve()
    if p.exists() and not p.is_dir():
        raise OutputDirError(f"output path {p} exists and is not a directory")
    if p.is_dir() and any(p.iterdir()):
        if not overwrite:
            raise OutputDirError(
                f"output directory {p} is not empty; choose another -o or pass --overwrite"
            )
        if not (p / MANIFEST).is_file():
            raise OutputDirError(
                f"output directory {p} is not empty and holds no tumorpde {MANIFEST}; "
                "refusing to overwrite it"
            )
    return p


def clear_run_outputs(p: Path) -> None:
    """Remove the files an earlier tumorpde run wrote in ``p`` (rank 0 only)."""
    for name in ("case.toml", MANIFEST, "qoi.csv", "fields.xdmf", "fields.h5", "final.png"):
        (p / name).unlink(missing_ok=True)
    shutil.rmtree(p / "fields.bp", ignore_errors=True)


def write_json_atomic(path: str | Path, data: Any) -> None:
    """Write JSON to a temporary file in the same directory, then rename it over ``path``."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2, sort_keys=False, default=str)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def versions() -> dict[str, str]:
    """Versions of tumorpde and the libraries it runs on (no dolfinx import needed)."""
    out = {"python": platform.python_version(), "platform": platform.platform()}
    for dist in (
        "tumorpde",
        "dolfinx-solver-real",
        "fenics-dolfinx",
        "fenics-ufl",
        "fenics-basix",
        "fenics-ffcx",
        "mpi4py",
        "petsc4py",
        "numpy",
        "pydantic",
        "pint",
        "pyvista",
        "gmsh",
    ):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return out

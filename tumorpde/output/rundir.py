"""Run directory: layout, preparation, the manifest (provenance), atomic JSON, versions.

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
import time
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tumorpde.config import CaseConfig
    from tumorpde.fem.domain import Domain
    from tumorpde.model import Model

__all__ = [
    "MANIFEST",
    "OutputDirError",
    "manifest",
    "prepare",
    "prepare_run_dir",
    "versions",
    "write_json_atomic",
]

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


def prepare(outdir: str | Path | None, overwrite: bool, comm: Any, case: str) -> Path | None:
    """Check, create and clear a run directory on rank 0 and mark it ``running`` (collective).

    Args:
        outdir: The run directory, or None (no files).
        overwrite: Allow replacing an earlier tumorpde run there.
        comm: The run's communicator (the outcome is broadcast from rank 0).
        case: The case name, recorded in the ``running`` manifest.

    Returns:
        The resolved directory (None without ``outdir``).

    Raises:
        OutputDirError: On every rank, if rank 0 could not use the directory.
    """
    if outdir is None:
        return None
    err = None
    path = Path(outdir).resolve()
    if comm.rank == 0:
        try:
            path = prepare_run_dir(outdir, overwrite=overwrite)
            path.mkdir(parents=True, exist_ok=True)
            clear_run_outputs(path)
            write_json_atomic(path / MANIFEST, {"status": "running", "case": case})
        except (OSError, OutputDirError) as exc:
            err = str(exc)
    err = comm.bcast(err, root=0)
    if err is not None:
        raise OutputDirError(err)
    return path


def manifest(
    cfg: CaseConfig,
    model: Model,
    domain: Domain,
    *,
    num_unknowns: int,
    mpi_ranks: int,
    solver: Mapping[str, Any],
    rows: Sequence[Mapping[str, float]],
    timings: Mapping[str, float],
    files: Mapping[str, str],
) -> dict[str, Any]:
    """The provenance record of a finished run (collective: region volumes are reduced).

    Args:
        cfg: The case.
        model: Its compiled model.
        domain: The mesh with regions.
        num_unknowns: Global number of unknowns.
        mpi_ranks: Number of MPI ranks.
        solver: Solver description (prefix, options, counters).
        rows: The QoI rows (the last one is the final state).
        timings: Wall times (s) by phase.
        files: Written files by key.
    """
    from petsc4py import PETSc

    vols = domain.region_volumes()
    return {
        "status": "complete",
        "case": cfg.name,
        "description": cfg.description,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "units": {"length": "mm", "time": "h", "concentration": "nM"},
        "resolved": cfg.model_dump(mode="json"),
        "species": [
            {"name": sp.name, "kind": sp.kind, "unit": sp.unit, "pathway": sp.pathway}
            for sp in model.species
        ],
        "derived": model.summary(),
        "mesh": {
            "cells": domain.num_cells_global(),
            "vertices": domain.num_vertices_global(),
            "regions": domain.regions,
            "boundaries": domain.boundaries,
            "region_volumes_mm3": vols,
        },
        "unknowns": num_unknowns,
        "mpi_ranks": mpi_ranks,
        "solver": {
            **solver,
            "petsc_version": ".".join(str(v) for v in PETSc.Sys.getVersion()),
        },
        "steps": len(rows) - 1,
        "final": rows[-1] if rows else {},
        "timings_s": dict(timings),
        "versions": versions(),
        "files": dict(files),
    }


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

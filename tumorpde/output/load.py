"""Reading a run directory back in Python: :func:`load_run` (no DOLFINx, no MPI needed).

A :class:`Run` gives the resolved case, the manifest, the QoI table (a pandas DataFrame with
``df.attrs["units"]``) and the fields at every output time as PyVista datasets, with the region
tag of every cell (``cell_data["region"]``), the names of the tags and the unit of every field.
It reads both field formats tumorpde writes:

* VTKHDF (the default): ``fields.vtkhdf.series`` (the ParaView file series) naming one
  ``fields/fields_<k>.vtkhdf`` per output time (:mod:`tumorpde.output.fields`);
* XDMF (older runs, ``output.format = "xdmf"``): ``fields.xdmf`` + ``fields.h5``, read with
  h5py on DOLFINx's layout (VTK cannot read DOLFINx's XDMF3).

A resumed run has several segments (``fields``, ``fields.r1``, ...): their times are
concatenated, a later segment replacing the times of an earlier one from its start time on.
VTX runs (``fields.bp``, ADIOS2) have no Python reader here: their QoIs load, their fields do
not. pandas, pyvista and h5py are imported when first needed.

Example:
    >>> run = tumorpde.load_run("runs/demo")  # doctest: +SKIP
    >>> run.qoi["tumor_burden_mm3"].iloc[-1], run.qoi.attrs["units"]["tumor_burden_mm3"]
    >>> grid = run.dataset(time=48.0)  # pyvista.UnstructuredGrid; grid["tumor"], grid["region"]
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tumorpde.output.rundir import MANIFEST, RESOLVED, is_tumorpde_manifest

if TYPE_CHECKING:
    import pandas
    import pyvista

    from tumorpde.config import CaseConfig

__all__ = ["Run", "RunReadError", "field_units", "load_run", "qoi_units"]

#: Suffix of the ParaView file-series index of a VTKHDF segment (``fields.vtkhdf.series``).
SERIES = ".vtkhdf.series"
#: Derived fields with a unit (every other derived field is a fraction, unit "1").
_RATE_FIELDS = ("kill_rate", "net_growth_rate")
_COUNT_COLUMNS = ("step", "newton_iterations", "linear_iterations", "rejected_steps")


class RunReadError(ValueError):
    """A run directory (or one of its files) cannot be read; the message names the path."""


# ------------------------------------------------------------------------------ units
def field_units(names: Iterable[str], species_units: Mapping[str, str]) -> dict[str, str]:
    """Unit of every output field: a species' own unit, 1/h for rates, else "1" (fractions).

    Args:
        names: Output field names (species and derived).
        species_units: Unit of every species (:attr:`tumorpde.model.Species.unit`).
    """
    out = {}
    for n in names:
        if n in species_units:
            out[n] = species_units[n]
        elif n in _RATE_FIELDS:
            out[n] = "1/h"
        else:  # occupancies, drug responses: fractions
            out[n] = "1"
    return out


def qoi_units(columns: Iterable[str], species_units: Mapping[str, str]) -> dict[str, str]:
    """Unit of every ``qoi.csv`` column, from the naming convention of the QoIs.

    Internal units: mm, h, nM. Counts, relative residuals and cell-weighted fractions
    (occupancy, relative receptor level, responses) have unit "1".

    Args:
        columns: Column names of ``qoi.csv``.
        species_units: Unit of every species.
    """
    out = {}
    for c in columns:
        if c in ("t_h", "dt_h"):
            u = "h"
        elif c == "wall_s":
            u = "s"
        elif c in _COUNT_COLUMNS or c in ("error_estimate",) or c.startswith("balance_"):
            u = "1"
        elif c.endswith("_mm3"):
            u = "mm^3"
        elif c.endswith("_nM") or "_nM_" in c:
            u = "nM"
        elif c.endswith("_mmHg"):
            u = "mmHg"
        elif c == "mean_kill_rate":
            u = "1/h"
        else:
            u = "1"
            for prefix in ("max_", "min_", "mean_"):
                if c.startswith(prefix) and c[len(prefix) :] in species_units:
                    u = species_units[c[len(prefix) :]]
            if c.startswith("signal_") and f"{c[7:]}_signal" in species_units:
                u = species_units[f"{c[7:]}_signal"]
        out[c] = u
    return out


# ------------------------------------------------------------------------------ segments
@dataclass
class _Frame:
    """One stored output time: its segment and its position there."""

    time: float
    segment: _Segment
    index: int


class _Segment:
    """The field files of one stem (``fields``, ``fields.r1``, ...)."""

    def __init__(self, run_path: Path, stem: str) -> None:
        self.stem = stem
        self.dir = run_path
        self.times: list[float] = []
        self.fields: list[str] = []
        self.units: dict[str, str] = {}
        self.regions: dict[str, int] = {}
        self.boundaries: dict[str, int] = {}
        self._mesh: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def dataset(self, index: int) -> pyvista.UnstructuredGrid:
        raise NotImplementedError  # pragma: no cover

    def boundary_dataset(self) -> pyvista.UnstructuredGrid:
        raise NotImplementedError  # pragma: no cover


def _h5py() -> Any:
    try:
        import h5py
    except ImportError as exc:  # pragma: no cover - h5py comes with the fenics extra
        raise RunReadError("reading field files needs h5py (pip install h5py)") from exc
    return h5py


def _pyvista() -> Any:
    try:
        import pyvista
    except ImportError as exc:  # pragma: no cover
        raise RunReadError("Run.dataset needs pyvista (pip install 'tumorpde[viz]')") from exc
    return pyvista


def _grid(points: np.ndarray, cells: np.ndarray) -> pyvista.UnstructuredGrid:
    pv = _pyvista()
    return pv.UnstructuredGrid(
        {pv.CellType.TETRA: np.asarray(cells, dtype=np.int64)}, np.asarray(points, dtype=float)
    )


def _row_keys(rows: np.ndarray) -> np.ndarray:
    """One sortable key per row of vertex indices (order of the vertices ignored)."""
    s = np.sort(np.asarray(rows, dtype=np.int64), axis=1)
    return np.ascontiguousarray(s).view([("", s.dtype)] * s.shape[1]).ravel()


def _match_rows(rows: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Position of every row of ``rows`` in ``keys`` (-1 where absent)."""
    order = np.argsort(keys)
    k = _row_keys(rows)
    pos = np.searchsorted(keys, k, sorter=order)
    pos = np.minimum(pos, keys.size - 1)
    found = keys[order[pos]] == k
    return np.where(found, order[pos], -1)


def _exterior_faces(cells: np.ndarray) -> np.ndarray:
    """Triangles of a tetrahedral mesh that belong to exactly one cell."""
    faces = np.vstack(
        [cells[:, [1, 2, 3]], cells[:, [0, 2, 3]], cells[:, [0, 1, 3]], cells[:, [0, 1, 2]]]
    )
    keys = _row_keys(faces)
    _, first, counts = np.unique(keys, return_index=True, return_counts=True)
    return faces[first[counts == 1]]


class _XdmfSegment(_Segment):
    """``<stem>.xdmf`` + ``<stem>.h5`` as DOLFINx writes them (read with h5py)."""

    def __init__(self, run_path: Path, stem: str) -> None:
        super().__init__(run_path, stem)
        self.xdmf = run_path / f"{stem}.xdmf"
        self.h5 = run_path / f"{stem}.h5"
        try:
            root = ET.parse(self.xdmf).getroot()
        except (OSError, ET.ParseError) as exc:
            raise RunReadError(f"{self.xdmf}: not a readable XDMF file ({exc})") from exc
        if not self.h5.is_file():
            raise RunReadError(f"{self.h5} is missing (the data of {self.xdmf.name})")
        dom = root.find("Domain")
        if dom is None:
            raise RunReadError(f"{self.xdmf}: no <Domain> (not a DOLFINx XDMF file)")
        self._grids: dict[str, Any] = {}
        mesh = dom.find("Grid[@Name='mesh']")
        if mesh is None:
            raise RunReadError(f"{self.xdmf}: no mesh grid named 'mesh'")
        self._mesh_refs = (
            self._ref(mesh.find("Geometry/DataItem")),
            self._ref(mesh.find("Topology/DataItem")),
        )
        tags = dom.find("Grid[@Name='regions']")
        self._tag_refs = None
        if tags is not None:
            self._tag_refs = (
                self._ref(tags.find("Topology/DataItem")),
                self._ref(tags.find("Attribute/DataItem")),
            )
        series: dict[str, dict[float, str]] = {}
        for coll in dom.findall("Grid[@GridType='Collection']"):
            name = coll.get("Name", "")
            for g in coll.findall("Grid"):
                tnode, att = g.find("Time"), g.find("Attribute")
                if tnode is None or att is None:
                    continue
                series.setdefault(name, {})[float(tnode.get("Value", "nan"))] = self._ref(
                    att.find("DataItem")
                )
        self.fields = list(series)
        # an output time counts once every field has it (the writer publishes whole times)
        common = set.intersection(*(set(v) for v in series.values())) if series else set()
        self.times = sorted(common)
        self._series = series

    def _ref(self, item: ET.Element | None) -> str:
        if item is None or not (item.text or "").strip():
            raise RunReadError(f"{self.xdmf}: a DataItem without an HDF5 reference")
        fname, _, dset = item.text.strip().partition(":")
        if Path(fname).name != self.h5.name:
            raise RunReadError(f"{self.xdmf}: refers to {fname}, expected {self.h5.name}")
        return dset

    def _read(self, *dsets: str) -> list[np.ndarray]:
        h5py = _h5py()
        try:
            with h5py.File(self.h5, "r") as f:
                return [np.asarray(f[d][...]) for d in dsets]
        except (OSError, KeyError) as exc:
            raise RunReadError(f"{self.h5}: cannot read {', '.join(dsets)} ({exc})") from exc

    def mesh(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Points, tetrahedra and the region tag of every cell (0 where untagged)."""
        if self._mesh is None:
            pts, cells = self._read(*self._mesh_refs)
            cells = cells.astype(np.int64)
            region = np.zeros(cells.shape[0], dtype=np.int32)
            if self._tag_refs is not None:
                tcells, tvals = self._read(*self._tag_refs)
                pos = _match_rows(tcells, _row_keys(cells))
                ok = pos >= 0
                region[pos[ok]] = tvals.ravel()[ok].astype(np.int32)
            self._mesh = (pts, cells, region)
        return self._mesh

    def dataset(self, index: int) -> pyvista.UnstructuredGrid:
        pts, cells, region = self.mesh()
        grid = _grid(pts, cells)
        t = self.times[index]
        values = self._read(*(self._series[n][t] for n in self.fields))
        for name, v in zip(self.fields, values, strict=True):
            grid.point_data[name] = v.reshape(pts.shape[0], -1)[:, 0]
        grid.cell_data["region"] = region
        return grid

    def boundary_dataset(self) -> pyvista.UnstructuredGrid:
        pv = _pyvista()
        pts, cells, _ = self.mesh()
        tri = _exterior_faces(cells)
        grid = pv.UnstructuredGrid({pv.CellType.TRIANGLE: tri}, np.asarray(pts, dtype=float))
        grid.cell_data["boundary"] = np.zeros(tri.shape[0], dtype=np.int32)  # not stored
        return grid


class _VtkhdfSegment(_Segment):
    """``<stem>.vtkhdf.series`` naming one VTKHDF file per output time."""

    def __init__(self, run_path: Path, stem: str) -> None:
        super().__init__(run_path, stem)
        self.series = run_path / f"{stem}{SERIES}"
        try:
            data = json.loads(self.series.read_text())
            entries = [(float(e["time"]), str(e["name"])) for e in data["files"]]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise RunReadError(f"{self.series}: not a readable file series ({exc})") from exc
        self.files = [run_path / name for _, name in entries]
        self.times = [t for t, _ in entries]
        self.boundary_file = run_path / data.get("boundary", f"{stem}/boundary.vtkhdf")
        if self.files:
            self._read_meta(self.files[0])

    def _read_meta(self, path: Path) -> None:
        h5py = _h5py()
        try:
            with h5py.File(path, "r") as f:
                root = f["VTKHDF"]
                pdata = root["PointData"]
                order = json.loads(_attr_str(pdata.attrs.get("order", "[]")))
                self.fields = [str(n) for n in order if n in pdata] or list(pdata)
                self.units = {n: _attr_str(pdata[n].attrs.get("units", "")) for n in self.fields}
                self.regions = json.loads(_attr_str(root.attrs.get("regions", "{}")))
                self.boundaries = json.loads(_attr_str(root.attrs.get("boundaries", "{}")))
        except (OSError, KeyError, ValueError) as exc:
            raise RunReadError(f"{path}: not a readable VTKHDF field file ({exc})") from exc

    def dataset(self, index: int) -> pyvista.UnstructuredGrid:
        return _read_vtkhdf(self.files[index])

    def boundary_dataset(self) -> pyvista.UnstructuredGrid:
        return _read_vtkhdf(self.boundary_file)


def _attr_str(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _read_vtkhdf(path: Path) -> pyvista.UnstructuredGrid:
    pv = _pyvista()
    if not path.is_file():
        raise RunReadError(f"{path} is missing")
    try:
        grid = pv.read(str(path))
    except Exception as exc:  # VTK raises assorted errors for broken files
        raise RunReadError(f"{path}: VTK cannot read it ({exc})") from exc
    if grid.n_points == 0:
        raise RunReadError(f"{path}: VTK read no points (damaged file?)")
    return pv.UnstructuredGrid(grid) if not isinstance(grid, pv.UnstructuredGrid) else grid


def _segment_stems(path: Path) -> list[str]:
    """``fields`` then ``fields.r1``, ``fields.r2``, ... as present (any format)."""
    ks = set()
    for p in path.glob("fields.r*"):
        m = re.match(r"fields\.r(\d+)(\.|$)", p.name)
        if m:
            ks.add(int(m.group(1)))
    return ["fields", *(f"fields.r{k}" for k in sorted(ks))]


def _open_segment(path: Path, stem: str) -> _Segment | None:
    if (path / f"{stem}{SERIES}").is_file():
        return _VtkhdfSegment(path, stem)
    if (path / f"{stem}.xdmf").is_file():
        return _XdmfSegment(path, stem)
    return None


# ------------------------------------------------------------------------------ Run
class Run:
    """A run directory opened for reading (see :func:`load_run`).

    Attributes:
        path: The run directory.
        case: The resolved case (``resolved.toml``), in internal units (mm, h, nM).
        manifest: ``manifest.json`` (status, provenance, parameters, timings).
        qoi: The QoI table (``qoi.csv``); ``qoi.attrs["units"]`` maps each column to its unit.
        times: Output times (h) with fields, increasing.
        fields: Names of the fields (point data of :meth:`dataset`).
        units: Unit of every field.
        regions: Region name -> cell tag (``cell_data["region"]``).
        boundaries: Boundary name -> facet tag (``cell_data["boundary"]`` of
            :meth:`boundary_dataset`).
        format: ``"vtkhdf"``, ``"xdmf"``, ``"vtx"`` or ``"none"`` (no field files).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        p = self.path
        if not p.is_dir():
            raise RunReadError(f"{p}: no such run directory")
        man = p / MANIFEST
        if not man.is_file():
            raise RunReadError(f"{p}: not a tumorpde run directory ({MANIFEST} is missing)")
        if not is_tumorpde_manifest(man):
            raise RunReadError(f"{man}: not a tumorpde manifest (damaged or foreign file)")
        self.manifest: dict[str, Any] = json.loads(man.read_text())
        res = p / RESOLVED
        if not res.is_file():
            raise RunReadError(f"{res} is missing (the resolved case of the run)")
        from tumorpde.config import ConfigError, load_config

        try:
            self.case: CaseConfig = load_config(res)
        except ConfigError as exc:
            raise RunReadError(f"{res}: not a valid case ({exc})") from exc
        species_units = self._species_units()
        self._segments = [s for s in (_open_segment(p, st) for st in _segment_stems(p)) if s]
        self.format = (
            "vtkhdf"
            if any(isinstance(s, _VtkhdfSegment) for s in self._segments)
            else "xdmf"
            if self._segments
            else "vtx"
            if any(p.glob("fields*.bp"))
            else "none"
        )
        # concatenate: a later segment replaces the earlier times from its start on
        frames: list[_Frame] = []
        for seg in self._segments:
            if seg.times:
                frames = [f for f in frames if f.time < seg.times[0] - 1e-9]
            frames += [_Frame(t, seg, i) for i, t in enumerate(seg.times)]
        self._frames = frames
        self.times: list[float] = [f.time for f in frames]
        names: list[str] = []
        for seg in self._segments:
            names += [n for n in seg.fields if n not in names]
        self.fields: list[str] = names
        units = field_units(names, species_units)
        for seg in self._segments:
            units.update({k: v for k, v in seg.units.items() if v})
        self.units: dict[str, str] = units
        mesh = self.manifest.get("mesh") or {}
        self.regions: dict[str, int] = dict(mesh.get("regions") or {})
        self.boundaries: dict[str, int] = dict(mesh.get("boundaries") or {})
        for seg in self._segments:
            self.regions = self.regions or dict(seg.regions)
            self.boundaries = self.boundaries or dict(seg.boundaries)
        if not self.regions or not self.boundaries:  # a run stopped early: from the case
            box = self.case.mesh
            if getattr(box, "kind", None) == "box":
                self.regions = self.regions or {n: i + 1 for i, n in enumerate(box.region_names())}
                sides = ("xmin", "xmax", "ymin", "ymax", "zmin", "zmax")
                self.boundaries = self.boundaries or {s: i + 1 for i, s in enumerate(sides)}
        self.qoi = self._read_qoi(species_units)

    def _species_units(self) -> dict[str, str]:
        sp = self.manifest.get("species")
        if isinstance(sp, list) and sp:
            return {s["name"]: s["unit"] for s in sp if isinstance(s, dict) and "name" in s}
        from tumorpde.model import build_model  # a run stopped early has none in its manifest

        return {s.name: s.unit for s in build_model(self.case).species}

    def _read_qoi(self, species_units: Mapping[str, str]) -> pandas.DataFrame:
        import pandas as pd

        path = self.path / "qoi.csv"
        if not path.is_file():
            raise RunReadError(f"{path} is missing (the QoI table of the run)")
        try:
            df = pd.read_csv(path)
        except (OSError, ValueError) as exc:
            raise RunReadError(f"{path}: not a readable CSV table ({exc})") from exc
        if "t_h" not in df.columns:
            raise RunReadError(f"{path}: no column t_h (not a tumorpde QoI table)")
        df.attrs["units"] = qoi_units(df.columns, species_units)
        return df

    def __repr__(self) -> str:
        return (
            f"Run({str(self.path)!r}, case={self.case.name!r}, status="
            f"{self.manifest.get('status')!r}, format={self.format!r}, times={len(self.times)})"
        )

    def _frame(self, time: float | None, index: int | None) -> _Frame:
        if self.format == "vtx":
            raise RunReadError(
                f"{self.path}: the fields are in ADIOS2 BP format (fields.bp), which has no "
                "Python reader here; open them in ParaView, or rerun with output.format = "
                '"vtkhdf"'
            )
        if not self._frames:
            raise RunReadError(f"{self.path}: no field output time was written")
        if time is not None and index is not None:
            raise ValueError("give time or index, not both")
        if index is not None:
            if not -len(self._frames) <= index < len(self._frames):
                raise IndexError(
                    f"output index {index} out of range: {len(self._frames)} output times"
                )
            return self._frames[index]
        if time is None:
            return self._frames[-1]
        t = float(time)
        lo, hi = self.times[0], self.times[-1]
        tol = 1e-9 * max(1.0, abs(hi))
        if not lo - tol <= t <= hi + tol:
            raise ValueError(
                f"time {t:g} h is outside the stored output times {lo:g} .. {hi:g} h of "
                f"{self.path} (available: {', '.join(f'{x:g}' for x in self.times)})"
            )
        return self._frames[int(np.argmin(np.abs(np.asarray(self.times) - t)))]

    def dataset(
        self, time: float | None = None, index: int | None = None
    ) -> pyvista.UnstructuredGrid:
        """The fields at one output time as a PyVista grid (the last time by default).

        Args:
            time: Time (h); the nearest stored output time is returned.
            index: Position in :attr:`times` instead of a time.

        Returns:
            Every field as ``point_data``, ``cell_data["region"]`` (int tag, names in
            :attr:`regions`) and ``field_data["time"]`` (h).

        Raises:
            ValueError: ``time`` outside the stored times (the message lists them).
            RunReadError: Field files missing or damaged (naming the file).
        """
        fr = self._frame(time, index)
        grid = fr.segment.dataset(fr.index)
        if "region" not in grid.cell_data:
            raise RunReadError(f"{self.path}: the field file at t = {fr.time:g} h has no region")
        grid.field_data["time"] = np.array([fr.time])
        return grid

    def boundary_dataset(self) -> pyvista.UnstructuredGrid:
        """The boundary facets (triangles) with ``cell_data["boundary"]`` (int tag).

        XDMF runs did not store the boundary tags: their facets carry tag 0.
        """
        if not self._segments:
            self._frame(None, None)  # raises the reason
        return self._segments[-1].boundary_dataset()


def load_run(path: str | Path) -> Run:
    """Open a run directory: case, manifest, QoIs with units, fields per output time.

    Args:
        path: The run directory (``tumorpde run CASE -o PATH``).

    Returns:
        The :class:`Run`.

    Raises:
        RunReadError: Not a run directory, or a file of it missing or damaged (named).
    """
    return Run(path)

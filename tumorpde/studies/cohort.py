"""Virtual cohorts: the response of every sample of a batch to each treated arm (pure).

A batch whose runs are *samples × arms* (:mod:`tumorpde.studies.sweep`: every point of the grid,
explicit runs and samples crossed with every arm; the summary's ``sample`` column is the hash of
the point's values, shared by its arms) is a virtual cohort: each sample is a patient, each arm a
treatment, and the untreated (control) arm of the same sample its counterfactual.

* :func:`control_arm` finds the control: ``control = "<arm>"`` in the sweep file, else the arm
  that sets ``therapy.treatments = []``.
* :func:`pair_runs` pairs every complete treated run with the complete control run of the same
  sample: ``ratio`` = final burden treated / untreated, ``ratio_start`` = final burden / burden at
  the treatment start (the initial burden, or read from the run's ``qoi.csv`` when the arm's
  first dose is later).
* :func:`cohort_response` gives per arm: the number of paired samples, the median and
  inter-quartile range of the ratio, the fraction with >= 20 % and >= 50 % reduction versus
  untreated (``ratio <= 0.8`` / ``<= 0.5``), and the "volumetric response" fractions (final
  burden <= 0.8 / 0.5 x the burden at the treatment start).
* :func:`write_cohort` writes ``OUT/cohort.csv`` (per arm), ``OUT/cohort_pairs.csv`` (per
  sample) and ``OUT/cohort.json`` (both); :func:`format_response` is the printed table.

Nothing here runs a simulation or imports MPI; the functions work on summary rows (dicts as read
from ``summary.csv``: strings, or numbers).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tumorpde.output.rundir import write_json_atomic, write_text_atomic

__all__ = [
    "BURDEN",
    "THRESHOLDS",
    "batch_cohort",
    "burden_at",
    "cohort_response",
    "control_arm",
    "format_response",
    "pair_runs",
    "write_cohort",
]

#: The burden QoI (``qoi.csv`` column).
BURDEN = "tumor_burden_mm3"
#: Reductions counted as a response: >= 20 % and >= 50 % (ratio <= 0.8 and <= 0.5).
THRESHOLDS = (0.2, 0.5)


def control_arm(arms: Mapping[str, Mapping[str, Any]], declared: str | None = None) -> str | None:
    """The untreated arm of a sweep.

    Args:
        arms: Arm name -> its overrides (dotted keys, as :meth:`Sweep.arm_overrides`).
        declared: The sweep's ``control`` (wins when given).

    Returns:
        ``declared``, else the first arm whose ``therapy.treatments`` override is empty, else
        None (no control: no cohort response).

    Raises:
        ValueError: If ``declared`` is not an arm.
    """
    if declared is not None:
        if declared not in arms:
            raise ValueError(f"control arm {declared!r} is not an arm ({', '.join(arms)})")
        return declared
    for name, over in arms.items():
        if "therapy.treatments" in over and not over["therapy.treatments"]:
            return name
    return None


def _num(v: Any) -> float:
    """A summary cell as a float (nan when empty or not a number)."""
    if v is None or v == "":
        return math.nan
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def burden_at(qoi_csv: str | Path, t_h: float, column: str = BURDEN) -> float:
    """``column`` of a run's ``qoi.csv`` at time ``t_h`` (linear interpolation; nan if absent)."""
    try:
        with Path(qoi_csv).open(newline="") as f:
            rows = list(csv.DictReader(f))
        t = np.array([float(r["t_h"]) for r in rows])
        v = np.array([float(r[column]) for r in rows])
    except (OSError, KeyError, ValueError):
        return math.nan
    if not len(t) or t_h > t[-1]:
        return math.nan
    return float(np.interp(t_h, t, v))


def pair_runs(
    rows: Sequence[Mapping[str, Any]],
    control: str,
    *,
    qoi: str = f"{BURDEN}_final",
    start: str = f"{BURDEN}_initial",
    start_h: Mapping[str, float] | None = None,
    root: str | Path | None = None,
    keep: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """Pair each complete treated run with the complete control run of its sample.

    Args:
        rows: Summary rows (``run``, ``arm``, ``sample``, ``status``, ``qoi``, ``start``, ...).
        control: The control arm.
        qoi: The outcome column (final burden).
        start: The column of the burden at t = 0 (the treatment start when dosing starts at 0).
        start_h: Arm -> time of its first dose (h); for an arm starting later the burden at
            that time is read from the control run's ``qoi.csv`` (``root / row["dir"]``).
        root: The batch directory (for ``start_h``).
        keep: Columns copied from the treated row (e.g. the varied parameters).

    Returns:
        One dict per treated run with a control: ``sample``, ``arm``, ``run``, ``control_run``,
        ``burden``, ``control_burden``, ``start_burden``, ``ratio`` (treated / control) and
        ``ratio_start`` (treated / start burden), plus ``keep``.
    """
    controls: dict[str, Mapping[str, Any]] = {}
    for r in rows:
        if r.get("arm") == control and r.get("status") == "complete":
            controls.setdefault(str(r.get("sample", "")), r)
    pairs = []
    for r in rows:
        arm = str(r.get("arm", ""))
        if arm == control or r.get("status") != "complete":
            continue
        c = controls.get(str(r.get("sample", "")))
        if c is None:
            continue
        burden, ref = _num(r.get(qoi)), _num(c.get(qoi))
        t0 = float((start_h or {}).get(arm, 0.0))
        if t0 > 0 and root is not None and c.get("dir"):
            s = burden_at(Path(root) / str(c["dir"]) / "qoi.csv", t0)
        else:
            s = _num(r.get(start))
            if math.isnan(s):
                s = _num(c.get(start))
        pair: dict[str, Any] = {
            "sample": str(r.get("sample", "")),
            "arm": arm,
            "run": r.get("run", ""),
            "control_run": c.get("run", ""),
            "burden": burden,
            "control_burden": ref,
            "start_burden": s,
            "ratio": burden / ref if ref > 0 else math.nan,
            "ratio_start": burden / s if s > 0 else math.nan,
        }
        for k in keep:
            pair[k] = r.get(k, "")
        pairs.append(pair)
    return pairs


def _frac(x: np.ndarray, limit: float) -> float:
    return float(np.mean(x <= limit)) if len(x) else math.nan


def cohort_response(
    pairs: Sequence[Mapping[str, Any]],
    *,
    samples: int | None = None,
    thresholds: Sequence[float] = THRESHOLDS,
) -> list[dict[str, Any]]:
    """The response of the cohort to each treated arm (in order of first appearance).

    Args:
        pairs: From :func:`pair_runs`.
        samples: Number of samples of the cohort (for the ``missing`` count), if known.
        thresholds: Reductions that count as a response (0.2: final <= 0.8 x reference).

    Returns:
        One row per arm: ``arm``, ``n`` (paired samples), ``missing``, ``median_ratio``,
        ``q25_ratio``, ``q75_ratio``, ``iqr_ratio``, ``mean_ratio``, ``min_ratio``, ``max_ratio``,
        ``frac_reduction_ge_<p>`` (ratio to untreated <= 1 - p), ``median_ratio_start`` and
        ``frac_volumetric_ge_<p>`` (final <= (1 - p) x burden at the treatment start), with
        ``p`` in percent. Non-finite ratios are left out (and counted in ``n_invalid``).
    """
    arms: list[str] = []
    for p in pairs:
        if p["arm"] not in arms:
            arms.append(str(p["arm"]))
    out = []
    for arm in arms:
        mine = [p for p in pairs if p["arm"] == arm]
        ratio = np.array([float(p["ratio"]) for p in mine], dtype=float)
        start = np.array([float(p["ratio_start"]) for p in mine], dtype=float)
        ok = np.isfinite(ratio)
        r, s = ratio[ok], start[np.isfinite(start)]
        q25, q50, q75 = np.percentile(r, [25, 50, 75]) if len(r) else [math.nan] * 3
        row: dict[str, Any] = {
            "arm": arm,
            "n": len(r),
            "n_invalid": int((~ok).sum()),
            "missing": (samples - len(mine)) if samples is not None else "",
            "median_ratio": float(q50),
            "q25_ratio": float(q25),
            "q75_ratio": float(q75),
            "iqr_ratio": float(q75 - q25),
            "mean_ratio": float(r.mean()) if len(r) else math.nan,
            "min_ratio": float(r.min()) if len(r) else math.nan,
            "max_ratio": float(r.max()) if len(r) else math.nan,
        }
        for t in thresholds:
            row[f"frac_reduction_ge_{round(100 * t)}"] = _frac(r, 1.0 - t)
        row["median_ratio_start"] = float(np.median(s)) if len(s) else math.nan
        for t in thresholds:
            row[f"frac_volumetric_ge_{round(100 * t)}"] = _frac(s, 1.0 - t)
        out.append(row)
    return out


def _csv(rows: Sequence[Mapping[str, Any]]) -> str:
    cols: list[str] = []
    for r in rows:
        cols += [k for k in r if k not in cols]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols)
    w.writeheader()
    for r in rows:
        w.writerow({k: (format(v, ".6g") if isinstance(v, float) else v) for k, v in r.items()})
    return buf.getvalue()


def _jsonable(v: Any) -> Any:
    return None if isinstance(v, float) and not math.isfinite(v) else v


def write_cohort(
    out: str | Path,
    pairs: Sequence[Mapping[str, Any]],
    response: Sequence[Mapping[str, Any]],
    meta: Mapping[str, Any] | None = None,
) -> dict[str, str]:
    """Write ``cohort.csv`` (per arm), ``cohort_pairs.csv`` (per sample) and ``cohort.json``.

    Returns:
        The written files by kind.
    """
    o = Path(out)
    write_text_atomic(o / "cohort.csv", _csv(response))
    write_text_atomic(o / "cohort_pairs.csv", _csv(pairs))
    data = {
        **dict(meta or {}),
        "response": [{k: _jsonable(v) for k, v in r.items()} for r in response],
        "pairs": [{k: _jsonable(v) for k, v in p.items()} for p in pairs],
    }
    write_json_atomic(o / "cohort.json", data)
    return {
        "cohort": str(o / "cohort.csv"),
        "pairs": str(o / "cohort_pairs.csv"),
        "json": str(o / "cohort.json"),
    }


def batch_cohort(sweep: Any, rows: Sequence[Mapping[str, Any]], out: str | Path) -> dict[str, Any]:
    """The virtual-cohort response of a finished batch (``tumorpde batch``), written to ``out``.

    Args:
        sweep: The :class:`tumorpde.studies.sweep.Sweep` (its control arm, params, cases).
        rows: The batch summary rows.
        out: The batch directory.

    Returns:
        ``{}`` without a control arm, else ``{"control", "pairs", "response", "files",
        "start_h"}``.
    """
    control = sweep.control_arm()
    if control is None:
        return {}
    start_h: dict[str, float] = {}
    for run in sweep.runs:  # the first dose of each arm (the same in every sample)
        if run.arm is None or run.arm == control or run.arm in start_h:
            continue
        try:
            therapy = sweep.config(run).therapy
            starts = [float(t.regimen.start) for t in (therapy.treatments if therapy else [])]
        except Exception:  # a case that does not build has no start
            starts = []
        start_h[run.arm] = min(starts) if starts else 0.0
    pairs = pair_runs(rows, control, start_h=start_h, root=out, keep=list(sweep.params))
    samples = len({r.sample for r in sweep.runs})
    response = cohort_response(pairs, samples=samples)
    meta = {"control": control, "samples": samples, "treatment_start_h": start_h}
    files = write_cohort(out, pairs, response, meta)
    return {
        "control": control,
        "pairs": pairs,
        "response": response,
        "files": files,
        "start_h": start_h,
    }


def format_response(response: Sequence[Mapping[str, Any]], control: str) -> str:
    """The cohort response as a text table (for the terminal)."""
    head = (
        f"{'arm':24s} {'n':>4s} {'median':>8s} {'IQR':>17s} {'>=20%':>6s} {'>=50%':>6s}"
        f" {'vol>=20%':>8s} {'vol>=50%':>8s}"
    )
    lines = [f"cohort response (final burden / untreated '{control}' of the same sample):", head]
    for r in response:
        iqr = f"[{r['q25_ratio']:.3g}, {r['q75_ratio']:.3g}]"
        lines.append(
            f"{r['arm']:24s} {r['n']:4d} {r['median_ratio']:8.3g} {iqr:>17s}"
            f" {r['frac_reduction_ge_20']:6.0%} {r['frac_reduction_ge_50']:6.0%}"
            f" {r['frac_volumetric_ge_20']:8.0%} {r['frac_volumetric_ge_50']:8.0%}"
        )
    lines.append(
        ">=20%/>=50%: fraction of samples with that reduction versus untreated; vol: final burden"
        " <= 0.8/0.5 x the burden at the treatment start"
    )
    return "\n".join(lines)

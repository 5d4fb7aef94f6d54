"""Global sensitivity analysis of a sweep's sampled parameters (Morris, Sobol') with SALib.

``tumorpde sensitivity SWEEP --method morris|sobol --qoi NAME -o OUT``:

1. :func:`sample` draws SALib's design (Morris trajectories, or Saltelli/Sobol' points) in the
   unit cube of the sweep's sampled ``[[vary]]`` parameters;
2. :func:`design_sweep` maps each point through the parameters' distributions (inverse CDF: the
   same transform as the sweep's own sampling) into runs, crossed with the arms;
3. the runs go through the batch machinery (:func:`tumorpde.studies.batch.run_batch`: groups,
   resume, summary);
4. :func:`indices` computes the indices from the unit-cube design ``X`` and the QoI ``Y`` (pure:
   testable without any simulation): mu*, sigma (Morris) or S1, ST with confidence intervals
   (Sobol'), and :func:`write_ranking` writes ``sensitivity.csv``/``.json``.

Sobol' indices do not change under a monotone transform of each input, so computing them in
the unit cube gives the indices of the physical parameters. Morris' mu* and sigma are in unit-cube
coordinates (each input's full range is 1), which makes them comparable across parameters.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tumorpde.output.rundir import write_json_atomic, write_text_atomic
from tumorpde.studies.sweep import RunSpec, Sweep, SweepError, _validate_runs, run_id

__all__ = ["METHODS", "design_sweep", "indices", "qoi_vector", "sample", "write_ranking"]

#: Sensitivity methods.
METHODS = ("morris", "sobol")


def _problem(d: int, names: Sequence[str] | None = None) -> dict[str, Any]:
    return {
        "num_vars": d,
        "names": list(names) if names is not None else [f"x{i}" for i in range(d)],
        "bounds": [[0.0, 1.0]] * d,
    }


def sample(method: str, d: int, n: int, *, seed: int = 0, num_levels: int = 4) -> np.ndarray:
    """SALib's design in the unit cube ``[0, 1]^d``.

    Args:
        method: ``morris`` (``n`` trajectories: ``n (d + 1)`` points) or ``sobol`` (Saltelli's
            scheme with ``n`` base points, first and total order: ``n (d + 2)`` points; ``n``
            a power of two).
        d: Number of parameters.
        n: Trajectories (Morris) or base samples (Sobol').
        seed: Seed (recorded).
        num_levels: Grid levels of the Morris design.

    Returns:
        The design, one row per model evaluation.
    """
    problem = _problem(d)
    if method == "morris":
        from SALib.sample import morris

        return np.asarray(morris.sample(problem, n, num_levels=num_levels, seed=seed))
    if method == "sobol":
        from SALib.sample import sobol

        return np.asarray(sobol.sample(problem, n, calc_second_order=False, seed=seed))
    raise ValueError(f"unknown method {method!r}; use one of {', '.join(METHODS)}")


def indices(
    method: str,
    X: np.ndarray,
    Y: np.ndarray,
    names: Sequence[str],
    *,
    num_levels: int = 4,
    seed: int = 0,
    conf_level: float = 0.95,
) -> list[dict[str, Any]]:
    """Sensitivity indices from a design ``X`` (as from :func:`sample`) and outputs ``Y``.

    Args:
        method: ``morris`` or ``sobol``.
        X: The design (rows: evaluations; columns: parameters in the unit cube).
        Y: One output per row of ``X``.
        names: Parameter names (columns of ``X``).
        num_levels: Levels of the Morris design.
        seed: Seed of the bootstrap confidence intervals.
        conf_level: Confidence level of the intervals.

    Returns:
        One row per parameter, ranked (most influential first): ``param``, ``rank``, and
        ``mu``, ``mu_star``, ``mu_star_conf``, ``sigma`` (Morris) or ``S1``, ``S1_conf``,
        ``ST``, ``ST_conf`` (Sobol').

    Raises:
        ValueError: If the shapes do not match or ``Y`` holds a non-finite value.
    """
    X = np.asarray(X, dtype=float)
    Y = np.asarray(Y, dtype=float).ravel()
    d = len(names)
    if X.ndim != 2 or X.shape[1] != d or X.shape[0] != Y.shape[0]:
        raise ValueError(f"X must be (n, {d}) and Y (n,); got {X.shape} and {Y.shape}")
    if not np.all(np.isfinite(Y)):
        raise ValueError(f"{int(np.sum(~np.isfinite(Y)))} output(s) are not finite")
    problem = _problem(d, names)
    rows: list[dict[str, Any]] = []
    if method == "morris":
        from SALib.analyze import morris

        res = morris.analyze(problem, X, Y, num_levels=num_levels, conf_level=conf_level, seed=seed)
        for i, n in enumerate(names):
            rows.append(
                {
                    "param": n,
                    "mu": float(res["mu"][i]),
                    "mu_star": float(res["mu_star"][i]),
                    "mu_star_conf": float(res["mu_star_conf"][i]),
                    "sigma": float(res["sigma"][i]),
                }
            )
        key = "mu_star"
    elif method == "sobol":
        from SALib.analyze import sobol

        res = sobol.analyze(problem, Y, calc_second_order=False, conf_level=conf_level, seed=seed)
        for i, n in enumerate(names):
            rows.append(
                {
                    "param": n,
                    "S1": float(res["S1"][i]),
                    "S1_conf": float(res["S1_conf"][i]),
                    "ST": float(res["ST"][i]),
                    "ST_conf": float(res["ST_conf"][i]),
                }
            )
        key = "ST"
    else:
        raise ValueError(f"unknown method {method!r}; use one of {', '.join(METHODS)}")
    rows.sort(key=lambda r: -r[key] if math.isfinite(r[key]) else math.inf)
    for k, r in enumerate(rows, 1):
        r["rank"] = k
    return rows


def design_sweep(
    sweep: Sweep, method: str, n: int, *, seed: int = 0, num_levels: int = 4
) -> tuple[Sweep, np.ndarray, list[list[int]]]:
    """The sweep whose runs are SALib's design over the sampled parameters (validated).

    Args:
        sweep: A sweep whose ``[[vary]]`` entries all have a distribution (no grid, no
            ``[[runs]]``); its arms are crossed with the design.
        method: ``morris`` or ``sobol``.
        n: Trajectories (Morris) or base samples (Sobol').
        seed: Seed of the design.
        num_levels: Levels of the Morris design.

    Returns:
        The new sweep, the unit-cube design ``X`` and, per arm (in order), the run index of
        each row of ``X`` (equal points share one run).

    Raises:
        SweepError: If the sweep has grid or explicit runs, no sampled parameter, or an
            invalid generated case.
    """
    spec = sweep.spec
    problems = []
    if any(v.values is not None for v in spec.vary):
        problems.append(("vary", "a sensitivity sweep varies sampled parameters only (no grid)"))
    if spec.runs:
        problems.append(("runs", "a sensitivity sweep has no explicit [[runs]]"))
    if not sweep.sampled:
        problems.append(("vary", "no [[vary]] entry has a distribution"))
    if problems:
        raise SweepError(str(sweep.path), problems)
    X = sample(method, len(sweep.sampled), n, seed=seed, num_levels=num_levels)
    cols = [s.transform(X[:, j]) for j, s in enumerate(sweep.sampled)]
    arms: list[tuple[str | None, dict[str, Any]]] = [
        (a, sweep.arm_overrides(a)) for a in spec.arms
    ] or [(None, {})]
    runs: list[RunSpec] = []
    ids: dict[str, int] = {}
    maps: list[list[int]] = []
    for arm, arm_over in arms:
        rows = []
        for i in range(X.shape[0]):
            values = {s.param: s.value(cols[j][i]) for j, s in enumerate(sweep.sampled)}
            overrides = {**sweep.common_overrides(), **arm_over, **values}
            rid = run_id(overrides)
            if rid not in ids:
                ids[rid] = len(runs)
                point = {s.param: float(X[i, j]) for j, s in enumerate(sweep.sampled)}
                runs.append(RunSpec(len(runs), rid, arm, values, overrides, point))
            rows.append(ids[rid])
        maps.append(rows)
    out = Sweep(
        sweep.path,
        spec,
        sweep.base_path,
        sweep.base_tables,
        runs,
        [s.param for s in sweep.sampled],
        sweep.sampled,
    )
    bad = _validate_runs(out)
    if bad:
        raise SweepError(str(sweep.path), bad)
    return out, X, maps


def qoi_vector(rows: Sequence[dict[str, Any]], qoi: str, run_ids: Sequence[str]) -> np.ndarray:
    """The QoI column of the summary rows for ``run_ids`` (NaN where missing or failed).

    ``qoi`` is a summary column (``tumor_burden_mm3_final``) or a QoI name, which means its
    final value (``tumor_burden_mm3`` -> ``tumor_burden_mm3_final``).

    Raises:
        KeyError: If no row has that column.
    """
    cols = {k for r in rows for k in r}
    col = qoi if qoi in cols else f"{qoi}_final"
    if col not in cols:
        finals = sorted(c.removesuffix("_final") for c in cols if c.endswith("_final"))
        raise KeyError(f"no QoI {qoi!r} in the summary; QoIs: {', '.join(finals)}")
    by_id = {str(r["run"]): r for r in rows}
    out = np.full(len(run_ids), np.nan)
    for i, rid in enumerate(run_ids):
        r = by_id.get(rid)
        if r is None or r.get("status") != "complete":
            continue
        with contextlib.suppress(TypeError, ValueError):
            out[i] = float(r[col])
    return out


def write_ranking(
    out: Path, rows: Sequence[dict[str, Any]], meta: dict[str, Any]
) -> dict[str, str]:
    """Write ``sensitivity.csv`` and ``sensitivity.json`` (atomically) into ``out``."""
    import csv
    import io

    cols: list[str] = []
    for r in rows:
        cols += [k for k in r if k not in cols]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols)
    w.writeheader()
    for r in rows:
        w.writerow({k: (format(v, ".6g") if isinstance(v, float) else v) for k, v in r.items()})
    write_text_atomic(out / "sensitivity.csv", buf.getvalue())
    write_json_atomic(out / "sensitivity.json", {**meta, "indices": list(rows)})
    return {"csv": str(out / "sensitivity.csv"), "json": str(out / "sensitivity.json")}


def format_ranking(method: str, rows: Sequence[dict[str, Any]]) -> str:
    """The ranking as a text table."""
    if method == "morris":
        head = f"{'rank':>4}  {'parameter':40s} {'mu*':>12} {'±conf':>10} {'sigma':>12} {'mu':>12}"
        lines = [
            f"{r['rank']:>4}  {r['param']:40s} {r['mu_star']:12.4g} {r['mu_star_conf']:10.3g} "
            f"{r['sigma']:12.4g} {r['mu']:12.4g}"
            for r in rows
        ]
    else:
        head = f"{'rank':>4}  {'parameter':40s} {'S1':>8} {'±conf':>8} {'ST':>8} {'±conf':>8}"
        lines = [
            f"{r['rank']:>4}  {r['param']:40s} {r['S1']:8.3f} {r['S1_conf']:8.3f} "
            f"{r['ST']:8.3f} {r['ST_conf']:8.3f}"
            for r in rows
        ]
    return "\n".join([head, *lines])

"""Plots of a batch summary: QoI against a varied input, organ × therapy heatmap, cohort response.

Written by ``tumorpde batch`` at the end into ``OUT/plots/`` (:func:`write_batch_plots`);
matplotlib is imported inside the functions (the ``viz`` extra), and without it the plots are
skipped with a note. Every function takes summary rows (dicts as from ``summary.csv``: strings or
numbers) and writes one PNG:

* :func:`plot_qoi_vs_param`: a QoI (default the final tumor burden) against one varied input,
  one series per arm (points joined in the order of the input when it is numeric; categories,
  e.g. organs, in order of appearance otherwise);
* :func:`plot_ratio_heatmap`: rows = the values of one input (default ``organ``), columns = the
  treated arms, cell = final burden relative to the untreated control of the same sample (mean
  over the samples of the cell);
* :func:`plot_response_histogram`: the distribution of the burden ratio treated / untreated over
  the cohort, per arm (lines at 0.8 and 0.5: the >= 20 % / >= 50 % response thresholds).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tumorpde.studies.cohort import BURDEN, pair_runs

__all__ = [
    "plot_qoi_vs_param",
    "plot_ratio_heatmap",
    "plot_response_histogram",
    "write_batch_plots",
]

#: At most this many inputs get a "QoI vs input" plot.
MAX_PARAM_PLOTS = 8
#: The heatmap is drawn when its input takes at most this many values (organs, a small grid).
MAX_HEATMAP_ROWS = 12


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _magnitude(v: Any) -> float | None:
    """The number of a cell (``"0.05 1/day"`` -> 0.05); None if it is not a number."""
    if isinstance(v, int | float) and not isinstance(v, bool):
        return float(v)
    text = str(v).strip()
    if not text:
        return None
    head = text.split()[0]
    try:
        return float(head)
    except ValueError:
        return None


def _num(v: Any) -> float:
    m = _magnitude(v)
    return math.nan if m is None else m


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name).strip("_") or "x"


def plot_qoi_vs_param(
    rows: Sequence[Mapping[str, Any]],
    param: str,
    path: str | Path,
    *,
    qoi: str = f"{BURDEN}_final",
) -> str:
    """``qoi`` against input ``param``, one series per arm (complete runs only)."""
    plt = _pyplot()
    done = [r for r in rows if r.get("status") == "complete" and str(r.get(param, "")) != ""]
    arms: list[str] = []
    for r in done:
        a = str(r.get("arm", ""))
        if a not in arms:
            arms.append(a)
    numeric = all(_magnitude(r.get(param)) is not None for r in done)
    cats: list[str] = []
    if not numeric:
        for r in done:
            c = str(r.get(param))
            if c not in cats:
                cats.append(c)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, arm in enumerate(arms):
        mine = [r for r in done if str(r.get("arm", "")) == arm]
        if numeric:
            x = np.array([_num(r.get(param)) for r in mine])
        else:
            x = np.array([cats.index(str(r.get(param))) for r in mine], dtype=float)
            x = x + (i - (len(arms) - 1) / 2) * 0.08  # dodge the arms
        y = np.array([_num(r.get(qoi)) for r in mine])
        order = np.argsort(x, kind="stable")
        groups = len(set(x.tolist())) < len(x)  # several samples per value: points only
        marker = "osD^vx"[i % 6]  # distinct markers and line styles per arm
        line = "" if groups or not numeric else ["-", "--", ":", "-."][i % 4]
        ax.plot(
            x[order],
            y[order],
            linestyle=line,
            marker=marker,
            fillstyle="none",
            label=arm or "runs",
            alpha=0.85,
        )
    if not numeric:
        ax.set_xticks(range(len(cats)))
        ax.set_xticklabels(cats, rotation=20, ha="right")
    unit = " ".join(str(done[0].get(param, "")).split()[1:]) if done and numeric else ""
    ax.set_xlabel(param + (f" ({unit})" if unit else ""))
    ax.set_ylabel(qoi)
    if len(arms) > 1 or arms != [""]:
        ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)


def _ratio_table(
    pairs: Sequence[Mapping[str, Any]], by: str
) -> tuple[list[str], list[str], np.ndarray]:
    keys: list[str] = []
    arms: list[str] = []
    for p in pairs:
        k, a = str(p.get(by, "")), str(p["arm"])
        if k not in keys:
            keys.append(k)
        if a not in arms:
            arms.append(a)
    table = np.full((len(keys), len(arms)), math.nan)
    for i, k in enumerate(keys):
        for j, a in enumerate(arms):
            v = [
                float(p["ratio"])
                for p in pairs
                if str(p.get(by, "")) == k and p["arm"] == a and math.isfinite(float(p["ratio"]))
            ]
            if v:
                table[i, j] = float(np.mean(v))
    return keys, arms, table


def plot_ratio_heatmap(
    pairs: Sequence[Mapping[str, Any]], path: str | Path, *, by: str = "organ", control: str = ""
) -> str:
    """Heatmap of final burden / untreated control: rows = values of ``by``, columns = arms."""
    plt = _pyplot()
    keys, arms, table = _ratio_table(pairs, by)
    fig, ax = plt.subplots(figsize=(1.4 * len(arms) + 3, 0.5 * len(keys) + 2))
    top = float(np.nanmax(table)) if np.isfinite(table).any() else 1.0
    im = ax.imshow(table, cmap="RdYlGn_r", vmin=0.0, vmax=max(1.0, top), aspect="auto")
    for i in range(len(keys)):
        for j in range(len(arms)):
            if math.isfinite(table[i, j]):
                ax.text(j, i, f"{table[i, j]:.3g}", ha="center", va="center", fontsize=9)
    ax.set_xticks(range(len(arms)))
    ax.set_xticklabels(arms, rotation=20, ha="right")
    ax.set_yticks(range(len(keys)))
    ax.set_yticklabels(keys)
    ax.set_ylabel(by)
    what = f"the untreated arm '{control}'" if control else "untreated"
    ax.set_title(f"final burden relative to {what}", fontsize=10)
    fig.colorbar(im, ax=ax, label="burden ratio treated / untreated")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)


def plot_response_histogram(pairs: Sequence[Mapping[str, Any]], path: str | Path) -> str:
    """Histogram of the burden ratio treated / untreated over the cohort, per arm."""
    plt = _pyplot()
    arms: list[str] = []
    for p in pairs:
        if p["arm"] not in arms:
            arms.append(str(p["arm"]))
    values = {a: np.array([float(p["ratio"]) for p in pairs if p["arm"] == a]) for a in arms}
    values = {a: v[np.isfinite(v)] for a, v in values.items()}
    everything = np.concatenate([v for v in values.values() if len(v)] or [np.zeros(0)])
    hi = max(1.05, float(everything.max()) * 1.02) if len(everything) else 1.05
    bins = np.linspace(0.0, hi, 26)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for a, v in values.items():
        if len(v):
            ax.hist(v, bins=bins, alpha=0.5, label=f"{a} (n={len(v)})")
    for x, text in ((0.8, ">=20 %"), (0.5, ">=50 %")):
        ax.axvline(x, color="k", ls="--", lw=0.8)
        ax.text(x, ax.get_ylim()[1] * 0.95, f" {text}", fontsize=8, va="top")
    ax.set_xlabel("final burden treated / untreated (same sample)")
    ax.set_ylabel("samples")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)


def write_batch_plots(
    out: str | Path,
    rows: Sequence[Mapping[str, Any]],
    params: Sequence[str],
    *,
    control: str | None = None,
    pairs: Sequence[Mapping[str, Any]] | None = None,
    qoi: str = f"{BURDEN}_final",
) -> tuple[dict[str, str], str | None]:
    """Every plot that fits the batch into ``out/plots/``.

    Args:
        out: The batch directory.
        rows: Its summary rows.
        params: The varied inputs (a plot each when it takes more than one value).
        control: The untreated arm (heatmap and histogram need it).
        pairs: Treated/untreated pairs (:func:`tumorpde.studies.cohort.pair_runs`; computed
            from ``rows`` when None and ``control`` is given).
        qoi: The QoI plotted against the inputs.

    Returns:
        ``(files, note)``: the written plots by name, and a note when plotting was skipped.
    """
    try:
        _pyplot()
    except ImportError:
        return {}, "plots skipped: matplotlib is not installed (pip install 'tumorpde[viz]')"
    done = [r for r in rows if r.get("status") == "complete"]
    if not done:
        return {}, "plots skipped: no complete run"
    plots = Path(out) / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    files: dict[str, str] = {}
    shown = 0
    partitions: list[list[str]] = []
    for p in params:
        if shown >= MAX_PARAM_PLOTS:
            break
        cells = [str(r.get(p, "")) for r in done]
        if len(set(cells)) < 2:
            continue
        first: dict[str, int] = {}
        partition = [str(first.setdefault(c, len(first))) for c in cells]
        if partition in partitions:  # varied together with an input already plotted
            continue
        partitions.append(partition)
        files[f"{p}"] = plot_qoi_vs_param(
            rows, p, plots / f"{_slug(qoi)}_vs_{_slug(p)}.png", qoi=qoi
        )
        shown += 1
    if control is not None:
        if pairs is None:
            pairs = pair_runs(rows, control, keep=list(params))
        if pairs:
            by = next(
                (
                    p
                    for p in ("organ", *params)
                    if p in params and len({str(q.get(p, "")) for q in pairs}) > 1
                ),
                None,
            )
            if by is not None and len({str(q.get(by, "")) for q in pairs}) <= MAX_HEATMAP_ROWS:
                files["heatmap"] = plot_ratio_heatmap(
                    pairs, plots / f"ratio_{_slug(by)}_x_arm.png", by=by, control=control
                )
            files["response"] = plot_response_histogram(pairs, plots / "response_histogram.png")
    return files, None

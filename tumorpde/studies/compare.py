"""Regimen comparison: run one case under several therapy arms and tabulate/plot the outcomes.

:func:`run_comparison` (``tumorpde compare CASE -o DIR``) runs every arm (``[compare.arms]`` in
the case, default: the untreated control, each treatment alone and all together) on the same
mesh and parameters, each into ``DIR/<arm>/`` (a normal run directory), then writes
``DIR/comparison.csv``, ``DIR/comparison.md`` and plots: tumor burden over time, drug exposure
(tissue AUC) by region and time-averaged target occupancy / signal inhibition by region. Works
under ``mpiexec``.
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tumorpde.config import CaseConfig
from tumorpde.output.rundir import (
    OutputDirError,
    check_new_file,
    check_not_live,
    prepare_run_dir,
)

__all__ = ["arm_config", "check_outputs", "default_arms", "run_comparison", "summarize"]


def default_arms(cfg: CaseConfig) -> dict[str, list[str]]:
    """``[compare.arms]`` or control + each drug alone + all drugs together."""
    if cfg.compare is not None and cfg.compare.arms:
        return {k: list(v) for k, v in cfg.compare.arms.items()}
    drugs = [t.spec.name for t in (cfg.therapy.treatments if cfg.therapy else [])]
    arms: dict[str, list[str]] = {"control": []}
    for d in drugs:
        arms[d] = [d]
    if len(drugs) > 1:
        arms["+".join(drugs)] = drugs
    return arms


def arm_config(cfg: CaseConfig, drugs: Sequence[str], arm: str) -> CaseConfig:
    """The case with only the treatments of ``drugs`` (same everything else)."""
    treatments = [
        t for t in (cfg.therapy.treatments if cfg.therapy else []) if t.spec.name in drugs
    ]
    therapy = cfg.therapy.model_copy(update={"treatments": treatments}) if cfg.therapy else None
    name = f"{cfg.name}-{arm}".replace("+", "_")[:64]
    return cfg.model_copy(update={"therapy": therapy, "name": name})


def _time_average(t: np.ndarray, v: np.ndarray) -> float:
    if len(t) < 2 or t[-1] <= t[0]:
        return float(v[-1]) if len(v) else float("nan")
    return float(np.trapezoid(v, t) / (t[-1] - t[0]))


def summarize(arm: str, drugs: Sequence[str], qoi: dict[str, np.ndarray], control: float | None):
    """One table row: final burden, relative to control, exposure and occupancy by region."""
    t = qoi["t_h"]
    row: dict[str, Any] = {
        "arm": arm,
        "drugs": "+".join(drugs) or "none",
        "final_burden_mm3": float(qoi["tumor_burden_mm3"][-1]),
        "burden_vs_control": float("nan"),
        "steps": len(t) - 1,
    }
    if control:
        row["burden_vs_control"] = row["final_burden_mm3"] / control
    for key, values in qoi.items():
        if key.endswith("_auc_nMh"):
            row[key] = float(values[-1])
        elif any(
            key.startswith(f"{d}_{eff}_")
            for d in drugs
            for eff in ("occupancy", "inhibition", "trapped")
        ):
            row[f"{key}_timeavg"] = _time_average(t, values)
    for key in qoi:
        if key.startswith("signal_"):
            row[f"{key}_timeavg"] = _time_average(t, qoi[key])
    return row


def run_comparison(
    cfg: CaseConfig,
    outdir: str | Path,
    *,
    arms: dict[str, list[str]] | None = None,
    comm: Any = None,
    overwrite: bool = False,
    case_text: str | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Run every arm and write the comparison table and plots.

    Args:
        cfg: The case (with ``[therapy]``).
        outdir: Directory for the arm run directories and the comparison files.
        arms: Arm name -> drugs; default :func:`default_arms`.
        comm: Communicator (default ``MPI.COMM_WORLD``).
        overwrite: Replace earlier comparison files and arm runs (which must be tumorpde runs
            that are not live); without it, existing ones are refused before anything runs.
        case_text: The case file's text (copied into each run directory).
        progress: Print per-step progress of each arm.

    Returns:
        ``{"rows": [...], "files": {...}, "qoi": {arm: table}}`` (same on all ranks).

    Raises:
        OutputDirError: On every rank, if a file or arm directory is in the way.
    """
    from mpi4py import MPI

    from tumorpde.simulation import Simulation

    comm = comm if comm is not None else MPI.COMM_WORLD
    arms = arms or default_arms(cfg)
    out = Path(outdir)
    err = None
    if comm.rank == 0:
        try:
            check_outputs(out, list(arms), overwrite=overwrite)
            out.mkdir(parents=True, exist_ok=True)
        except (OSError, OutputDirError) as exc:
            err = str(exc)
    err = comm.bcast(err, root=0)
    if err is not None:
        raise OutputDirError(err)
    tables: dict[str, dict[str, np.ndarray]] = {}
    rows = []
    control = None
    for arm, drugs in arms.items():
        t0 = time.perf_counter()
        with Simulation(arm_config(cfg, drugs, arm), comm) as sim:
            res = sim.run(out / arm, overwrite=overwrite, case_text=case_text, progress=progress)
        tables[arm] = res.qoi
        if not drugs and control is None:
            control = float(res.qoi["tumor_burden_mm3"][-1])
        row = summarize(arm, drugs, res.qoi, control)
        row["wall_s"] = time.perf_counter() - t0
        rows.append(row)
        if comm.rank == 0:
            print(
                f"tumorpde compare: arm {arm:24s} final burden {row['final_burden_mm3']:.6g} mm^3"
                f" ({row['steps']} steps, {row['wall_s']:.1f} s)",
                flush=True,
            )
    if control:
        for row in rows:
            row["burden_vs_control"] = row["final_burden_mm3"] / control
    files: dict[str, str] = {}
    if comm.rank == 0:
        files = _write(out, rows, tables, cfg)
    files = comm.bcast(files, root=0)
    return {"rows": rows, "files": files, "qoi": tables}


#: The files :func:`run_comparison` writes besides the arm run directories.
COMPARISON_FILES = (
    "comparison.csv",
    "comparison.md",
    "comparison.json",
    "burden.png",
    "exposure.png",
    "occupancy.png",
)


def check_outputs(out: Path, arms: Sequence[str], *, overwrite: bool) -> None:
    """Refuse to replace comparison files or arm runs unless ``overwrite`` (nothing written).

    With ``overwrite`` every existing arm directory must hold a tumorpde run that is not live.

    Raises:
        OutputDirError: Naming the first file or directory that is in the way.
    """
    if out.exists() and not out.is_dir():
        raise OutputDirError(f"output path {out} exists and is not a directory")
    for name in COMPARISON_FILES:
        check_new_file(out / name, overwrite=overwrite, what="comparison file")
    for arm in arms:
        d = out / arm
        if d.exists() and not overwrite:
            raise OutputDirError(
                f"arm run directory {d} exists; pass --overwrite to replace it, or another -o"
            )
        if d.is_dir():
            prepare_run_dir(d, overwrite=True)  # a tumorpde run, or refused
            check_not_live(d)  # refused here, before any arm runs


def _write(
    out: Path, rows: list[dict[str, Any]], tables: dict[str, dict[str, np.ndarray]], cfg: CaseConfig
) -> dict[str, str]:
    cols: list[str] = []
    for r in rows:
        cols += [k for k in r if k not in cols]
    with (out / "comparison.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
    md = [f"# {cfg.name}: regimen comparison", "", _markdown(rows, cols)]
    (out / "comparison.md").write_text("\n".join(md) + "\n")
    (out / "comparison.json").write_text(json.dumps(rows, indent=2))
    files = {
        "csv": str(out / "comparison.csv"),
        "markdown": str(out / "comparison.md"),
        "json": str(out / "comparison.json"),
    }
    files.update(_plots(out, rows, tables))
    return files


def _markdown(rows: list[dict[str, Any]], cols: list[str]) -> str:
    head = "| " + " | ".join(cols) + " |"
    sep = "|" + "|".join("---" for _ in cols) + "|"
    body = []
    for r in rows:
        cells = []
        for c in cols:
            v = r.get(c, "")
            cells.append(f"{v:.4g}" if isinstance(v, float) else str(v))
        body.append("| " + " | ".join(cells) + " |")
    return "\n".join([head, sep, *body])


def _plots(
    out: Path, rows: list[dict[str, Any]], tables: dict[str, dict[str, np.ndarray]]
) -> dict[str, str]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # plots are optional (the viz extra)
        return {}
    files = {}
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for arm, q in tables.items():
        ax.plot(q["t_h"] / 24, q["tumor_burden_mm3"], label=arm)
    ax.set_xlabel("time (days)")
    ax.set_ylabel("tumor burden (mm³)")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "burden.png", dpi=120)
    plt.close(fig)
    files["burden_plot"] = str(out / "burden.png")
    for kind, suffix, label in (
        ("exposure", "_auc_nMh", "tissue AUC (nM·h)"),
        ("occupancy", "_timeavg", "time-averaged occupancy / inhibition"),
    ):
        keys = sorted(
            {
                k
                for r in rows
                for k in r
                if k.endswith(suffix)
                and not k.startswith(("plasma_", "signal_"))
                and "_mean_" not in k
            }
        )
        if not keys:
            continue
        fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(keys) + 2), 4.5))
        width = 0.8 / max(1, len(rows))
        x = np.arange(len(keys))
        for i, r in enumerate(rows):
            ax.bar(x + i * width, [r.get(k, 0.0) for k in keys], width, label=r["arm"])
        ax.set_xticks(x + 0.4 - width / 2)
        ax.set_xticklabels([k.removesuffix(suffix) for k in keys], rotation=30, ha="right")
        ax.set_ylabel(label)
        if kind == "exposure":
            ax.set_yscale("log")
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / f"{kind}.png", dpi=120)
        plt.close(fig)
        files[f"{kind}_plot"] = str(out / f"{kind}.png")
    return files

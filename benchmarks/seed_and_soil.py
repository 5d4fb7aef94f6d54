"""Seed and soil: one HER2+/EGFR breast-cancer tumor in brain, liver, lung and bone, treated.

One command::

    .venv/bin/python benchmarks/seed_and_soil.py            # 2 MPI ranks, ~10 min

1. ``tumorpde batch benchmarks/seed_and_soil/sweep.toml`` (organ x arm: the tumor of
   ``her2_brain_metastasis.toml`` seeded in the four shipped organ meshes with their organ
   profiles, each untreated and under trastuzumab, lapatinib and both; 14 days) on ``--np``
   ranks, one rank per run;
2. ``tumorpde sensitivity benchmarks/seed_and_soil/morris.toml --method morris -n 4``: a Morris
   screen (4 trajectories) of 7 confidence-D library parameters of the HER2 and EGFR pathways,
   untreated tumor in the liver, QoI the final tumor burden;
3. the organ x arm table (final burden, ratio to the organ's untreated control, tissue AUC of
   each drug, time-averaged occupancy / inhibition over the organ's regions, cell-weighted
   HER2 and EGFR signal) and the Morris ranking, printed and written to
   ``benchmarks/results/seed_and_soil/{table.csv,table.md,morris.csv,timing.json,*.png}``.

The batch directories (run directories with fields) go to ``--work`` (default
``runs/seed_and_soil``); rerunning the command resumes them (complete runs are not redone), so
``--fresh`` removes them first for a timing.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ORGANS = ("brain", "liver", "lung", "bone")
ARMS = ("untreated", "trastuzumab", "lapatinib", "trastuzumab+lapatinib")
DRUGS = ("trastuzumab", "lapatinib")


def _bin(name: str) -> str:
    exe = Path(sys.executable).parent / name
    return str(exe) if exe.exists() else name


def _run(cmd: list[str]) -> tuple[int, float]:
    print("$ " + " ".join(cmd), flush=True)
    t0 = time.perf_counter()
    rc = subprocess.run(cmd, check=False).returncode
    return rc, time.perf_counter() - t0


def _f(v: str | None) -> float:
    try:
        return float(v) if v not in (None, "") else math.nan
    except ValueError:
        return math.nan


def organ_table(summary: Path) -> list[dict[str, object]]:
    """One row per organ x arm from the batch summary."""
    with summary.open(newline="") as f:
        rows = list(csv.DictReader(f))
    control = {
        r["organ"]: _f(r.get("tumor_burden_mm3_final"))
        for r in rows
        if r["arm"] == "untreated" and r["status"] == "complete"
    }
    table = []
    for organ in ORGANS:
        for arm in ARMS:
            r = next((x for x in rows if x["organ"] == organ and x["arm"] == arm), None)
            if r is None:
                continue
            burden = _f(r.get("tumor_burden_mm3_final"))
            row: dict[str, object] = {
                "organ": organ,
                "arm": arm,
                "status": r["status"],
                "initial_burden_mm3": _f(r.get("tumor_burden_mm3_initial")),
                "final_burden_mm3": burden,
                "ratio_to_control": burden / control[organ] if control.get(organ) else math.nan,
                "signal_HER2_timeavg": _f(r.get("signal_HER2_timeavg")),
                "signal_EGFR_timeavg": _f(r.get("signal_EGFR_timeavg")),
            }
            for drug in DRUGS:
                row[f"{drug}_tissue_auc_nMh"] = _f(r.get(f"{drug}_mean_auc_nMh_final"))
                effect = [
                    _f(v)
                    for k, v in r.items()
                    if k.startswith((f"{drug}_occupancy_", f"{drug}_inhibition_"))
                    and k.endswith("_timeavg")
                ]
                effect = [e for e in effect if math.isfinite(e)]
                row[f"{drug}_effect_min"] = min(effect) if effect else math.nan
                row[f"{drug}_effect_max"] = max(effect) if effect else math.nan
            row["steps"] = int(_f(r.get("steps"))) if math.isfinite(_f(r.get("steps"))) else ""
            row["wall_s"] = _f(r.get("wall_s"))
            table.append(row)
    return table


def _fmt(v: object, digits: int = 3) -> str:
    if isinstance(v, float):
        return "–" if not math.isfinite(v) else f"{v:.{digits}g}"
    return str(v)


def markdown(table: list[dict[str, object]]) -> str:
    """The table as Markdown (the README's columns)."""
    head = (
        "| organ | arm | final burden (mm³) | vs untreated | trastuzumab AUC (nM·h) "
        "| trastuzumab occupancy | lapatinib AUC (nM·h) | lapatinib inhibition "
        "| HER2 signal | EGFR signal | steps | wall (s) |"
    )
    lines = [head, "|" + "---|" * 12]
    for r in table:

        def rng(drug: str, r: dict[str, object] = r) -> str:
            lo, hi = r[f"{drug}_effect_min"], r[f"{drug}_effect_max"]
            if not isinstance(lo, float) or not isinstance(hi, float) or not math.isfinite(lo):
                return "–"
            return f"{lo:.2g}–{hi:.2g}" if abs(hi - lo) > 0.005 else f"{lo:.2g}"

        auc_t = r["trastuzumab_tissue_auc_nMh"] if "trastuzumab" in str(r["arm"]) else math.nan
        auc_l = r["lapatinib_tissue_auc_nMh"] if "lapatinib" in str(r["arm"]) else math.nan
        lines.append(
            f"| {r['organ']} | {r['arm']} | {_fmt(r['final_burden_mm3'], 4)} "
            f"| {_fmt(r['ratio_to_control'])} | {_fmt(auc_t)} "
            f"| {rng('trastuzumab') if 'trastuzumab' in str(r['arm']) else '–'} "
            f"| {_fmt(auc_l)} | {rng('lapatinib') if 'lapatinib' in str(r['arm']) else '–'} "
            f"| {_fmt(r['signal_HER2_timeavg'])} | {_fmt(r['signal_EGFR_timeavg'])} "
            f"| {r['steps']} | {_fmt(r['wall_s'])} |"
        )
    return "\n".join(lines)


def morris_markdown(rows: list[dict[str, str]]) -> str:
    lines = ["| rank | parameter | mu* | mu* 95 % CI | sigma | mu |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['rank']} | {r['param']} | {_fmt(_f(r['mu_star']))} "
            f"| ±{_fmt(_f(r['mu_star_conf']))} | {_fmt(_f(r['sigma']))} | {_fmt(_f(r['mu']))} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--np", type=int, default=2, help="MPI ranks (default 2)")
    ap.add_argument("--work", type=Path, default=Path("runs/seed_and_soil"))
    ap.add_argument("--out", type=Path, default=HERE / "results" / "seed_and_soil")
    ap.add_argument("--trajectories", type=int, default=4, help="Morris trajectories (r)")
    ap.add_argument("--fresh", action="store_true", help="remove --work first (a timing)")
    ap.add_argument("--skip-morris", action="store_true")
    args = ap.parse_args(argv)
    if args.fresh and args.work.exists():
        shutil.rmtree(args.work)
    args.work.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    mpi = [_bin("mpiexec"), "-n", str(args.np)]
    tumorpde = _bin("tumorpde")
    t0 = time.perf_counter()
    timing: dict[str, object] = {"np": args.np}

    batch = args.work / "batch"
    rc, dt = _run(
        [*mpi, tumorpde, "batch", str(HERE / "seed_and_soil" / "sweep.toml"), "-o", str(batch)]
    )
    timing["batch_s"] = dt
    timing["batch_rc"] = rc
    table = organ_table(batch / "summary.csv")
    cols = list(table[0]) if table else []
    with (args.out / "table.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        for r in table:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
    md = markdown(table)
    for png in sorted((batch / "plots").glob("*.png")):
        shutil.copy(png, args.out / png.name)

    ranking: list[dict[str, str]] = []
    if not args.skip_morris:
        morris = args.work / "morris"
        rc_m, dt_m = _run(
            [
                *mpi,
                tumorpde,
                "sensitivity",
                str(HERE / "seed_and_soil" / "morris.toml"),
                "-o",
                str(morris),
                "--method",
                "morris",
                "-n",
                str(args.trajectories),
                "--qoi",
                "tumor_burden_mm3_final",
            ]
        )
        timing["morris_s"] = dt_m
        timing["morris_rc"] = rc_m
        if (morris / "sensitivity.csv").is_file():
            shutil.copy(morris / "sensitivity.csv", args.out / "morris.csv")
            with (morris / "sensitivity.csv").open(newline="") as f:
                ranking = list(csv.DictReader(f))
            with (morris / "summary.csv").open(newline="") as f:
                timing["morris_runs"] = sum(1 for _ in csv.DictReader(f))
    timing["total_s"] = time.perf_counter() - t0
    timing["batch_runs"] = len(table)
    (args.out / "timing.json").write_text(json.dumps(timing, indent=2) + "\n")
    text = ["# Seed and soil: HER2+/EGFR breast-cancer tumor, 14 days", "", md, ""]
    if ranking:
        text += ["## Morris screen (liver, untreated, final burden)", "", morris_markdown(ranking)]
    text += [
        "",
        f"Batch {timing['batch_s']:.0f} s"
        + (f", Morris {timing['morris_s']:.0f} s" if "morris_s" in timing else "")
        + f", total {timing['total_s']:.0f} s on {args.np} MPI ranks.",
    ]
    (args.out / "table.md").write_text("\n".join(text) + "\n")
    print("\n" + "\n".join(text))
    print(f"\nwritten: {args.out}/table.csv, table.md, morris.csv, timing.json, *.png")
    return 0 if rc == 0 and timing.get("morris_rc", 0) == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

"""Regimen comparison: run one case under several therapy arms and tabulate/plot the outcomes.

:func:`run_comparison` (``tumorpde compare CASE -o DIR``) runs every arm (``[compare.arms]`` in
the case, default: the untreated control, each treatment alone and all together) on the same
mesh and parameters, each into ``DIR/<arm>/`` (a normal run directory), then writes
``DIR/comparison.csv``, ``DIR/comparison.md`` and plots: tumor burden over time, drug exposure
(tissue AUC) by region and time-averaged target occupancy / signal inhibition by region. Works
under ``mpiexec``.

The arms are a sweep (:class:`ArmSweep`: one run per arm, its overrides the arm's subset of
``therapy.treatments``, its run directory ``DIR/<arm>``) executed by the batch runner
(:func:`tumorpde.studies.batch.run_batch`): arms run on MPI groups of ``procs_per_run`` ranks
(default: all ranks on each arm, one after the other, as before), a failing arm is recorded
(``status``/``error`` columns) while the others go on, and ``resume=True`` keeps complete arms
and resumes interrupted ones from their checkpoint. The batch bookkeeping lives beside the arms:
``DIR/summary.csv``, ``DIR/batch.json``, ``DIR/logs/``, ``DIR/records/``.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
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
from tumorpde.studies.sweep import RunSpec, Sweep, SweepSpec, estimate_cost, run_id

__all__ = [
    "ArmSweep",
    "arm_config",
    "check_outputs",
    "default_arms",
    "run_comparison",
    "summarize",
]


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
    """The case with only the treatments of ``drugs`` (same everything else).

    The arm's case drops ``[compare]``: its arms name drugs this arm no longer has, so the
    arm's ``resolved.toml`` would not load again (``tumorpde view`` of an arm run).
    """
    treatments = [
        t for t in (cfg.therapy.treatments if cfg.therapy else []) if t.spec.name in drugs
    ]
    therapy = cfg.therapy.model_copy(update={"treatments": treatments}) if cfg.therapy else None
    name = f"{cfg.name}-{arm}".replace("+", "_")[:64]
    return cfg.model_copy(update={"therapy": therapy, "name": name, "compare": None})


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


#: Names an arm cannot have (the batch runner's bookkeeping in the comparison directory).
RESERVED_ARMS = ("runs", "logs", "records", "plots")


@dataclass
class ArmSweep(Sweep):
    """The arms of a comparison as a sweep: one run per arm into ``DIR/<arm>``.

    Built by :meth:`from_case`; :meth:`config` gives each arm's case with :func:`arm_config`
    (the base case need not come from a file).
    """

    case: CaseConfig | None = None
    arm_drugs: dict[str, list[str]] = field(default_factory=dict)
    text: str | None = None

    @classmethod
    def from_case(
        cls, cfg: CaseConfig, arms: dict[str, list[str]], *, case_text: str | None = None
    ) -> ArmSweep:
        """The sweep of ``arms`` (name -> drugs) over ``cfg``."""
        control = next((a for a, d in arms.items() if not d), None)
        spec = SweepSpec.model_construct(
            base="(case)",
            name=cfg.name,
            set={},
            vary=[],
            runs=[],
            sample=None,
            arms={a: {"therapy.treatments": list(d)} for a, d in arms.items()},
            control=control,
        )
        runs = []
        for i, (arm, drugs) in enumerate(arms.items()):
            over = {"therapy.treatments": list(drugs)}
            rid = run_id({"arm": arm, **over})
            run = RunSpec(i, rid, arm, {}, over, dir=arm)
            try:
                run.cost = estimate_cost(arm_config(cfg, drugs, arm))
            except (OSError, ValueError):
                run.cost = 0.0
            runs.append(run)
        return cls(
            path=Path(f"{cfg.name}-compare"),
            spec=spec,
            base_path=Path(f"{cfg.name}.toml"),
            base_tables={},
            runs=runs,
            params=[],
            sampled=[],
            case=cfg,
            arm_drugs={a: list(d) for a, d in arms.items()},
            text=case_text,
        )

    def config(self, run: RunSpec) -> CaseConfig:
        """The case of the arm of ``run``."""
        assert self.case is not None and run.arm is not None
        return arm_config(self.case, self.arm_drugs[run.arm], run.arm)

    def case_text(self, run: RunSpec) -> str:
        """The case file's text (when given), headed by the arm."""
        drugs = "+".join(self.arm_drugs[str(run.arm)]) or "none"
        head = f"# tumorpde compare: arm {run.arm} ({drugs})\n"
        return head + (self.text or "")

    def describe(self) -> dict[str, Any]:
        """``DIR/batch.json``: the arms and a hash of the case."""
        assert self.case is not None
        text = self.text or json.dumps(self.case.model_dump(mode="json"), default=str)
        return {
            "sweep": "tumorpde compare",
            "name": self.name,
            "base": str(self.base_path),
            "base_sha256": hashlib.sha256(text.encode()).hexdigest(),
            "sample": None,
            "params": [],
            "arms": self.arm_drugs,
            "control": self.control_arm(),
            "runs": len(self.runs),
            "ids": [r.id for r in self.runs],
        }


def _read_qoi(path: Path) -> dict[str, np.ndarray] | None:
    try:
        with path.open(newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError:
        return None
    if not rows:
        return None
    table: dict[str, np.ndarray] = {}
    for k in rows[0]:
        try:
            table[k] = np.array([float(r[k]) for r in rows])
        except (TypeError, ValueError):
            continue
    return table


def run_comparison(
    cfg: CaseConfig,
    outdir: str | Path,
    *,
    arms: dict[str, list[str]] | None = None,
    comm: Any = None,
    overwrite: bool = False,
    resume: bool = False,
    procs_per_run: int | None = None,
    case_text: str | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Run every arm (through the batch runner) and write the comparison table and plots.

    Args:
        cfg: The case (with ``[therapy]``).
        outdir: Directory for the arm run directories and the comparison files.
        arms: Arm name -> drugs; default :func:`default_arms`.
        comm: Communicator (default ``MPI.COMM_WORLD``).
        overwrite: Replace earlier comparison files and arm runs (which must be tumorpde runs
            that are not live); without it, existing ones are refused before anything runs.
        resume: Keep the complete arms of an earlier comparison in ``outdir`` and resume the
            others from their checkpoints (the comparison files are rewritten).
        procs_per_run: Ranks per arm (default all: the arms run one after the other).
        case_text: The case file's text (copied into each run directory).
        progress: Print progress while running: each arm's percentage and ETA at every 10 %
            of its simulated time, and a line per finished arm with the share of arms done.

    Returns:
        ``{"rows": [...], "files": {...}, "qoi": {arm: table}, "failed": [arms],
        "interrupted": signal name or None}`` (same on all ranks). A failed arm has a row
        with ``status = "failed"`` and its ``error`` (and no QoI table).

    Raises:
        OutputDirError: On every rank, if a file or arm directory is in the way.
    """
    from mpi4py import MPI

    from tumorpde.studies.batch import run_batch

    comm = comm if comm is not None else MPI.COMM_WORLD
    arms = arms or default_arms(cfg)
    out = Path(outdir)
    sweep = ArmSweep.from_case(cfg, arms, case_text=case_text)
    err = None
    if comm.rank == 0:
        try:
            check_outputs(out, list(arms), overwrite=overwrite, resume=resume)
            out.mkdir(parents=True, exist_ok=True)
            if overwrite and not resume:  # replace: every arm runs again from scratch
                for run in sweep.runs:
                    if (out / run.rel_dir).is_dir():
                        shutil.rmtree(out / run.rel_dir)
                    (out / "records" / f"{run.id}.json").unlink(missing_ok=True)
        except (OSError, OutputDirError) as exc:
            err = str(exc)
    err = comm.bcast(err, root=0)
    if err is not None:
        raise OutputDirError(err)
    res = run_batch(
        sweep,
        out,
        comm=comm,
        procs_per_run=procs_per_run or comm.size,
        progress=progress,
        label="tumorpde compare",
    )
    rows: list[dict[str, Any]] = []
    tables: dict[str, dict[str, np.ndarray]] = {}
    files: dict[str, str] = {}
    if comm.rank == 0:
        with contextlib.suppress(OSError):
            (out / "runs").rmdir()  # the batch runner's (empty: arms live in DIR/<arm>)
        rows, tables = _rows(out, sweep, res["rows"])
        for row in rows:
            extra = f": {row['error'][:200]}" if row["status"] != "complete" else ""
            print(
                f"tumorpde compare: arm {row['arm']:24s} {row['status']:9s} final burden "
                f"{row['final_burden_mm3']:.6g} mm^3 ({row['steps']} steps, "
                f"{row['wall_s']:.1f} s){extra}",
                flush=True,
            )
        files = _write(out, rows, tables, cfg)
    rows, tables, files = comm.bcast((rows, tables, files), root=0)
    failed = [r["arm"] for r in rows if r["status"] != "complete"]
    return {
        "rows": rows,
        "files": files,
        "qoi": tables,
        "failed": failed,
        "interrupted": res["interrupted"],
    }


def _rows(
    out: Path, sweep: ArmSweep, summary: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], dict[str, dict[str, np.ndarray]]]:
    """The comparison rows (in arm order) and QoI tables from the arm runs on disk."""
    by_run = {r["run"]: r for r in summary}
    tables: dict[str, dict[str, np.ndarray]] = {}
    control = None
    for run in sweep.runs:
        q = _read_qoi(out / run.rel_dir / "qoi.csv")
        if q is not None and "tumor_burden_mm3" in q and "t_h" in q:
            tables[str(run.arm)] = q
            untreated = not sweep.arm_drugs[str(run.arm)]
            complete = by_run.get(run.id, {}).get("status") == "complete"
            if untreated and complete and control is None:
                control = float(q["tumor_burden_mm3"][-1])
    rows = []
    for run in sweep.runs:
        arm = str(run.arm)
        drugs = sweep.arm_drugs[arm]
        s = by_run.get(run.id, {})
        if arm in tables:
            row = summarize(arm, drugs, tables[arm], control)
        else:
            row = {
                "arm": arm,
                "drugs": "+".join(drugs) or "none",
                "final_burden_mm3": float("nan"),
                "burden_vs_control": float("nan"),
                "steps": 0,
            }
        wall = s.get("wall_s", "")
        row["wall_s"] = float(wall) if wall not in ("", None) else float("nan")
        row["status"] = str(s.get("status", "pending"))
        row["error"] = str(s.get("error", "") or "")
        rows.append(row)
    return rows, tables


#: The files :func:`run_comparison` writes besides the arm run directories.
COMPARISON_FILES = (
    "comparison.csv",
    "comparison.md",
    "comparison.json",
    "burden.png",
    "exposure.png",
    "occupancy.png",
)


def check_outputs(out: Path, arms: Sequence[str], *, overwrite: bool, resume: bool = False) -> None:
    """Refuse to replace comparison files or arm runs unless ``overwrite`` (nothing written).

    With ``overwrite`` (or ``resume``: keep and continue them) every existing arm directory must
    hold a tumorpde run that is not live.

    Raises:
        OutputDirError: Naming the first file or directory that is in the way.
    """
    if out.exists() and not out.is_dir():
        raise OutputDirError(f"output path {out} exists and is not a directory")
    reserved = [a for a in arms if a in RESERVED_ARMS]
    if reserved:
        raise OutputDirError(
            f"arm name(s) {', '.join(reserved)} are reserved ({', '.join(RESERVED_ARMS)})"
        )
    keep = overwrite or resume
    for name in COMPARISON_FILES:
        check_new_file(out / name, overwrite=keep, what="comparison file")
    for arm in arms:
        d = out / arm
        if d.exists() and not keep:
            raise OutputDirError(
                f"arm run directory {d} exists; pass --overwrite to replace it, --resume to "
                "continue it, or another -o"
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
    files.update(_plots(out, rows, tables, _dose_times(cfg)))
    return files


def _dose_times(cfg: CaseConfig) -> dict[str, np.ndarray]:
    """Dose start times (h) of every drug of the case (markers on the burden plot)."""
    if cfg.therapy is None:
        return {}
    from tumorpde.library.pk import schedule

    out = {}
    for t in cfg.therapy.treatments:
        doses = schedule(t.regimen, cfg.therapy.patient, cfg.time.t_end)
        out[t.spec.name] = np.unique(np.array([d.time_h for d in doses], dtype=float))
    return out


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


#: Line styles and markers of the arms: overlapping curves stay distinguishable.
_ARM_STYLES = [
    ("-", "o"),
    ("--", "s"),
    (":", "^"),
    ("-.", "D"),
    ((0, (5, 1)), "v"),
    ((0, (1, 1)), "x"),
]


def _plots(
    out: Path,
    rows: list[dict[str, Any]],
    tables: dict[str, dict[str, np.ndarray]],
    doses: dict[str, np.ndarray] | None = None,
) -> dict[str, str]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # plots are optional (the viz extra)
        return {}
    files = {}
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for k, (arm, q) in enumerate(tables.items()):
        ls, mk = _ARM_STYLES[k % len(_ARM_STYLES)]
        every = max(1, len(q["t_h"]) // 10)
        ax.plot(
            q["t_h"] / 24,
            q["tumor_burden_mm3"],
            linestyle=ls,
            marker=mk,
            # staggered markers: arms that coincide still show every marker
            markevery=(k * every // max(1, len(tables)), every),
            markersize=5,
            fillstyle="none",
            linewidth=2.2 - 0.3 * (k % 4),  # later arms thinner: the earlier stay visible
            label=arm,
        )
    for k, (drug, times) in enumerate((doses or {}).items()):  # dose rug at the bottom
        ax.plot(
            times / 24,
            np.full(len(times), 0.03 + 0.05 * k),
            "|",
            markersize=9,
            color=f"C{len(tables) + k}",
            transform=ax.get_xaxis_transform(),
            label=f"{drug} doses",
        )
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
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / f"{kind}.png", dpi=120)
        plt.close(fig)
        files[f"{kind}_plot"] = str(out / f"{kind}.png")
    return files

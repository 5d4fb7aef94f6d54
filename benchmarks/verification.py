"""Full verification study: ``tumorpde verify --full`` plus convergence plots.

Usage (serial or under MPI; rank 0 writes)::

    python benchmarks/verification.py [--out benchmarks/results/verification] [--case NAME ...]
    timeout 3000 mpiexec -n 2 python benchmarks/verification.py --case mms_box_space

Writes ``verification.json`` (all rows with their refinement data) and one PNG per refinement
study (error against h or dt, with the theoretical slope), plus the Fisher-KPP front track.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

# isort: off
import tumorpde.fem.backend  # noqa: F401  (the wheel's MPI library before mpi4py/dolfinx)
from mpi4py import MPI

# isort: on
from tumorpde.cli._mpi import install_abort_hook
from tumorpde.studies import verification as verify


def plot(rows: list[verify.Row], out: Path) -> list[Path]:
    """Log-log convergence plots per case (rows with ``h``/``dt`` and ``error``/``difference``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    by_case: dict[str, list[verify.Row]] = {}
    for r in rows:
        by_case.setdefault(r.case, []).append(r)
    for case, rs in by_case.items():
        series = [r for r in rs if ("h" in r.data or "dt" in r.data)]
        if series:
            fig, ax = plt.subplots(figsize=(6, 4.5))
            for r in series:
                x = r.data.get("h", r.data.get("dt"))
                y = r.data.get("error", r.data.get("difference"))
                ax.loglog(x, y, "o-", label=f"{r.quantity} ({r.measured:.2f})")
                ax.loglog(x, [y[-1] * (xi / x[-1]) ** r.expected for xi in x], "k:", lw=0.8)
            ax.set_xlabel("dt" if "dt" in series[0].data else "h")
            ax.set_ylabel("error (dotted: theoretical slope)")
            ax.set_title(case)
            ax.legend(fontsize=7)
            ax.grid(True, which="both", alpha=0.3)
            path = out / f"{case}.png"
            fig.tight_layout()
            fig.savefig(path, dpi=120)
            plt.close(fig)
            files.append(path)
        tracks = [(k, v) for r in rs for k, v in r.data.items() if k.startswith("dt=")]
        if tracks:
            fig, ax = plt.subplots(figsize=(6, 4.5))
            for k, v in tracks:
                ax.plot(
                    v["t"],
                    [x - 2.0 * t for t, x in zip(v["t"], v["x"], strict=True)],
                    label=f"{k}: fitted c = {v['c']:.4f}, a = {v['a']:.2f}",
                )
            ax.set_xlabel("t")
            ax.set_ylabel("x(t) - 2 t  (Bramson: -1.5 ln t + const)")
            ax.set_title("Fisher-KPP front position")
            ax.legend(fontsize=8)
            path = out / f"{case}_track.png"
            fig.tight_layout()
            fig.savefig(path, dpi=120)
            plt.close(fig)
            files.append(path)
    return files


def main() -> int:
    install_abort_hook()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/verification"))
    p.add_argument("--case", nargs="+", help=f"subset of: {', '.join(verify.CASES)}")
    p.add_argument("--quick", action="store_true", help="the CI refinement levels instead")
    args = p.parse_args()
    comm = MPI.COMM_WORLD

    def progress(name: str, sec: float) -> None:
        if comm.rank == 0:
            print(f"  {name}: {sec:.1f} s", flush=True)

    rows = verify.run_cases(comm, args.case, full=not args.quick, progress=progress)
    if comm.rank == 0:
        args.out.mkdir(parents=True, exist_ok=True)
        print(verify.format_table(rows))
        verify.write_json(
            rows, args.out / "verification.json", {"ranks": comm.size, "full": not args.quick}
        )
        for f in plot(rows, args.out):
            print(f"  plot: {f}")
    return 0 if all(r.passed for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())

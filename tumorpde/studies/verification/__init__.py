r"""Verification suite: does tumorpde solve its equations right?

This package holds the case registry (:data:`CASES`), the driver (:func:`run_cases`) and the
table/JSON formatting of the results. Every case runs the product's own code path
(:func:`tumorpde.fem.forms.build_forms`, :class:`tumorpde.fem.solver.NewtonSolver`,
:func:`tumorpde.simulation.stepper.steps`), compares with an independent reference and returns
result rows (:class:`Row`) ``case, quantity, expected, measured, tolerance, passed``. The cases
live in one module per kind of reference:

* :mod:`~tumorpde.studies.verification.mms`: manufactured solutions (``mms_box_space``,
  ``mms_ball_space``: P1 rates in space; ``mms_box_time``: the backward-Euler rate).
* :mod:`~tumorpde.studies.verification.invariants`: discrete invariants (``conservation``,
  ``positivity``).
* :mod:`~tumorpde.studies.verification.exact`: closed forms (``well_mixed`` equilibria;
  ``steady_slab``, ``steady_sphere``, ``krogh``: steady diffusion-decay with a Dirichlet wall).
* :mod:`~tumorpde.studies.verification.fisher`: Fisher-KPP fronts (``travelling_wave``, the
  Ablowitz-Zeppetella exact wave; ``fisher_speed``, the Bramson-corrected front speed).
* :mod:`~tumorpde.studies.verification.partition`: the same coupled run on the whole
  communicator and on one rank (``partition``).

:mod:`~tumorpde.studies.verification.harness` holds what they share (the case template, problem
set-up, time marching, MPI-reduced integrals, test meshes). Everything takes the communicator
explicitly and reduces over it. ``tumorpde verify`` (:mod:`tumorpde.cli.verify`) prints the table
on rank 0 and writes it as JSON.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import tumorpde.fem.backend  # noqa: F401  (before any dolfinx import)

from tumorpde.simulation.stepper import StepFailedError
from tumorpde.studies.verification.exact import (
    case_krogh,
    case_steady_slab,
    case_steady_sphere,
    case_well_mixed,
)
from tumorpde.studies.verification.fisher import case_fisher_speed, case_travelling_wave
from tumorpde.studies.verification.harness import VERIFY_PETSC, Row, _row, ball_domain
from tumorpde.studies.verification.invariants import case_conservation, case_positivity
from tumorpde.studies.verification.mms import (
    case_mms_ball_space,
    case_mms_box_space,
    case_mms_box_time,
)
from tumorpde.studies.verification.partition import case_partition

__all__ = [
    "CASES",
    "QUICK",
    "VERIFY_PETSC",
    "Row",
    "ball_domain",
    "format_table",
    "run_cases",
    "write_json",
]


#: Case name -> function(comm, full) -> rows.
CASES: dict[str, Callable[[Any, bool], list[Row]]] = {
    "mms_box_space": case_mms_box_space,
    "mms_box_time": case_mms_box_time,
    "mms_ball_space": case_mms_ball_space,
    "conservation": case_conservation,
    "positivity": case_positivity,
    "well_mixed": case_well_mixed,
    "steady_slab": case_steady_slab,
    "steady_sphere": case_steady_sphere,
    "krogh": case_krogh,
    "travelling_wave": case_travelling_wave,
    "fisher_speed": case_fisher_speed,
    "partition": case_partition,
}

#: The quick subset (CI): everything except the long Fisher-KPP front-speed run.
QUICK = tuple(c for c in CASES if c != "fisher_speed")


def run_cases(
    comm: Any,
    names: Iterable[str] | None = None,
    *,
    full: bool = False,
    progress: Callable[[str, float], None] | None = None,
) -> list[Row]:
    """Run verification cases.

    Args:
        comm: Communicator (collective: every rank must call this).
        names: Case names (default: :data:`QUICK`, or all of :data:`CASES` when ``full``).
        full: Use the finer refinement studies of the full version.
        progress: Called as ``progress(case, seconds)`` after each case.

    Returns:
        Result rows, identical on all ranks.

    Raises:
        KeyError: For an unknown case name.
    """
    selected = list(names) if names else list(CASES if full else QUICK)
    unknown = [n for n in selected if n not in CASES]
    if unknown:
        raise KeyError(f"unknown verification case(s) {unknown}; known: {', '.join(CASES)}")
    rows: list[Row] = []
    for name in selected:
        t0 = time.perf_counter()
        try:
            rows += CASES[name](comm, full)
        except StepFailedError as exc:  # raised alike on every rank (SNES reasons are global)
            rows.append(_row(name, f"solver failure: {exc}", 0.0, math.nan, 0.0))
        if progress is not None:
            progress(name, time.perf_counter() - t0)
    return rows


def format_table(rows: Sequence[Row]) -> str:
    """A plain-text table: case, quantity, expected, measured, tolerance, pass."""
    sym = {"abs": "±", "rel": "±rel ", "le": "≤ ", "ge": "≥ "}
    head = ("case", "quantity", "expected", "measured", "tolerance", "pass")
    body = [
        (
            r.case,
            r.quantity,
            f"{r.expected:.6g}",
            f"{r.measured:.6g}",
            f"{sym[r.kind]}{r.tolerance:.3g}",
            "PASS" if r.passed else "FAIL",
        )
        for r in rows
    ]
    widths = [max(len(x[i]) for x in [head, *body]) for i in range(len(head))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in [head, *body]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    n_fail = sum(not r.passed for r in rows)
    lines.append(f"{len(rows) - n_fail}/{len(rows)} passed")
    return "\n".join(lines)


def write_json(rows: Sequence[Row], path: str | Path, meta: dict[str, Any] | None = None) -> None:
    """Write the rows (and optional metadata) as JSON (call on one rank)."""
    doc = {"meta": meta or {}, "rows": [asdict(r) for r in rows]}
    Path(path).write_text(json.dumps(doc, indent=2, default=float, allow_nan=True))

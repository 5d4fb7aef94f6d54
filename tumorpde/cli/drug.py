"""``tumorpde drug [NAME]``: the drug catalog and the plasma PK of each regimen.

Without NAME the shipped drugs are listed; with NAME (a shipped name or a TOML file) the entry
(mechanism, targets, key parameters with their sources) and the steady-state plasma PK of each
regimen, from :func:`tumorpde.library.pk.steady_state_summary` (and
:func:`~tumorpde.library.pk.course_summary` with ``--days``). Imports neither dolfinx nor MPI.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from tumorpde.library.drugs import (
    DrugError,
    DrugSpec,
    Patient,
    available_drugs,
    load_drug,
    provenance,
)
from tumorpde.library.pk import course_summary, steady_state_summary, terminal_half_life_h

__all__ = ["register"]

#: Top-level parameter tables printed in the text report (all are in ``--json``).
_KEY_PARAMS = (
    "molecular_weight",
    "diffusivity",
    "plasma_unbound_fraction",
    "available_volume_fraction",
    "tissue_clearance",
)


def _entry(spec: DrugSpec) -> dict[str, Any]:
    """The catalog entry of a drug as JSON-ready data (with every parameter's provenance)."""
    return {
        "name": spec.name,
        "description": spec.description,
        "mechanism": spec.mechanism,
        "targets": list(spec.targets),
        "file": str(spec.path) if spec.path else None,
        "pk_model": spec.pk.model,
        "half_life_h": terminal_half_life_h(spec.pk),
        "regimens": {n: r.describe() for n, r in spec.regimens.items()},
        "parameters": provenance(spec.path or spec.name),
    }


def _print_entry(entry: dict[str, Any], spec: DrugSpec) -> None:
    """Print the catalog entry: mechanism, targets, key parameters with sources, regimens."""
    print(f"{spec.name}: {spec.description}".rstrip(": "))
    print(f"  mechanism: {spec.mechanism}; targets: {', '.join(spec.targets)}")
    print(f"  file: {entry['file']}")
    print(f"  PK model: {spec.pk.model} (terminal half-life {entry['half_life_h'] / 24:.3g} d)")
    print("  parameters (value unit [confidence] source):")
    for row in entry["parameters"]:
        if row["path"].startswith("label."):
            continue
        top = row["path"].split(".")[0]
        if top in (*_KEY_PARAMS, "pk", "binding", "potency", "permeability", "response"):
            print(
                f"    {row['path']:34s} {row['value']:<10g} {row['unit']:<12s} "
                f"[{row['confidence']}] {row['source']}"
            )
    if spec.regimens:
        print("  regimens:")
        for n, r in spec.regimens.items():
            print(f"    {n}: {r.describe()}")


def _cmd_drug(args: argparse.Namespace) -> int:
    if args.name is None:
        for n in available_drugs():
            spec = load_drug(n)
            print(f"{n:14s} {spec.mechanism:18s} {', '.join(spec.targets):12s} {spec.description}")
        return 0
    try:
        spec = load_drug(args.name)
        patient = Patient(body_weight=args.weight, body_surface_area=args.bsa)
        names = [args.regimen] if args.regimen else list(spec.regimens)
        for n in names:
            spec.regimen(n)
        entry = _entry(spec)
        ss = {n: steady_state_summary(spec, n, patient) for n in names}
        course = (
            {n: course_summary(spec, n, args.days, patient) for n in names}
            if args.days is not None
            else None
        )
    except (DrugError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        out = {**entry, "patient": patient.model_dump(), "steady_state": ss}
        if course is not None:
            out["course"] = course
        print(json.dumps(out, indent=2))
        return 0
    _print_entry(entry, spec)
    print(
        f"PK (patient {patient.body_weight:g} kg, {patient.body_surface_area:g} m^2; "
        f"1 mg/L = {spec.nM_per_mg_L:.4g} nM):"
    )
    for n, s in ss.items():
        lab = spec.label.get(n)
        print(
            f"  {n}: steady state Cmin {s['cmin_ss']:.4g} mg/L ({s['cmin_ss_nM']:.4g} nM), "
            f"Cmax {s['cmax_ss']:.4g} mg/L ({s['cmax_ss_nM']:.4g} nM), "
            f"Cavg {s['cavg_ss']:.4g} mg/L, accumulation {s['accumulation_ratio']:.3g}"
        )
        if lab is not None:
            for key, lv in lab.items():
                print(f"      label {key} = {lv.value:g} {lv.unit} [{lv.confidence}] {lv.source}")
        if course is not None:
            c = course[n]
            print(
                f"      first {c['days']:g} days: {c['n_doses']} doses, C(end) "
                f"{c['c_end']:.4g} mg/L ({c['c_end_nM']:.4g} nM), max {c['c_max']:.4g} mg/L, "
                f"AUC {c['auc']:.4g} mg·h/L"
            )
    return 0


def register(subparsers: Any) -> None:
    """Add ``drug [NAME] [--regimen R] [--days N] [--json]`` to the main parser's subparsers.

    Args:
        subparsers: The object returned by ``ArgumentParser.add_subparsers``.
    """
    d = subparsers.add_parser(
        "drug",
        help="show a drug of the catalog and its plasma PK (no NAME: list the catalog)",
        description="Catalog entry (mechanism, targets, parameters with sources) and the "
        "steady-state plasma PK of each regimen.",
    )
    d.add_argument("name", nargs="?", help="drug name (see `tumorpde drug`) or a TOML file")
    d.add_argument("--regimen", help="only this regimen (default: all)")
    d.add_argument("--days", type=float, help="also summarize the first N days of the course")
    d.add_argument("--weight", type=float, default=70.0, help="body weight in kg (default 70)")
    d.add_argument("--bsa", type=float, default=1.8, help="body surface area in m^2 (default 1.8)")
    d.add_argument("--json", action="store_true", help="machine-readable output")
    d.set_defaults(func=_cmd_drug)

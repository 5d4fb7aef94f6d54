"""Small ready-made cases for studies, benchmarks and tests, as case dictionaries.

:func:`example_box_case` is the default EGF/EGFR physics on a cube; :func:`merge_sections`
updates a case dictionary table by table. Both feed :func:`tumorpde.config.config_from_dict`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["example_box_case", "merge_sections"]


def merge_sections(case: dict[str, Any], sections: Mapping[str, Any]) -> dict[str, Any]:
    """Update a case dictionary table by table (``mesh`` is replaced whole, not merged).

    Args:
        case: A case as a dictionary (modified in place).
        sections: Top-level keys to set; a table merges into the existing table of that name.

    Returns:
        ``case``.
    """
    for key, value in sections.items():
        if key != "mesh" and isinstance(value, dict) and isinstance(case.get(key), dict):
            case[key] = {**case[key], **value}
        else:
            case[key] = value
    return case


def example_box_case(
    size_mm: float, cells: int, name: str = "example_box", **sections: Any
) -> dict[str, Any]:
    """The default EGF/EGFR physics (``benchmarks/cases/default.toml``) on a cube, as a dict.

    Used by benchmarks and tests that need a small valid case; tables in ``sections`` are merged
    over the defaults (see :func:`merge_sections`).

    Args:
        size_mm: Edge length of the cube (mm); the seed sits at its centre.
        cells: Cells per edge.
        name: Case name.
        sections: Tables to merge over the defaults.

    Returns:
        A case dictionary for :func:`config_from_dict`.
    """
    c = size_mm / 2
    case: dict[str, Any] = {
        "name": name,
        "mesh": {"kind": "box", "size": [size_mm] * 3, "cells": [cells] * 3},
        "time": {"t_end": "36 h", "dt": "12 h"},
        "tumor": {
            "proliferation_rate": "0.05 1/day",
            "motility": "0.65 mm^2/day",
            "chemotaxis": "0.5 mm^2/day/nM",
            "initial": {"kind": "gaussian", "center": [c, c, c], "radius": size_mm / 5},
        },
        "ligand": {
            "diffusivity": "6e-7 cm^2/s",
            "decay_rate": "1e-4 1/s",
            "tumor_secretion": "1 nM/h",
            "stromal_secretion": "0.02 nM/h",
        },
        "receptor": {
            "receptors_per_cell": 5e4,
            "k_on": "1e6 1/M/s",
            "k_off": "2e-3 1/s",
            "k_t": "0.03 1/min",
            "k_e": "0.15 1/min",
        },
        "output": {"picture": False},
    }
    return merge_sections(case, sections)

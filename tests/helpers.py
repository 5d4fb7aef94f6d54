"""Helpers shared by the tests: small valid cases and repository paths (no MPI, no DOLFINx)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tumorpde.studies.cases import example_box_case, merge_sections

__all__ = ["REPO", "box_case", "example_box_case", "merge_sections", "split_box"]

REPO = Path(__file__).resolve().parents[1]


def box_case(**sections: Any) -> dict[str, Any]:
    """A small valid case dictionary on a box; keyword tables replace/extend the defaults."""
    case = example_box_case(
        4.0,
        4,
        "test_box",
        time={"t_end": 4.0, "dt": 1.0},
        tumor={
            "proliferation_rate": "0.5 1/day",
            "motility": "0.1 mm^2/day",
            "initial": {"kind": "gaussian", "center": [2.0, 2.0, 2.0], "radius": 1.0},
        },
        ligand={"diffusivity": "5e-7 cm^2/s", "stromal_secretion": 0.0},
    )
    return merge_sections(case, sections)


def split_box(
    size: tuple[float, float, float],
    cells: tuple[int, int, int],
    left: str,
    right: str,
    split_x: float,
) -> dict[str, Any]:
    """A box mesh table with two regions: ``left`` for x < ``split_x``, ``right`` beyond it."""
    return {
        "kind": "box",
        "size": list(size),
        "cells": list(cells),
        "default_region": left,
        "regions": [{"name": right, "min": [split_x, 0.0, 0.0], "max": list(size)}],
    }

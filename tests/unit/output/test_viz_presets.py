"""Figure presets without rendering: field choice by case components, styles, limits, views.

Pure Python (no PyVista), so these run at any process count.
"""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

import pytest

from tumorpde.output.viz.presets import (
    ORGAN_VIEWS,
    field_style,
    merge_clims,
    nice_length,
    organ_of,
    preset_fields,
)

GROWTH = ["tumor", "EGF", "EGFR", "EGFR_complex", "EGFR_occupancy"]
THERAPY = [
    *GROWTH,
    "HER2",
    "trastuzumab",
    "trastuzumab_bound",
    "trastuzumab_occupancy",
    "lapatinib",
    "lapatinib_inhibition",
    "kill_rate",
    "net_growth_rate",
]


def _case(drugs=(), organ=None, ligand="EGF"):
    treatments = [SimpleNamespace(spec=SimpleNamespace(name=d)) for d in drugs]
    return SimpleNamespace(
        name="c",
        organ=organ,
        pathways={"EGFR": SimpleNamespace(ligand=SimpleNamespace(name=ligand))},
        therapy=SimpleNamespace(treatments=treatments) if drugs else None,
    )


def test_growth_run_shows_tumor_ligand_and_occupancy() -> None:
    assert preset_fields("auto", GROWTH, _case()) == ["tumor", "EGF", "EGFR_occupancy"]
    # without the case the EGFR receptor is not mistaken for a drug
    assert preset_fields("auto", GROWTH) == ["tumor", "EGF", "EGFR_occupancy"]


def test_therapy_run_shows_drug_response_and_kill_rate() -> None:
    want = [
        "tumor",
        "trastuzumab",
        "trastuzumab_occupancy",
        "lapatinib",
        "lapatinib_inhibition",
        "kill_rate",
    ]
    assert preset_fields("auto", THERAPY, _case(["trastuzumab", "lapatinib"])) == want
    assert preset_fields("therapy", THERAPY) == want  # by field names alone
    assert preset_fields("growth", THERAPY, _case(["trastuzumab"]))[:2] == ["tumor", "EGF"]


def test_module_presets() -> None:
    fields = ["tumor", "oxygen", "osteoclast", "mesenchymal", "EGF", "EGFR_occupancy"]
    assert preset_fields("auto", fields, _case()) == [
        "tumor",
        "oxygen",
        "osteoclast",
        "mesenchymal",
    ]
    assert preset_fields("oxygen", fields) == ["tumor", "oxygen"]
    assert preset_fields("bone", fields) == ["tumor", "osteoclast"]
    assert preset_fields("emt", fields) == ["tumor", "mesenchymal"]
    with pytest.raises(ValueError, match="preset 'bone': the run stored none of its fields"):
        preset_fields("bone", GROWTH)
    with pytest.raises(ValueError, match="unknown preset 'nice'"):
        preset_fields("nice", GROWTH)


def test_styles_units_and_limits() -> None:
    assert field_style("EGF", "nM").title == "EGF [nM]"
    assert field_style("tumor", "1 (u = n / n_max)").title == "tumor density u"
    assert field_style("kill_rate", "1/h").title == "kill rate [1/h]"
    occ = field_style("trastuzumab_occupancy", "1")
    assert occ.title == "trastuzumab occupancy" and occ.fraction
    styles = {n: field_style(n) for n in ("tumor", "EGF", "trastuzumab_occupancy", "oxygen")}
    ranges = {
        "tumor": (-1e-6, 0.3),  # an undershoot is drawn from 0
        "EGF": (0.02, 0.06),
        "trastuzumab_occupancy": (0.0, 0.31),
        "oxygen": (0.2, 0.9),
    }
    lim = merge_clims(styles, ranges, {"oxygen": (0.0, 1.0)})
    assert lim["tumor"] == (0.0, 0.3)
    assert lim["EGF"] == (0.0, 0.06)
    assert lim["trastuzumab_occupancy"] == (0.0, 0.5)  # rounded up to a round number
    assert lim["oxygen"] == (0.0, 1.0)  # the override wins
    flat = merge_clims({"EGF": field_style("EGF")}, {"EGF": (0.0, 0.0)})
    assert flat["EGF"][1] > flat["EGF"][0]


def test_organs_and_scale_bar() -> None:
    assert organ_of(_case(organ="lung")) == "lung"
    assert organ_of(None, ["cortical", "marrow"]) == "bone"
    assert organ_of(None, ["grey", "white"]) == "brain"
    assert organ_of(None, ["a", "b"]) == "box"
    assert set(ORGAN_VIEWS) == {"brain", "lung", "bone", "liver"}
    assert nice_length(140.0) == 20.0
    assert nice_length(240.0) == 20.0
    assert nice_length(260.0) == 50.0
    assert nice_length(12.0) == 2.0


def test_import_tumorpde_loads_no_plotting_library() -> None:
    code = (
        "import sys, tumorpde, tumorpde.cli, tumorpde.output.viz; "
        "assert tumorpde.viz.plot is tumorpde.output.viz.plot; "
        "bad = [m for m in ('pyvista', 'matplotlib', 'imageio', 'vtk') if m in sys.modules]; "
        "print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"

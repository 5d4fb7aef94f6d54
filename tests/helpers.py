"""Helpers shared by the tests: small valid cases and repository paths (no MPI, no DOLFINx)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tumorpde.studies.cases import example_box_case, merge_sections

__all__ = [
    "REPO",
    "box_case",
    "box_toml",
    "example_box_case",
    "merge_sections",
    "model_symbols",
    "owned_values",
    "run_counting",
    "seeded_tumor",
    "split_box",
    "static_tumor",
    "two_region_box",
]

REPO = Path(__file__).resolve().parents[1]


def two_region_box() -> dict[str, Any]:
    """A 4 x 3 x 3 mm box mesh table: region "core" for x < 2 mm, "body" elsewhere."""
    return {
        "kind": "box",
        "size": [4.0, 3.0, 3.0],
        "cells": [6, 4, 4],
        "default_region": "body",
        "regions": [{"name": "core", "min": [0.0, 0.0, 0.0], "max": [2.0, 3.0, 3.0]}],
    }


def seeded_tumor() -> dict[str, Any]:
    """A growing, dying, moving tumor: a Gaussian seed in the middle of :func:`two_region_box`."""
    return {
        "proliferation_rate": "0.1 1/day",
        "motility": "0.1 mm^2/day",
        "death_rate": "0.01 1/day",
        "initial": {"kind": "gaussian", "center": [2.0, 1.5, 1.5], "radius": 1.0},
    }


def owned_values(f: Any) -> Any:
    """A copy of the owned (non-ghost) nodal values of a DOLFINx Function."""
    return f.x.array[: f.function_space.dofmap.index_map.size_local].copy()


def run_counting(sim: Any) -> tuple[int, int]:
    """Step a Simulation to its end: total Newton and linear iterations (each step > 0)."""
    newton = linear = 0
    for info in sim.steps():
        assert info.newton_iterations > 0
        newton += info.newton_iterations
        linear += info.linear_iterations
    return newton, linear


def static_tumor(value: float = 0.5) -> dict[str, Any]:
    """A well-mixed tumor that neither grows, dies nor moves (uniform density ``value``)."""
    return {
        "proliferation_rate": 0.0,
        "death_rate": 0.0,
        "motility": 0.0,
        "initial": {"kind": "uniform", "value": value},
    }


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


def box_toml(
    name: str,
    *,
    nx: int = 6,
    t_end: str = "2 day",
    output_every: str = "12 h",
    white: bool = True,
    output: str = "",
) -> str:
    """The TOML text of the 6 x 4 x 4 mm EGF/EGFR box case the output and fault tests run.

    Args:
        name: The case name.
        nx: Cells along x (4 along y and z).
        t_end: End time.
        output_every: Output interval.
        white: Tag x > 3 mm as a ``white`` region (else one ``grey`` region).
        output: Extra lines of the ``[output]`` table (``picture = false`` is always there).
    """
    regions = 'regions = [{ name = "white", min = [3, 0, 0], max = [6, 4, 4] }]\n' if white else ""
    return f"""name = "{name}"
[mesh]
kind = "box"
size = ["6 mm", "4 mm", "4 mm"]
cells = [{nx}, 4, 4]
default_region = "grey"
{regions}[time]
t_end = "{t_end}"
dt = "12 h"
output_every = "{output_every}"
[tumor]
proliferation_rate = "0.3 1/day"
motility = "0.13 mm^2/day"
initial = {{ kind = "gaussian", center = ["3 mm", "2 mm", "2 mm"], radius = "1.5 mm" }}
[ligand]
diffusivity = "6e-7 cm^2/s"
decay_rate = "1e-4 1/s"
tumor_secretion = "1 nM/h"
[receptor]
receptors_per_cell = 5e4
[output]
picture = false
{output}"""


def model_symbols(model: Any, regions: Any = ()) -> Any:
    """Abstract UFL symbols for every name a model uses (no mesh, no DOLFINx).

    Args:
        model: A :class:`tumorpde.model.Model`.
        regions: Region names handed to the components.
    """
    import basix.ufl
    import ufl

    from tumorpde.model import Symbols

    domain = ufl.Mesh(basix.ufl.element("Lagrange", "tetrahedron", 1, shape=(3,)))
    V = ufl.FunctionSpace(domain, basix.ufl.element("Lagrange", "tetrahedron", 1))
    Q = ufl.FunctionSpace(domain, basix.ufl.element("DG", "tetrahedron", 0))
    fields = {n: ufl.Coefficient(V) for n in model.names}
    keys = ["zero", "one", *model.constants(), *model.time_constants()]
    constants = {k: ufl.Constant(domain) for k in keys}
    coefficients = {c.key: ufl.Coefficient(Q) for c in model.cell_fields()}
    return Symbols(fields, constants, coefficients, list(regions))

"""Unit handling: parse case-file quantities and convert them, once, to tumorpde's internal units.

Internal units are **mm** (length), **h** (time) and **nM** (concentration). Tumor-cell density
is normalized by the carrying capacity (dimensionless). Receptor states are stored as the
concentration they would have if the tissue were at carrying capacity (nM), see
:func:`receptors_per_cell_to_nM`.

A case-file value is either a plain number, taken to be in internal units already, or a string
``"<number> <unit>"`` understood by pint (e.g. ``"1e-7 cm^2/s"``, ``"0.2 1/day"``,
``"1e7 1/M/s"``). Only this module imports pint, and only when a string needs parsing.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

#: Avogadro's number (1/mol), CODATA 2018 exact value.
AVOGADRO = 6.02214076e23

#: Internal unit (pint syntax) for each physical kind used in case files.
INTERNAL_UNITS: dict[str, str] = {
    "length": "mm",
    "time": "h",
    "rate": "1/h",
    "diffusivity": "mm^2/h",
    "concentration": "nM",
    "concentration_rate": "nM/h",
    "second_order_rate": "1/(nM*h)",
    "chemotaxis": "mm^2/(h*nM)",
    "cell_density": "1/mm^3",
    "dimensionless": "dimensionless",
    "pressure": "mmHg",
    "pressure_rate": "mmHg/h",
    "inverse_length": "1/mm",
    "velocity": "mm/h",
    # pharmacokinetics (plasma compartments and doses keep clinical units)
    "mass": "mg",
    "volume": "L",
    "volume_rate": "L/h",
    "mass_rate": "mg/h",
    "mass_concentration": "mg/L",
    "molar_mass": "g/mol",
    "body_mass": "kg",
    "area": "m^2",
}


@cache
def _registry() -> Any:
    import pint

    ureg = pint.UnitRegistry()
    # Counting units: "1e8 cells/mL" and "receptors/cell" are numbers per volume / per cell.
    ureg.define("cell = 1 = cells")
    ureg.define("receptor = 1 = receptors")
    return ureg


def to_internal(value: Any, kind: str) -> float:
    """Convert a case-file value to the internal unit of ``kind``.

    Args:
        value: A number (already in internal units), a string ``"<number> <unit>"``, or a
            parameter-library table ``{value, unit, source, confidence}`` (only ``value`` and
            ``unit`` are used here).
        kind: A key of :data:`INTERNAL_UNITS`.

    Returns:
        The magnitude in the internal unit.

    Raises:
        ValueError: If the string cannot be parsed or has the wrong dimensions; the message names
            the expected unit so pydantic can report it against the field path.
    """
    target = INTERNAL_UNITS[kind]
    if isinstance(value, Mapping):
        # A parameter-library entry: {value = ..., unit = "...", source = "...", confidence = ...}
        if "value" not in value:
            raise ValueError(f"a {kind} table needs a 'value' key (got keys {sorted(value)})")
        unit = value.get("unit")
        value = value["value"] if unit in (None, "", "1") else f"{value['value']} {unit}"
    if isinstance(value, bool):
        raise ValueError(f"expected a {kind} (number in {target} or a string with units)")
    if isinstance(value, int | float):
        return float(value)
    if not isinstance(value, str):
        raise ValueError(f"expected a {kind}: a number in {target} or a string like '1 {target}'")
    try:
        return float(value)  # a bare number given as a string
    except ValueError:
        pass
    import pint

    ureg = _registry()
    try:
        q = ureg.Quantity(value.strip())
    except (pint.errors.UndefinedUnitError, pint.errors.DefinitionSyntaxError) as exc:
        raise ValueError(f"cannot parse {value!r} as a {kind}: {exc}") from None
    except Exception as exc:  # pint raises assorted tokenizer errors on garbage input
        raise ValueError(f"cannot parse {value!r} as a {kind} ({type(exc).__name__})") from None
    if isinstance(q, int | float):
        raise ValueError(f"cannot parse {value!r} as a {kind}")
    try:
        return float(q.to(target).magnitude)
    except pint.errors.DimensionalityError:
        raise ValueError(
            f"{value!r} has units of {q.dimensionality}, expected a {kind} convertible to {target}"
        ) from None


def receptors_per_cell_to_nM(receptors_per_cell: float, cells_per_mm3: float) -> float:
    r"""Convert a receptor count per cell to a tissue concentration at that cell density.

    :math:`R[\mathrm{nM}] = N_R\,\rho_{cell} / N_A`, with :math:`\rho_{cell}` in cells/mm³:
    one molecule per mm³ is :math:`10^{15}/N_A` nM.

    Args:
        receptors_per_cell: Receptor number per cell.
        cells_per_mm3: Cell density in cells/mm³.

    Returns:
        The concentration in nM (e.g. 1e5 receptors/cell at 1e5 cells/mm³ gives 16.6 nM).
    """
    return receptors_per_cell * cells_per_mm3 * 1e15 / AVOGADRO

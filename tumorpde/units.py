"""Unit handling: parse case-file quantities and convert them, once, to tumorpde's internal units.

Internal units are **mm** (length), **h** (time) and **nM** (concentration). Tumor-cell density
is normalized by the carrying capacity (dimensionless). Receptor states are stored as the
concentration they would have if the tissue were at carrying capacity (nM), see
:func:`receptors_per_cell_to_nM`.

A case-file value is either a plain number, taken to be in internal units already, or a string
``"<number> <unit>"`` (e.g. ``"1e-7 cm^2/s"``, ``"0.2 1/day"``, ``"1e7 1/M/s"``). The unit
is checked against a small grammar first (unit names, ``*``, ``/``, ``^``/``**`` with small
integer exponents, parentheses; :func:`check_unit_expression`), so pint, which evaluates
arithmetic, only ever sees a plain unit expression; pint then does the conversion. Every result
is finite (``inf``, ``nan`` and overflows such as ``"1e400 mm"`` are rejected). Only this module
imports pint, and only when a string needs parsing.
"""

from __future__ import annotations

import math
import re
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
    # boundary flux density (amount per area and time): concentration x length / time
    "surface_flux": "nM*mm/h",
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


#: Longest accepted quantity string (a unit expression is a few names; anything longer is not).
MAX_QUANTITY_CHARS = 200
#: Largest accepted integer exponent in a unit expression (``mm^2``, ``1/(M*s)``, ``m^-3``).
MAX_EXPONENT = 4
#: Deepest accepted parenthesis nesting in a unit expression.
MAX_NESTING = 3

_NUMBER = re.compile(r"\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)(?![\w.])\s*(.*)$", re.S)
_TOKEN = re.compile(r"\s*(\*\*|\^|\*|/|\(|\)|[+-]?\d+|[^\W\d]\w*)")


class _UnitSyntax(ValueError):
    """A unit expression outside the accepted grammar (see :func:`check_unit_expression`)."""


def check_unit_expression(expr: str) -> None:
    """Check that ``expr`` is a plain unit expression, without evaluating anything.

    Accepted: unit names (``mm``, ``cells``, ``ug``) and the literal ``1``, joined by ``*``,
    ``/`` or a space, each optionally raised to a small integer power with ``^`` or ``**``
    (``|n| <=`` :data:`MAX_EXPONENT`, optionally signed and in parentheses), with parentheses
    nested at most :data:`MAX_NESTING` deep: ``"mm^2/day"``, ``"1/(M*s)"``, ``"mm^2/h/nM"``,
    ``"ug*h/mL"``, ``"m**-3"``. Numbers other than exponents and the leading ``1`` of
    ``"1/day"`` are rejected, so pint never evaluates arithmetic (``"9**9**9 mm"``).

    Args:
        expr: The unit part of a quantity string.

    Raises:
        ValueError: Naming what is not allowed.
    """
    tokens: list[str] = []
    pos = 0
    text = expr.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise _UnitSyntax(f"unexpected character {text[pos:].strip()[:1]!r} in the unit")
        tokens.append(m.group(1))
        pos = m.end()
    if not tokens:
        raise _UnitSyntax("missing unit")
    i = 0

    def peek() -> str | None:
        return tokens[i] if i < len(tokens) else None

    def take() -> str:
        nonlocal i
        i += 1
        return tokens[i - 1]

    def atom_start(t: str | None) -> bool:
        return t is not None and (t == "(" or t == "1" or t[0].isalpha() or t[0] == "_")

    def exponent() -> None:
        paren = peek() == "("
        if paren:
            take()
        t = peek()
        if t is None or not t.lstrip("+-").isdigit():
            raise _UnitSyntax("an exponent must be an integer in the unit")
        take()
        if abs(int(t)) > MAX_EXPONENT:
            raise _UnitSyntax(f"exponent {t} in the unit is out of range (|n| <= {MAX_EXPONENT})")
        if paren and take_if(")") is False:
            raise _UnitSyntax("unbalanced parentheses in the unit")

    def take_if(t: str) -> bool:
        if peek() == t:
            take()
            return True
        return False

    def term(depth: int) -> None:
        t = peek()
        if t == "(":
            if depth >= MAX_NESTING:
                raise _UnitSyntax("parentheses nested too deep in the unit")
            take()
            product(depth + 1)
            if not take_if(")"):
                raise _UnitSyntax("unbalanced parentheses in the unit")
        elif t == "1" or (t is not None and (t[0].isalpha() or t[0] == "_")):
            take()
        elif t is not None and t.lstrip("+-").isdigit():
            raise _UnitSyntax(
                f"unexpected number {t} in the unit (only exponents and a leading 1 as in "
                "'1/day' are numbers)"
            )
        else:
            raise _UnitSyntax("expected a unit name" + (f", got {t!r}" if t else ""))
        if peek() in ("^", "**"):
            take()
            exponent()
            if peek() in ("^", "**"):
                raise _UnitSyntax("repeated exponent in the unit")

    def product(depth: int) -> None:
        term(depth)
        while True:
            t = peek()
            if t in ("*", "/"):
                take()
                term(depth)
            elif atom_start(t):
                term(depth)  # "mg m^-2": a space multiplies, as in pint
            else:
                return

    product(0)
    if i != len(tokens):
        raise _UnitSyntax(f"unexpected {tokens[i]!r} in the unit")


def split_quantity(text: str) -> tuple[float, str]:
    """Split ``"<number> <unit expression>"`` into a finite number and a checked unit.

    Args:
        text: E.g. ``"6e-7 cm^2/s"``.

    Returns:
        The magnitude and the unit expression (checked by :func:`check_unit_expression`).

    Raises:
        ValueError: If the number is missing or not finite, or the unit is not a plain unit
            expression.
    """
    if len(text) > MAX_QUANTITY_CHARS:
        raise ValueError(f"quantity string too long ({len(text)} > {MAX_QUANTITY_CHARS} chars)")
    m = _NUMBER.match(text)
    if m is None:
        head = text.strip().split(" ", 1)[0]
        try:
            if not math.isfinite(float(head)):
                raise ValueError(f"the number must be finite (got {head})")
        except ValueError as exc:
            if "finite" in str(exc):
                raise
        raise ValueError(f"expected '<number> <unit>' like '1.5 mm^2/day' (got {text!r})")
    magnitude = float(m.group(1))
    if not math.isfinite(magnitude):
        raise ValueError(f"the number {m.group(1)} is out of range (not finite)")
    check_unit_expression(m.group(2))
    return magnitude, m.group(2).strip()


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:30] + f"... ({len(text)} chars)"


def _finite(x: float, value: Any, target: str) -> float:
    if not math.isfinite(x):
        raise ValueError(f"{_short(value)} is not finite in {target} (got {x}); give a number")
    return x


def to_internal(value: Any, kind: str, *, times: str | None = None) -> float:
    """Convert a case-file value to the internal unit of ``kind``.

    Args:
        value: A number (already in internal units), a string ``"<number> <unit>"`` (the unit
            a plain expression of unit names, see :func:`check_unit_expression`), or a
            parameter-library table ``{value, unit, source, confidence}`` (only ``value`` and
            ``unit`` are used here).
        kind: A key of :data:`INTERNAL_UNITS`.
        times: A unit expression the quantity is multiplied by before conversion (``"kg"``
            turns a dose in mg/kg into mg for 1 kg, ``"1/h"`` an AUC into a concentration).

    Returns:
        The magnitude in the internal unit; always finite.

    Raises:
        ValueError: If the value is not finite, the string cannot be parsed or has the wrong
            dimensions; the message names the expected unit so pydantic can report it against
            the field path.
    """
    target = INTERNAL_UNITS[kind]
    if isinstance(value, Mapping):
        # A parameter-library entry: {value = ..., unit = "...", source = "...", confidence = ...}
        if "value" not in value:
            raise ValueError(f"a {kind} table needs a 'value' key (got keys {sorted(value)})")
        unit = value.get("unit")
        number = value["value"]
        if isinstance(number, bool) or not isinstance(number, int | float):
            raise ValueError(f"'value' of a {kind} table must be a number (got {number!r})")
        if unit in (None, "", "1") and times is None:
            value = number
        else:
            if not isinstance(unit, str):
                raise ValueError(f"'unit' of a {kind} table must be a string (got {unit!r})")
            try:
                number = float(number)
            except OverflowError:
                raise ValueError(f"{_short(number)} is out of range (not finite)") from None
            value = f"{_finite(number, number, 'the table')!r} {unit or '1'}"
    if isinstance(value, bool):
        raise ValueError(f"expected a {kind} (number in {target} or a string with units)")
    if isinstance(value, int | float) and times is None:
        try:
            return _finite(float(value), value, target)
        except OverflowError:
            raise ValueError(f"{_short(value)} is out of range (not finite)") from None
    if isinstance(value, int | float):
        value = f"{value!r} 1"
    if not isinstance(value, str):
        raise ValueError(f"expected a {kind}: a number in {target} or a string like '1 {target}'")
    if times is None and len(value) <= MAX_QUANTITY_CHARS:
        try:
            number = float(value)  # a bare number given as a string
        except ValueError:
            pass
        else:
            return _finite(number, value, target)
    try:
        magnitude, unit_expr = split_quantity(value)
        if times is not None:
            check_unit_expression(times)
    except ValueError as exc:
        raise ValueError(f"cannot parse {_short(value)} as a {kind}: {exc}") from None
    import pint

    ureg = _registry()
    try:
        u = ureg.parse_expression(unit_expr)
        if times is not None:
            u = u * ureg.parse_expression(times)
    except (pint.errors.UndefinedUnitError, pint.errors.DefinitionSyntaxError) as exc:
        raise ValueError(f"cannot parse {_short(value)} as a {kind}: {exc}") from None
    except Exception as exc:  # pint raises assorted tokenizer errors on garbage input
        what = type(exc).__name__
        raise ValueError(f"cannot parse {_short(value)} as a {kind} ({what})") from None
    if not isinstance(u, ureg.Quantity):
        u = ureg.Quantity(float(u), "dimensionless")
    try:
        x = float((magnitude * u).to(target).magnitude)
    except pint.errors.DimensionalityError:
        raise ValueError(
            f"{value!r} has units of {u.dimensionality}, expected a {kind} convertible to {target}"
        ) from None
    except OverflowError:
        x = math.inf
    return _finite(x, value, target)


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


#: Per kind, a second unit that reads better in reports than the internal per-hour one:
#: ``(unit, factor)`` with value_in_unit = internal value * factor.
_DISPLAY_UNITS: dict[str, tuple[str, float]] = {
    "time": ("day", 1 / 24),
    "rate": ("1/day", 24.0),
    "diffusivity": ("mm^2/day", 24.0),
    "concentration_rate": ("nM/day", 24.0),
    "chemotaxis": ("mm^2/(day*nM)", 24.0),
    "velocity": ("mm/day", 24.0),
}


def format_quantity(value: float, kind: str) -> str:
    """A value in internal units with its unit, plus a per-day reading where that helps.

    Args:
        value: The value in the internal unit of ``kind``.
        kind: A key of :data:`INTERNAL_UNITS`.

    Returns:
        E.g. ``"0.00541667 mm^2/h (0.13 mm^2/day)"``, ``"12 1/mm"``, ``"0.5"`` (dimensionless).

    Raises:
        KeyError: If ``kind`` is not a known unit kind.
    """
    unit = INTERNAL_UNITS[kind]
    text = f"{value:g}" if unit == "dimensionless" else f"{value:g} {unit}"
    if kind in _DISPLAY_UNITS and value != 0:
        alt, factor = _DISPLAY_UNITS[kind]
        text += f" ({value * factor:.6g} {alt})"
    return text


def format_duration(seconds: float) -> str:
    """A wall-clock duration for progress lines: ``"8 s"``, ``"3 min 05 s"``, ``"2 h 04 min"``.

    Args:
        seconds: The duration (inf or nan: not known yet).

    Returns:
        The text; ``"?"`` for a duration that is not finite.
    """
    if not math.isfinite(seconds):
        return "?"
    s = max(0, round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"

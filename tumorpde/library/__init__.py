"""Parameter library: finding, reading and merging the shipped data files; their provenance.

Data files live in ``tumorpde/library/data/<kind>/<name>.toml`` (kinds: ``pathways``, ``organs``,
``drugs``). Every numeric leaf is either a plain value or a table
``{value = ..., unit = "...", source = "...", confidence = "S|M|D", note = "..."}``; the tables
are read by :func:`tumorpde.units.to_internal` when a case is validated, and their provenance is
listed by :func:`provenance` (``tumorpde params``). This module imports neither dolfinx nor pint.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "KINDS",
    "LibraryError",
    "available",
    "copy_tables",
    "data_dir",
    "deep_merge",
    "is_path",
    "is_quantity_table",
    "leaves",
    "load",
    "locate",
    "provenance",
    "read_toml",
]

KINDS = ("pathways", "organs", "drugs")


class LibraryError(ValueError):
    """A parameter file that is missing or cannot be read.

    ``source`` is the name or file concerned and ``problem`` the message without it, for
    callers that report it in their own error type (``tumorpde.library.drugs.DrugError``).
    """

    def __init__(self, message: str, *, source: str = "", problem: str = "") -> None:
        super().__init__(message)
        self.source = source
        self.problem = problem or message


def data_dir(kind: str) -> Path:
    """Directory of the shipped data files of ``kind``."""
    if kind not in KINDS:
        raise LibraryError(f"unknown library kind {kind!r}; known: {', '.join(KINDS)}")
    return Path(__file__).parent / "data" / kind


def available(kind: str) -> list[str]:
    """Names of the shipped entries of ``kind`` (file stems, sorted)."""
    d = data_dir(kind)
    return sorted(p.stem for p in d.glob("*.toml")) if d.is_dir() else []


def is_path(name_or_path: str | Path) -> bool:
    """True if ``name_or_path`` names a file (a path or ``*.toml``), not a shipped entry."""
    text = str(name_or_path)
    return isinstance(name_or_path, Path) or "/" in text or "\\" in text or text.endswith(".toml")


def locate(kind: str, name_or_path: str | Path, base_dir: str | Path | None = None) -> Path:
    """The file of a library entry: a shipped name (e.g. ``"EGFR"``) or a user TOML file.

    Args:
        kind: ``pathways``, ``organs`` or ``drugs``.
        name_or_path: A shipped name, or a path (``.toml``) to a user file.
        base_dir: Directory that a relative path is resolved against.

    Returns:
        The path of an existing file.

    Raises:
        LibraryError: If no such entry or file exists.
    """
    what = kind[:-1]
    text = str(name_or_path)
    if is_path(name_or_path):
        p = Path(name_or_path)
        if not p.is_absolute() and base_dir is not None:
            p = Path(base_dir) / p
    else:
        p = data_dir(kind) / f"{text}.toml"
        if not p.is_file():
            names = ", ".join(available(kind)) or "none"
            raise LibraryError(
                f"no {what} named {text!r} in the library; shipped: {names}",
                source=text,
                problem=f"unknown {what}; available: {', '.join(available(kind))}",
            )
    if not p.is_file():
        raise LibraryError(
            f"{what} file {p} does not exist", source=str(p), problem=f"{what} file does not exist"
        )
    return p


def read_toml(path: str | Path) -> dict[str, Any]:
    """Parse a TOML file.

    Raises:
        LibraryError: If the file is not valid TOML (``problem``: ``not valid TOML: ...``).
    """
    p = Path(path)
    try:
        return tomllib.loads(p.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        problem = f"not valid TOML: {exc}"
        raise LibraryError(f"{p}: {problem}", source=str(p), problem=problem) from None


def load(kind: str, name_or_path: str | Path, base_dir: str | Path | None = None) -> dict[str, Any]:
    """Read a library entry: a shipped name (e.g. ``"EGFR"``) or a path to a user TOML file.

    Args:
        kind: ``pathways``, ``organs`` or ``drugs``.
        name_or_path: A shipped name, or a path (``.toml``) to a user file.
        base_dir: Directory that a relative path is resolved against.

    Returns:
        The parsed tables (values still carry their units and sources).

    Raises:
        LibraryError: If no such entry exists or the file is not valid TOML.
    """
    return read_toml(locate(kind, name_or_path, base_dir))


def is_quantity_table(v: Any) -> bool:
    """True for a ``{value = ..., unit = ...}`` leaf (not a sub-table of parameters)."""
    return isinstance(v, Mapping) and "value" in v


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``over`` into a copy of ``base`` table by table; quantity tables count as leaves.

    A plain value in ``over`` replaces a ``{value, unit, source}`` table in ``base`` whole.
    """
    out: dict[str, Any] = {k: copy_tables(v) for k, v in base.items()}
    for k, v in over.items():
        if (
            isinstance(v, Mapping)
            and not is_quantity_table(v)
            and isinstance(out.get(k), Mapping)
            and not is_quantity_table(out[k])
        ):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy_tables(v)
    return out


def copy_tables(v: Any) -> Any:
    """Deep copy of nested tables (dicts and lists); leaves are shared."""
    if isinstance(v, Mapping):
        return {k: copy_tables(x) for k, x in v.items()}
    if isinstance(v, list):
        return [copy_tables(x) for x in v]
    return v


def leaves(table: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Walk nested tables: ``(dotted path, leaf)``, a quantity table counting as one leaf."""
    for k, v in table.items():
        path = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, Mapping) and not is_quantity_table(v):
            yield from leaves(v, path)
        else:
            yield path, v


def _row(v: Any) -> dict[str, Any] | None:
    """``{value, unit, confidence, source, note}`` of a leaf; None if it is not a number.

    A plain number gets empty source fields, so reports show what is undocumented.
    """
    if is_quantity_table(v):
        return {
            "value": v["value"],
            "unit": v.get("unit", ""),
            "confidence": v.get("confidence", ""),
            "source": v.get("source", ""),
            "note": v.get("note", ""),
        }
    if isinstance(v, int | float) and not isinstance(v, bool):
        return {"value": v, "unit": "", "confidence": "", "source": "", "note": ""}
    return None


def provenance(table: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Flatten a library entry into rows ``{parameter, value, unit, confidence, source, note}``.

    Plain values (no table) get empty source fields, so the report shows what is undocumented.
    """
    rows = []
    for path, v in leaves(table):
        row = _row(v)
        if row is not None:
            rows.append({"parameter": path, **row})
    return rows

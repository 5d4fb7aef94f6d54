"""Parameter library: the shipped pathway, organ-profile and drug data files, and their provenance.

Data files live in ``tumorpde/data/<kind>/<name>.toml`` (kinds: ``pathways``, ``organs``,
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
    "LibraryError",
    "available",
    "copy_tables",
    "data_dir",
    "deep_merge",
    "load",
    "provenance",
]

KINDS = ("pathways", "organs", "drugs")


class LibraryError(ValueError):
    """A parameter file that is missing or cannot be read."""


def data_dir(kind: str) -> Path:
    """Directory of the shipped data files of ``kind``."""
    if kind not in KINDS:
        raise LibraryError(f"unknown library kind {kind!r}; known: {', '.join(KINDS)}")
    return Path(__file__).parent / "data" / kind


def available(kind: str) -> list[str]:
    """Names of the shipped entries of ``kind`` (file stems, sorted)."""
    d = data_dir(kind)
    return sorted(p.stem for p in d.glob("*.toml")) if d.is_dir() else []


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
    text = str(name_or_path)
    if text.endswith(".toml") or "/" in text:
        p = Path(text)
        if not p.is_absolute() and base_dir is not None:
            p = Path(base_dir) / p
    else:
        p = data_dir(kind) / f"{text}.toml"
        if not p.is_file():
            names = ", ".join(available(kind)) or "none"
            raise LibraryError(f"no {kind[:-1]} named {text!r} in the library; shipped: {names}")
    if not p.is_file():
        raise LibraryError(f"{kind[:-1]} file {p} does not exist")
    try:
        return tomllib.loads(p.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise LibraryError(f"{p}: not valid TOML: {exc}") from None


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


def _walk(table: Mapping[str, Any], prefix: str) -> Iterator[tuple[str, Any]]:
    for k, v in table.items():
        path = f"{prefix}.{k}" if prefix else str(k)
        if is_quantity_table(v):
            yield path, v
        elif isinstance(v, Mapping):
            yield from _walk(v, path)
        else:
            yield path, v


def provenance(table: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Flatten a library entry into rows ``{parameter, value, unit, confidence, source, note}``.

    Plain values (no table) get empty source fields, so the report shows what is undocumented.
    """
    rows = []
    for path, v in _walk(table, ""):
        if is_quantity_table(v):
            rows.append(
                {
                    "parameter": path,
                    "value": v["value"],
                    "unit": v.get("unit", ""),
                    "confidence": v.get("confidence", ""),
                    "source": v.get("source", ""),
                    "note": v.get("note", ""),
                }
            )
        elif isinstance(v, int | float) and not isinstance(v, bool):
            rows.append(
                {
                    "parameter": path,
                    "value": v,
                    "unit": "",
                    "confidence": "",
                    "source": "",
                    "note": "",
                }
            )
    return rows

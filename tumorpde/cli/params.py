"""``tumorpde params [pathways|organs|drugs] [NAME] [--json]``: report the parameter library.

Without NAME the shipped entries are listed with their descriptions; with NAME (a shipped name
or a path to a TOML file) every numeric parameter is printed with its value, unit, confidence
(S checked in the source, M widely quoted, D derived or assumed) and source, as read by
:func:`tumorpde.library.provenance`. Imports neither dolfinx nor pint.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from tumorpde import library

__all__ = ["entry_report", "format_entry", "format_listing", "listing", "register"]

#: Columns of the parameter table, in order.
COLUMNS = ("parameter", "value", "unit", "confidence", "source")


def _value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def _first_sentence(text: str, width: int = 100) -> str:
    text = " ".join(str(text).split())
    cut = text.find(". ")
    if 0 < cut < width:
        return text[: cut + 1]
    return text if len(text) <= width else text[: width - 3].rstrip() + "..."


def _references(refs: Any) -> dict[str, str]:
    """References as ``{key: citation}`` (a list, as some files use, is numbered from 1)."""
    if isinstance(refs, Mapping):
        return {str(k): str(v) for k, v in refs.items()}
    if isinstance(refs, list):
        return {str(i): str(v) for i, v in enumerate(refs, 1)}
    return {} if refs is None else {"1": str(refs)}


def listing(kinds: Sequence[str]) -> dict[str, list[dict[str, str]]]:
    """Shipped entries of each kind with their descriptions.

    Args:
        kinds: Library kinds (``pathways``, ``organs``, ``drugs``).

    Returns:
        ``{kind: [{"name": ..., "description": ...}, ...]}``.
    """
    out: dict[str, list[dict[str, str]]] = {}
    for kind in kinds:
        rows = []
        for name in library.available(kind):
            try:
                desc = str(library.load(kind, name).get("description", ""))
            except library.LibraryError as exc:
                desc = f"(unreadable: {exc})"
            rows.append({"name": name, "description": desc})
        out[kind] = rows
    return out


def format_listing(entries: Mapping[str, list[dict[str, str]]]) -> str:
    """Plain-text listing: one block per kind, one line per entry.

    Args:
        entries: As returned by :func:`listing`.

    Returns:
        The text to print.
    """
    lines = []
    for kind, rows in entries.items():
        lines.append(f"{kind}:")
        if not rows:
            lines.append("  (none shipped)")
        width = max((len(r["name"]) for r in rows), default=0)
        for r in rows:
            lines.append(f"  {r['name']:<{width}}  {_first_sentence(r['description'])}")
    return "\n".join(lines)


def entry_report(kind: str, name: str) -> dict[str, Any]:
    """The provenance report of one entry (for ``--json`` and the table).

    Args:
        kind: Library kind.
        name: Shipped name or path to a TOML file.

    Returns:
        ``{"kind", "name", "description", "parameters": [rows], "references": {...}}``.

    Raises:
        LibraryError: If the entry does not exist or is not valid TOML.
    """
    table = library.load(kind, name)
    body = {k: v for k, v in table.items() if k not in ("name", "description", "references")}
    return {
        "kind": kind,
        "name": str(table.get("name", name)),
        "description": str(table.get("description", "")),
        "parameters": library.provenance(body),
        "references": _references(table.get("references")),
    }


def format_entry(report: Mapping[str, Any], notes: bool = False) -> str:
    """A fixed-width table ``parameter | value | unit | confidence | source``.

    Args:
        report: As returned by :func:`entry_report`.
        notes: Also print each parameter's note (derivation or caveat) under its row.

    Returns:
        The text to print.
    """
    rows = [{c: _value(r.get(c, "")) for c in COLUMNS} for r in report["parameters"]]
    header = dict(zip(COLUMNS, ("parameter", "value", "unit", "conf", "source"), strict=True))
    widths = {c: max([len(header[c])] + [len(r[c]) for r in rows]) for c in COLUMNS[:-1]}

    def line(r: Mapping[str, str]) -> str:
        cells = [f"{r[c]:<{widths[c]}}" for c in COLUMNS[:-1]] + [r["source"]]
        return " | ".join(cells).rstrip()

    out = [f"{report['kind'][:-1]} {report['name']}: {report['description']}", "", line(header)]
    out.append("-+-".join("-" * widths[c] for c in COLUMNS[:-1]) + "-+-" + "-" * 6)
    for r, raw in zip(rows, report["parameters"], strict=True):
        if not r["source"] and not r["confidence"]:
            r = {**r, "source": "(undocumented)"}
        out.append(line(r))
        if notes and raw.get("note"):
            out.append(f"    note: {raw['note']}")
    if report["references"]:
        out += ["", "references:"]
        out += [f"  {k}: {v}" for k, v in report["references"].items()]
    counts = {c: sum(1 for r in rows if r["confidence"] == c) for c in ("S", "M", "D")}
    out += [
        "",
        "confidence: "
        + ", ".join(f"{k} {v}" for k, v in counts.items())
        + " (S checked in the source, M widely quoted, D derived or assumed)",
    ]
    return "\n".join(out)


def _cmd_params(args: argparse.Namespace) -> int:
    kinds = [args.kind] if args.kind else list(library.KINDS)
    if args.name is None:
        entries = listing(kinds)
        print(json.dumps(entries, indent=2) if args.json else format_listing(entries))
        return 0
    if args.kind is None:
        print(
            "error: give the kind before NAME, e.g. tumorpde params pathways EGFR", file=sys.stderr
        )
        return 2
    try:
        report = entry_report(args.kind, args.name)
    except library.LibraryError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report, indent=2) if args.json else format_entry(report, notes=args.notes))
    return 0


def register(subparsers: Any) -> None:
    """Add the ``params`` command to the main parser's subparsers.

    Args:
        subparsers: The object returned by ``ArgumentParser.add_subparsers``.
    """
    p = subparsers.add_parser(
        "params",
        help="list the parameter library (pathways, organ profiles) with units and sources",
        description="Without NAME: list the shipped entries. With NAME (a shipped name or a "
        "TOML file): print parameter | value | unit | confidence | source.",
    )
    p.add_argument("kind", nargs="?", choices=library.KINDS, help="which library (default: all)")
    p.add_argument("name", nargs="?", help="entry name (e.g. EGFR, brain) or path to a TOML file")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--notes", action="store_true", help="also print each value's derivation note")
    p.set_defaults(func=_cmd_params)

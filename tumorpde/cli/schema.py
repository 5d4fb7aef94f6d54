"""``tumorpde schema``: the JSON Schema of case files, for editor completion and checking.

Prints (or writes with ``-o``) :func:`tumorpde.config.schema.case_json_schema`: every section
and key with its description, allowed values and, for quantities, the internal unit
(``x-unit``). Editors that read JSON Schema for TOML (Taplo / Even Better TOML) complete and
check case files with it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["register"]


def _cmd_schema(args: argparse.Namespace) -> int:
    from tumorpde.config.schema import case_json_schema
    from tumorpde.output.rundir import write_text_atomic

    text = json.dumps(case_json_schema(), indent=2) + "\n"
    if args.output is None:
        sys.stdout.write(text)
        return 0
    out: Path = args.output
    if out.is_dir():
        print(f"error: -o {out}: is a directory; give a file name", file=sys.stderr)
        return 2
    if out.exists() and not args.overwrite:
        print(f"error: -o {out} exists; pass --overwrite to replace it", file=sys.stderr)
        return 2
    try:
        write_text_atomic(out, text)
    except OSError as exc:
        print(f"error: -o {out}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(f"wrote {out}", file=sys.stderr)
    return 0


def register(subparsers: Any) -> None:
    """Add ``schema`` to the main parser's subparsers.

    Args:
        subparsers: The object returned by ``ArgumentParser.add_subparsers``.
    """
    s = subparsers.add_parser(
        "schema", help="JSON Schema of case files (editor completion and checking)"
    )
    s.add_argument("-o", "--output", type=Path, help="write to FILE instead of stdout")
    s.add_argument("--overwrite", action="store_true", help="replace an existing -o FILE")
    s.set_defaults(func=_cmd_schema)

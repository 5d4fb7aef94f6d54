"""Errors that list every problem of an input file as ``(field path, message)`` pairs."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["FieldProblems"]


class FieldProblems(ValueError):
    """Base of the input errors: ``source`` (the file) and ``problems`` (field, message).

    Subclasses set ``what`` (e.g. ``"case"``), which starts the message.
    """

    what = "input"

    def __init__(self, source: str, problems: Sequence[tuple[str, str]]) -> None:
        self.source = source
        self.problems = list(problems)
        lines = [f"invalid {self.what} {source}:"]
        lines += [f"  {loc}: {msg}" for loc, msg in self.problems]
        super().__init__("\n".join(lines))

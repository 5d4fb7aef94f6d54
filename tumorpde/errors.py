"""Input errors: every problem of an input file as a ``(field path, message)`` pair.

:class:`FieldProblems` is the base of the case and drug-file errors;
:func:`validation_problems` turns a pydantic :class:`~pydantic.ValidationError` into those
pairs, with messages that name the allowed keys and the offending value. This module imports
neither dolfinx nor pint.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Collection, Mapping, Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ValidationError

__all__ = ["FieldProblems", "validation_problems"]


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


# ------------------------------------------------------------------ walking the model types
def _unwrap(tp: Any) -> Any:
    while typing.get_origin(tp) is Annotated:
        tp = typing.get_args(tp)[0]
    return tp


def _models(tp: Any) -> list[type[BaseModel]]:
    """The pydantic models a (possibly optional or union) type can hold."""
    tp = _unwrap(tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return [tp]
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return [m for a in typing.get_args(tp) for m in _models(a)]
    return []


def _tag_values(model: type[BaseModel], tag: str) -> tuple[Any, ...]:
    f = model.model_fields.get(tag)
    if f is None or typing.get_origin(_unwrap(f.annotation)) is not Literal:
        return ()
    return typing.get_args(_unwrap(f.annotation))


def _tagged(models: list[type[BaseModel]], key: Any) -> type[BaseModel] | None:
    """The member of a tagged union whose ``Literal`` tag field admits ``key``."""
    for m in models:
        if any(key in _tag_values(m, name) for name in m.model_fields):
            return m
    return None


def _child(tp: Any, key: Any) -> tuple[Any, bool]:
    """The type found under ``key`` in ``tp``, and whether ``key`` was a union tag."""
    tp = _unwrap(tp)
    origin = typing.get_origin(tp)
    if origin is dict:
        return typing.get_args(tp)[1], False
    if origin in (list, tuple):
        return typing.get_args(tp)[0], False
    models = _models(tp)
    if len(models) > 1:  # tagged union: pydantic puts the tag into the location
        m = _tagged(models, key)
        if m is not None:
            return m, True
    for m in models:
        f = m.model_fields.get(str(key))
        if f is not None:
            return f.annotation, False
    return None, False


def _walk(root: type[BaseModel], loc: Sequence[Any]) -> tuple[Any, list[bool]]:
    """The type at ``loc`` below ``root`` (None if unknown) and which entries are union tags."""
    tp: Any = root
    tags: list[bool] = []
    for key in loc:
        if tp is None:
            tags.append(False)
            continue
        tp, is_tag = _child(tp, key)
        tags.append(is_tag)
    return tp, tags


def _model(tp: Any) -> type[BaseModel] | None:
    models = _models(tp)
    return models[0] if len(models) == 1 else None


def _or(values: Sequence[Any]) -> str:
    text = [str(v) for v in values]
    return ", ".join(text[:-1]) + " or " + text[-1] if len(text) > 1 else "".join(text)


# ---------------------------------------------------------------------------- the formatter
#: A model-level check that names its field: ``"field.path (detail): message"``.
_FIELD_PREFIX = re.compile(r"^([A-Za-z_][\w.]*)( \([^)]*\))?: (.+)$", re.S)


def _given(value: Any) -> Any:
    if isinstance(value, Mapping) and "value" in value:  # a parameter table: value + unit
        return f"{value['value']} {value.get('unit', '')}".strip()
    return value


def _quotes(msg: str, value: Any) -> bool:
    """Whether ``msg`` already shows the offending ``value`` (or ``value`` is a whole table).

    Either way no ``(got ...)`` is added.
    """
    if isinstance(value, Mapping):
        return True  # a model-level check: a whole table is no help, its message says what
    if isinstance(value, list | tuple):
        return False
    text = repr(value)
    return text in msg or str(value) in msg or (len(text) > 40 and text[:30] in msg)


def validation_problems(
    exc: ValidationError,
    root: type[BaseModel],
    *,
    hide_tags: bool = False,
    input_types: Collection[str] | None = None,
) -> list[tuple[str, str]]:
    """Turn a pydantic validation error into ``(field path, message)`` pairs.

    Paths are dotted (``tumor.motility``; ``(top level)`` for the root). A ``ValueError`` of a
    model-level check whose message starts with one of that model's fields
    (``"field.path: message"`` or ``"field.path (detail): message"``) is reported at that
    field. Unknown keys list the allowed keys, missing fields say so, and a value that fails
    is quoted as ``(got ...)``.

    Args:
        exc: The validation error.
        root: The model that was validated.
        hide_tags: Drop the tag that pydantic inserts after a tagged-union field
            (``pk.two_compartment.clearance`` -> ``pk.clearance``).
        input_types: Error types whose message gets ``(got ...)``; None: every type except
            model/dict type errors.

    Returns:
        One pair per error, in pydantic's order.
    """
    problems = []
    for err in exc.errors(include_url=False):
        etype = err["type"]
        msg = err["msg"].removeprefix("Value error, ")
        lines = msg.split("\n")
        if etype == "value_error" and len(lines) > 1 and all(map(_FIELD_PREFIX.match, lines)):
            # a model-level check that found several problems: one "field: message" per line
            for line in lines:
                problems.append(_problem(root, err, line, hide_tags, input_types))
        else:
            problems.append(_problem(root, err, msg, hide_tags, input_types))
    return problems


def _problem(
    root: type[BaseModel],
    err: Any,
    msg: str,
    hide_tags: bool,
    input_types: Collection[str] | None,
) -> tuple[str, str]:
    """One ``(field path, message)`` pair of a pydantic error (see :func:`validation_problems`)."""
    loc = tuple(err["loc"])
    etype = err["type"]
    here, tags = _walk(root, loc)
    m = _FIELD_PREFIX.match(msg) if etype == "value_error" else None
    owner = _model(here)
    quoted = etype == "value_error" and "input" in err and _quotes(msg, err["input"])
    if m and owner is not None and m.group(1).split(".")[0] in owner.model_fields:
        quoted = True  # a model-level check: its message quotes what matters
        # a model-level check that names its field: report it there
        extra = tuple(m.group(1).split("."))
        loc, tags = loc + extra, tags + [False] * len(extra)
        detail = (m.group(2) or "").strip(" ()")
        msg = (f"{detail}: " if detail else "") + m.group(3)
    path = ".".join(str(p) for p, tag in zip(loc, tags, strict=True) if not (hide_tags and tag))
    path = path or "(top level)"
    if etype == "extra_forbidden":
        parent = _model(_walk(root, loc[:-1])[0])
        msg = "unknown key" + (
            f"; allowed keys here: {', '.join(parent.model_fields)}" if parent else ""
        )
    elif etype == "missing":
        msg = "required field is missing"
    elif etype == "union_tag_not_found":
        tag = str((err.get("ctx") or {}).get("discriminator", "")).strip("'")
        values = [v for mdl in _models(here) for v in _tag_values(mdl, tag)]
        msg = f"missing '{tag}'" + (f" ({_or(values)})" if values else "")
    elif (
        "input" in err
        and err["loc"]
        and etype not in ("model_type", "dict_type")
        and (input_types is None or etype in input_types)
        and not quoted
    ):
        msg = f"{msg} (got {_given(err['input'])!r})"
    return path, msg

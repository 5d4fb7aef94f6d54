"""One C module for many forms: batched JIT compilation of the product's UFL forms.

DOLFINx compiles every ``fem.form`` into its own C module: one FFCx code generation, one C
compiler run and one shared-library load per form. A simulation's set-up compiles dozens of
small forms (the Newton solver's blocks, the quantities of interest), and with a cold cache the
fixed cost of each compiler run dominated (default box case: 38 modules, 7.5 s). Here the forms
that a set-up step needs are compiled together, with FFCx's own multi-form entry point, into one
module (one compiler run); inside :func:`batch_compiled`, DOLFINx's ``fem.form`` (and everything
built on it, such as ``NonlinearProblem``) finds each form's compiled object there instead of
compiling it again. The batched module is cached like any other, under a name derived from all
its forms' signatures, so a warm run compiles nothing.

Parallel runs compile on rank 0 while the others wait and then load the cached module
(DOLFINx's ``mpi_jit_decorator``), as ``fem.form`` does.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import ufl

__all__ = ["STATS", "batch_compiled", "compile_forms"]

#: Batched compilations in this process: ``calls``, ``forms`` (distinct forms compiled together)
#: and ``seconds`` (on this rank, code generation + C compiler + load, or the cache lookup).
STATS: dict[str, float] = {"calls": 0.0, "forms": 0.0, "seconds": 0.0}


def _unique_forms(forms: Iterable[Any]) -> dict[str, ufl.Form]:
    """The distinct non-empty UFL forms of ``forms`` by signature (others are skipped)."""
    out: dict[str, ufl.Form] = {}
    for f in forms:
        if isinstance(f, ufl.Form) and not f.empty():
            out.setdefault(f.signature(), f)
    return out


def _compile(forms: list[ufl.Form], ffcx_options: dict, jit_options: dict) -> Any:
    """FFCx's multi-form JIT: ``(compiled objects, module, code)`` (one module)."""
    import ffcx.codegeneration.jit

    return ffcx.codegeneration.jit.compile_forms(forms, options=ffcx_options, **jit_options)


def _compile_batch(comm: Any, forms: list[ufl.Form], ffcx_options: dict, jit_options: dict) -> Any:
    """Compile ``forms`` into one module on rank 0, then load it on every rank."""
    from dolfinx.jit import mpi_jit_decorator

    return mpi_jit_decorator(_compile)(comm, forms, ffcx_options, jit_options)


@contextlib.contextmanager
def batch_compiled(forms: Iterable[Any], comm: Any, dtype: Any = None) -> Iterator[dict[str, Any]]:
    """Compile ``forms`` into one C module; ``fem.form`` calls inside the block reuse it.

    Forms that are not in the batch, or that ask for other compiler options than the default
    ones of ``dtype``, compile as usual. ``None``, empty forms and ``ufl.ZeroBaseForm`` entries
    are skipped (DOLFINx creates those without compiling).

    Args:
        forms: UFL forms (duplicates by signature are compiled once).
        comm: The communicator of the forms' mesh (compilation on its rank 0).
        dtype: Scalar type of the forms (default: DOLFINx's default scalar type).

    Yields:
        ``{signature: (compiled form, module, code)}`` of the batch.
    """
    import ffcx
    from dolfinx import default_scalar_type, jit

    unique = _unique_forms(forms)
    if not unique:
        yield {}
        return
    ffcx_options = ffcx.get_options({"scalar_type": dtype or default_scalar_type})
    batch_jit = jit.get_options()
    t0 = time.perf_counter()
    compiled, module, code = _compile_batch(comm, list(unique.values()), ffcx_options, batch_jit)
    STATS["calls"] += 1
    STATS["forms"] += len(unique)
    STATS["seconds"] += time.perf_counter() - t0
    table = {sig: (obj, module, code) for sig, obj in zip(unique, compiled, strict=True)}
    original = jit.ffcx_jit

    def lookup(
        comm: Any,
        obj: Any,
        form_compiler_options: dict | None = None,
        jit_options: dict | None = None,
    ) -> Any:
        # DOLFINx's fem.form calls jit.ffcx_jit(comm, form, ...): a batch member with the
        # batch's options is returned from the batch, anything else compiles as usual
        if isinstance(obj, ufl.Form):
            hit = table.get(obj.signature())
            if (
                hit is not None
                and ffcx.get_options(form_compiler_options) == ffcx_options
                and jit.get_options(jit_options) == batch_jit
            ):
                return hit
        return original(
            comm, obj, form_compiler_options=form_compiler_options, jit_options=jit_options
        )

    jit.ffcx_jit = lookup
    try:
        yield table
    finally:
        jit.ffcx_jit = original


def compile_forms(forms: Sequence[Any], comm: Any) -> list[Any]:
    """``fem.form`` of each entry, the UFL forms compiled together into one module.

    Args:
        forms: UFL forms; ``None`` entries stay ``None``.
        comm: The communicator of the forms' mesh.

    Returns:
        One ``dolfinx.fem.Form`` (or ``None``) per entry, in order.
    """
    from dolfinx import fem

    with batch_compiled(forms, comm):
        return [None if f is None else fem.form(f) for f in forms]

"""output layer: what a run writes and reports.

``qoi`` (MPI-reduced integrals declared by the model's components), ``fields`` (field files
and gathers), ``rundir`` (run-directory layout, manifest, atomic JSON) and ``viz`` (PyVista
pictures; a lazy import). Import the submodules explicitly: ``rundir`` needs no DOLFINx.
"""

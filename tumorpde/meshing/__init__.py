"""Meshing layer: build, import, read and inspect tagged tetrahedral meshes, without DOLFINx.

Modules: :mod:`~tumorpde.meshing.msh` (the ``.msh`` reader), :mod:`~tumorpde.meshing.info`
(statistics and quality), :mod:`~tumorpde.meshing.labels` (label image -> mesh pipeline, mesh
import) and :mod:`~tumorpde.meshing.atlas` (recipes of the shipped organ meshes). Importing the
package or any of its modules is cheap: gmsh, scipy, scikit-image, meshio and the other heavy
dependencies are imported by the functions that need them. Depends only on
:mod:`tumorpde.units`, :mod:`tumorpde.errors` and :mod:`tumorpde._version`.
"""

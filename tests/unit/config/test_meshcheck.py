"""The point-in-mesh test of ``tumorpde validate`` (numpy only)."""

import numpy as np

from tumorpde.config.meshcheck import point_in_mesh

# two tetrahedra of the unit cube's corner region sharing the face (1,0,0)-(0,1,0)-(0,0,1)
POINTS = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1]], dtype=float)
TETS = np.array([[0, 1, 2, 3], [1, 2, 3, 4]])


def test_inside_on_the_boundary_and_outside():
    assert point_in_mesh(POINTS, TETS, np.array([0.1, 0.1, 0.1]))
    assert point_in_mesh(POINTS, TETS, np.array([0.6, 0.6, 0.6]))  # in the second tet
    assert point_in_mesh(POINTS, TETS, np.array([0.0, 0.0, 0.0]))  # a vertex
    assert not point_in_mesh(POINTS, TETS, np.array([0.9, 0.9, 0.05]))  # in the box, no tet
    assert not point_in_mesh(POINTS, TETS, np.array([5.0, 0.0, 0.0]))

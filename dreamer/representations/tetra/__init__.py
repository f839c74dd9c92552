"""Tetrahedral-grid geometry for the DMTet mesh representation: the grid, marching tetrahedra and
SDF initialisation. Pure functions of tensors; the parameters live in `representations.mesh`."""

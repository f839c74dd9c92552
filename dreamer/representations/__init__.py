"""3D representations: parameters, `render(camera)`, `parameter_groups()`, `to_mesh()`.

Owns: NeRF (and later Gaussians, meshes). Does not own: losses (guidance) or rendering math
shared between representations (dreamer.render).
"""

"""Triangle-mesh rasterization: pure PyTorch on CPU, with autograd gradients.

Owns: camera-space projection and pixel-centre rays (project.py), the two-pass rasterizer — a
non-differentiable nearest-triangle visibility pass, then differentiable perspective-correct
barycentrics and depth (raster.py) — barycentric interpolation of vertex attributes
(interpolate.py) and analytic antialiasing of the outline against the background, which gives
vertex positions a silhouette gradient (antialias.py). Does not own: mesh parameters, DMTet,
textures or shading (representations).

Pixel centres and image orientation match `dreamer.render.rays.camera_rays` (row 0 at the top,
centres at +0.5), so a mesh render lines up with a volume render of the same camera pixel for
pixel. Gradients reach vertex positions through the barycentrics and depth inside triangles;
which triangle covers a pixel is piecewise constant, so the outline moves only through
`antialias` (edges of the mesh over itself get no such gradient).
"""

from dreamer.render.mesh.antialias import antialias
from dreamer.render.mesh.interpolate import interpolate
from dreamer.render.mesh.raster import Fragments, rasterize

__all__ = ["Fragments", "antialias", "interpolate", "rasterize"]

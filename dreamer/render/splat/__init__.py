"""Gaussian-splat rasterization: pure PyTorch on CPU, with autograd gradients.

Owns: projecting 3D Gaussians into cameras (projection.py), binning them into screen tiles
(binning.py), compositing the tiles (raster.py) and a dense all-pairs reference (dense.py) that
the tests and benchmark compare against. Does not own: Gaussian parameters, their activations,
spherical harmonics or densification (representations). Numbers follow gsplat's conventions
(eps2d low-pass, tight per-axis screen boxes, alpha ≤ 0.999, skip below 1/255, stop at T ≤ 1e-4),
so `gsplat.rasterization` can stand in on CUDA.
"""

from dreamer.render.splat.raster import SplatRender, rasterize_gaussians

__all__ = ["SplatRender", "rasterize_gaussians"]

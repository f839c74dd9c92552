"""Gaussian-splat rasterization: pure PyTorch on CPU, with autograd gradients.

Owns: projecting 3D Gaussians into cameras (projection.py), binning them into screen tiles
(binning.py), compositing the tiles front to back with a segmented transmittance scan and early
stop (composite.py), the public entry point (raster.py), a dense all-pairs reference (dense.py)
that the tests and the benchmark compare against, spherical-harmonics colours (sh.py) and the
`splats.ply` file layout shared by the representation and the exporters (ply.py).
Does not own: Gaussian parameters, their activations or densification (representations).

Numbers follow gsplat's conventions (OpenCV camera frame, pixel centres at +0.5, eps2d low-pass,
tight per-axis screen boxes, alpha ≤ 0.999, skip below 1/255, stop before T ≤ 1e-4), so
`gsplat.rasterization` can stand in on CUDA.
"""

from dreamer.render.splat.raster import SplatRender, rasterize_gaussians

__all__ = ["SplatRender", "rasterize_gaussians"]

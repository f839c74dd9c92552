"""`splats.ply`: Gaussians in the layout of the 3D Gaussian splatting reference code.

The format (`SplatArrays`, reading and writing) is defined in `dreamer.render.splat.ply`, below
both the Gaussians representation (which reads it to initialise from a file) and the exporters;
this is the exporters' name for it.
"""

from __future__ import annotations

from dreamer.render.splat.ply import SplatArrays, property_names, read_splats_ply, write_splats_ply

__all__ = ["SplatArrays", "property_names", "read_splats_ply", "write_splats_ply"]

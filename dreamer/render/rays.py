"""Ray generation for a batch of cameras (pixel centres).

The definition lives in `dreamer.cameras` (the bottom layer) so that the shape library's ray
tracer can use it without importing the renderers; this is the renderers' name for it.
"""

from __future__ import annotations

from dreamer.cameras import camera_rays

__all__ = ["camera_rays"]

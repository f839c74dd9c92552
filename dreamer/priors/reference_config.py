"""`ReferencePriorConfig`: the settings of the exact shape-library priors, and their backgrounds.

`reference` takes it as it is; `reference-video` subclasses it (`ReferenceVideoPriorConfig`). The
background is a named colour, an RGB triple in [0, 1], or `random`: a uniformly random solid colour
per image, which the image prior's denoiser marginalises (see `exact_mixture.exact_denoise`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from dreamer.errors import UserError
from dreamer.priors import reference_cache, schedule

__all__ = ["ReferencePriorConfig", "RANDOM_BACKGROUND"]

_BACKGROUNDS = {"white": (1.0, 1.0, 1.0), "black": (0.0, 0.0, 0.0), "grey": (0.5, 0.5, 0.5), "gray": (0.5, 0.5, 0.5)}
RANDOM_BACKGROUND = "random"  # a uniformly random solid colour per image, marginalised by the denoiser


@dataclass
class ReferencePriorConfig:
    """Settings of the `reference` prior (the exact denoiser of shape-library renders)."""

    error_prefix: ClassVar[str] = "reference prior"  # how config errors name the prior (subclasses rename it)

    image_size: int = 64  # side of the square images the prior denoises, in pixels
    num_views: int = 96  # reference renders per prompt, on a fixed golden-spiral orbit
    elevation: tuple[float, float] = (-10.0, 50.0)  # elevation band of the reference orbit, degrees
    distance: float = 2.8  # reference camera distance (midpoint of OrbitConfig.distance)
    fovy: float = 42.5  # reference vertical field of view, degrees (midpoint of OrbitConfig.fovy)
    background: str | tuple[float, float, float] = "white"  # white/black/grey, RGB in [0, 1], or "random" (see `exact_mixture`)
    supersample: int = 1  # per-axis supersampling of the reference renders (antialiasing; cost × ss²)
    camera_aware: bool = True  # weight references by how close their camera is to the query camera
    camera_temperature: float = 15.0  # τ, degrees: reference weight × exp(−angle² / (2τ²))
    exact_views: bool = False  # render each query's own camera (the τ → 0 limit over every camera; see `reference`)
    uncond_colours: tuple[str, ...] = ("red", "green", "blue")  # colours of the generic (unconditional) set
    uncond_views: int = 4  # views per (shape, colour) in the generic set
    beta_schedule: str = "linear"  # "linear" (DDPM, 1e-4..0.02) or "scaled_linear" (SD, 0.00085..0.012)
    cache_dir: str | None = None  # cache folder; None: $DREAMER_CACHE/reference or ~/.cache/dreamer/reference

    def __post_init__(self) -> None:
        if isinstance(self.elevation, list):
            self.elevation = tuple(self.elevation)
        if isinstance(self.background, list):
            self.background = tuple(self.background)
        if isinstance(self.uncond_colours, str):
            self.uncond_colours = (self.uncond_colours,)
        elif isinstance(self.uncond_colours, list):
            self.uncond_colours = tuple(self.uncond_colours)
        if int(self.image_size) != self.image_size or self.image_size < 4:
            raise UserError(f"{self.error_prefix}: image_size must be an integer >= 4, got {self.image_size!r}")
        if int(self.num_views) != self.num_views or self.num_views < 1:
            raise UserError(f"{self.error_prefix}: num_views must be a positive integer, got {self.num_views!r}")
        if int(self.supersample) != self.supersample or self.supersample < 1:
            raise UserError(f"{self.error_prefix}: supersample must be a positive integer, got {self.supersample!r}")
        if int(self.uncond_views) != self.uncond_views or self.uncond_views < 1:
            raise UserError(f"{self.error_prefix}: uncond_views must be a positive integer, got {self.uncond_views!r}")
        if not self.uncond_colours:
            raise UserError(f"{self.error_prefix}: uncond_colours must name at least one colour")
        if self.exact_views and not self.camera_aware:
            raise UserError(f"{self.error_prefix}: exact_views needs camera_aware (a prior that ignores the camera "
                            "cannot render the query's own view)")
        if not (self.camera_temperature > 0):
            raise UserError(f"{self.error_prefix}: camera_temperature must be > 0 degrees, got {self.camera_temperature!r}")
        if len(self.elevation) != 2 or not -90 <= self.elevation[0] <= self.elevation[1] <= 90:
            raise UserError(f"{self.error_prefix}: elevation must be (low, high) within [-90, 90], got {self.elevation!r}")
        if self.beta_schedule not in schedule.BETA_SCHEDULES:
            raise UserError(f"{self.error_prefix}: beta_schedule must be 'linear' or 'scaled_linear', got {self.beta_schedule!r}")
        self.background_rgb()  # validates

    @property
    def random_background(self) -> bool:
        """True when each image's background is a random solid colour (references keep their alpha)."""
        return isinstance(self.background, str) and self.background.lower() == RANDOM_BACKGROUND

    def background_rgb(self) -> tuple[float, float, float]:
        """The colour references are rendered over (black for `random`: the premultiplied colour)."""
        bg = self.background
        if self.random_background:
            return _BACKGROUNDS["black"]
        if isinstance(bg, str):
            if bg.lower() not in _BACKGROUNDS:
                raise UserError(f"{self.error_prefix}: unknown background {bg!r}; use one of "
                                f"{sorted(_BACKGROUNDS) + [RANDOM_BACKGROUND]} or an RGB triple in [0, 1]")
            return _BACKGROUNDS[bg.lower()]
        try:
            rgb = tuple(float(c) for c in bg)
        except (TypeError, ValueError):
            rgb = ()
        if len(rgb) != 3 or not all(0.0 <= c <= 1.0 for c in rgb):
            raise UserError(f"{self.error_prefix}: background must be a name or an RGB triple in [0, 1], got {bg!r}")
        return rgb  # type: ignore[return-value]

    def resolved_cache_dir(self) -> Path:
        return Path(self.cache_dir).expanduser() if self.cache_dir else reference_cache.default_cache_dir()

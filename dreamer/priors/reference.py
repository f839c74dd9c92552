"""The `reference` prior: the exact denoiser of a finite set of shape-library renders.

For a prompt naming a library object ("a red chair") the prior's image distribution is the
uniform mixture of its reference renders y_1..y_N (pixels in [−1, 1], `num_views` cameras on a
fixed golden-spiral orbit). Under x_t = α_t·x0 + σ_t·ε the posterior mean is closed-form:

    x̂0(x_t) = Σ_i softmax_i(−‖x_t − α_t y_i‖² / (2σ_t²) + log w_i) · y_i,   ε̂ = (x_t − α_t x̂0) / σ_t

with w_i = 1, or, when a camera is passed and `camera_aware` is on,
w_i = exp(−angle(cam, cam_i)² / (2τ²)) — the angle between the two camera directions seen from
the origin — i.e. the exact denoiser of the camera-conditional mixture. Logits are computed in
float64 with ‖a‖² − 2a·b + ‖b‖² (‖x_t‖² cancels in the softmax) and a logsumexp-stable softmax.

An embedding is an index into the prior's registered reference sets ([B] or [B, 1] long): one
set per encoded prompt, plus the generic "prior over everything" set used as the unconditional
branch — every library shape in `uncond_colours`, `uncond_views` views per colour (16 shapes ×
3 colours × 4 views = 192 images with the defaults). A negative prompt that names a library
object uses that object's set as the unconditional branch instead (the generic set is then the
`empty` embedding used by ISM's inversion). Reference sets are cached on disk (see
`reference_cache`). The prior is camera-aware instead of view-prompted: `views` stays empty.

With `background: random` the references keep their alpha, and each image's background is a solid
colour drawn uniformly from the RGB cube (what `trainer.random_background` composites renders
over). The denoiser marginalises that colour exactly: given reference i, y_i(β) = F_i + u_i ⊗ β is
linear in the background β ∈ [−1, 1]³ (F: the premultiplied colour, u = 1 − alpha per pixel), so
with β's prior taken as N(0, ⅓) per channel (the uniform's variance) the evidence and E[β | x_t, i]
are closed-form (`exact_denoise`). A white object is then as visible to the prior as any other.

With `exact_views` (and a camera), a library prompt's reference is rendered at each query camera
itself: the limit τ → 0 of the camera weighting over an orbit holding every camera, where the
camera-conditional distribution of a library object is one image. The fixed orbit is camera-true
only as far as τ and its spacing allow: at the pixel term's scale, neighbouring views a few degrees
off still win whenever they look more like the current render, and SDS then drifts towards the
azimuth average (a pyramid distilled as a cone at τ = 8°). The orbit sets still serve calls
without a camera and the generic (unconditional) set.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ClassVar

import torch
import torch.nn.functional as F

from dreamer.cameras import Camera, from_spherical
from dreamer.errors import UserError
from dreamer.priors import reference_cache, schedule
from dreamer.priors.base import Prior, PromptEmbedding
from dreamer.priors.pixel_space import decode_pixels, encode_pixels
from dreamer.priors.schedule import make_alphas_cumprod
from dreamer.shapes.fingerprint import cache_key, shape_library_fingerprint

__all__ = [
    "ReferencePriorConfig",
    "ReferencePrior",
    "ReferenceSet",
    "camera_directions",
    "camera_log_weights",
    "exact_denoise",
    "set_index_embedding",
    "reference_orbit",
    "render_references",
    "render_reference_layers",
    "pixel_references",
]

_BACKGROUNDS = {"white": (1.0, 1.0, 1.0), "black": (0.0, 0.0, 0.0), "grey": (0.5, 0.5, 0.5), "gray": (0.5, 0.5, 0.5)}
RANDOM_BACKGROUND = "random"  # a uniformly random solid colour per image, marginalised by the denoiser
_RANDOM_BACKGROUND_VAR = 1.0 / 3.0  # variance of a uniform colour channel in [−1, 1] units
_GOLDEN_ANGLE = 180.0 * (3.0 - math.sqrt(5.0))  # degrees, ≈ 137.508
_RENDER_CHUNK = 32  # cameras per render_spec call (bounds memory)


@dataclass
class ReferencePriorConfig:
    """Settings of the `reference` prior (the exact denoiser of shape-library renders)."""

    error_prefix: ClassVar[str] = "reference prior"  # how config errors name the prior (subclasses rename it)

    image_size: int = 64  # side of the square images the prior denoises, in pixels
    num_views: int = 96  # reference renders per prompt, on a fixed golden-spiral orbit
    elevation: tuple[float, float] = (-10.0, 50.0)  # elevation band of the reference orbit, degrees
    distance: float = 2.8  # reference camera distance (midpoint of OrbitConfig.distance)
    fovy: float = 42.5  # reference vertical field of view, degrees (midpoint of OrbitConfig.fovy)
    background: str | tuple[float, float, float] = "white"  # white/black/grey, RGB in [0, 1], or "random" (see the module doc)
    supersample: int = 1  # per-axis supersampling of the reference renders (antialiasing; cost × ss²)
    camera_aware: bool = True  # weight references by how close their camera is to the query camera
    camera_temperature: float = 15.0  # τ, degrees: reference weight × exp(−angle² / (2τ²))
    exact_views: bool = False  # render each query's own camera (the τ → 0 limit over every camera; see the module doc)
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


@dataclass
class ReferenceSet:
    """One registered set of reference images."""

    label: str  # e.g. "a red chair", "generic", "custom"
    images: torch.Tensor  # [N, 3, S, S] RGB in [0, 1] (CPU, float32); premultiplied when `alpha` is set
    directions: torch.Tensor | None  # [N, 3] unit camera directions from the origin; None = no camera weighting
    path: Path | None = None  # cache file it was loaded from / written to
    alpha: torch.Tensor | None = None  # [N, 1, S, S] coverage (random-background sets); None: opaque images
    spec: object | None = None  # the library object it shows (for `exact_views`); None: generic or custom


# ----------------------------------------------------------------------------------------------
# Pure functions


def reference_orbit(num_views: int, config: ReferencePriorConfig) -> Camera:
    """`num_views` cameras on a golden spiral over the elevation band, every azimuth, deterministic.

    Elevations are spaced uniformly in sin(elevation) (equal solid angle per camera); azimuths
    advance by the golden angle from 0 (the front). Distance and fovy are fixed.
    """
    i = torch.arange(num_views, dtype=torch.float64)
    lo, hi = (math.sin(math.radians(e)) for e in config.elevation)
    elevation = torch.rad2deg(torch.asin(lo + (hi - lo) * (i + 0.5) / num_views))
    azimuth = (i * _GOLDEN_ANGLE) % 360.0
    size = config.image_size
    return from_spherical(azimuth.float(), elevation.float(), config.distance, config.fovy, size, size)


def camera_directions(camera: Camera) -> torch.Tensor:
    """[B, 3] unit vectors from the origin to the cameras (what reference sets store per image)."""
    return F.normalize(camera.position.float(), dim=-1)


def camera_log_weights(query_dirs: torch.Tensor, ref_dirs: torch.Tensor, temperature_deg: float) -> torch.Tensor:
    """log w = −angle(query, ref)² / (2τ²), angles in degrees: [B, 3] × [N, 3] unit vectors -> [B, N] float64."""
    cos = (query_dirs.double() @ ref_dirs.double().T).clamp(-1.0, 1.0)
    return -torch.rad2deg(torch.acos(cos)) ** 2 / (2.0 * float(temperature_deg) ** 2)


def set_index_embedding(prompt: str, negative_prompt: str, cond: int, generic: int,
                        index_of: Callable[[str], int], device: torch.device) -> PromptEmbedding:
    """The embedding of a prior whose embeddings are reference-set indices ([1, 1] long each).

    The unconditional branch is `index_of(negative_prompt)` when the negative prompt is a library
    prompt, else the generic set; when it is not the generic set, `empty` is (ISM's inversion).
    """
    uncond = generic
    if negative_prompt and negative_prompt.strip():
        try:
            uncond = index_of(negative_prompt)
        except UserError:  # not a library prompt ("blurry, low quality", "static, motionless"): the generic set
            uncond = generic

    def idx(i: int) -> torch.Tensor:
        return torch.tensor([[i]], dtype=torch.long, device=device)

    return PromptEmbedding(prompt=prompt, negative_prompt=negative_prompt, cond=idx(cond), uncond=idx(uncond),
                           views={}, empty=None if uncond == generic else idx(generic))


def exact_denoise(x: torch.Tensor, alpha: torch.Tensor, sigma: torch.Tensor, refs: torch.Tensor,
                  log_weights: torch.Tensor | None = None, refs_sqnorm: torch.Tensor | None = None,
                  uncovered: torch.Tensor | None = None,
                  background_var: float = _RANDOM_BACKGROUND_VAR) -> torch.Tensor:
    """Posterior mean of a Gaussian-noised uniform (or weighted) mixture of points.

    x [B, D] noisy inputs, alpha / sigma [B], refs [N, D], log_weights [B, N] or None,
    refs_sqnorm [N] = ‖refs‖² (optional, precomputed). Returns x̂0 [B, D] in float64.

    With `uncovered` [N, P] (1 − alpha per pixel, D = C·P, channel-major), reference i is the
    family y_i(β) = refs_i + uncovered_i ⊗ β over a solid background β ∈ R^C with prior
    N(0, background_var) per channel, integrated out exactly (see the module doc).
    """
    x = x.double()
    refs = refs.double()
    alpha, sigma = alpha.double(), sigma.double()
    if refs_sqnorm is None:
        refs_sqnorm = (refs * refs).sum(dim=-1)
    a, s2 = alpha[:, None], sigma[:, None] ** 2
    # −‖x − a y‖²/(2σ²) = (a x·y − a²‖y‖²/2)/σ² − ‖x‖²/(2σ²); the last term is constant over i.
    logits = (a * (x @ refs.T) - 0.5 * a ** 2 * refs_sqnorm.double()[None]) / s2
    if log_weights is not None:
        logits = logits + log_weights.double()
    if uncovered is None:
        weights = torch.softmax(logits, dim=-1)  # [B, N], max-subtracted internally
        return weights @ refs
    u = uncovered.double()  # [N, P]
    n, pixels = u.shape
    channels = refs.shape[1] // pixels
    x_c, refs_c = x.reshape(len(x), channels, pixels), refs.reshape(n, channels, pixels)
    # Per channel c, with r = x − a·refs_i: precision Λ = a²‖u‖²/σ² + 1/v, h = a·(u·r_c)/σ²;
    # the evidence gains Σ_c h²/(2Λ) − (C/2)·log(Λ·v) and E[β_c | x, i] = h/Λ.
    u_dot_r = torch.einsum("bcp,np->bcn", x_c, u) - a[:, :, None] * torch.einsum("ncp,np->cn", refs_c, u)[None]
    precision = a ** 2 * (u * u).sum(dim=-1)[None] / s2 + 1.0 / background_var  # [B, N]
    h = a[:, :, None] * u_dot_r / s2[:, :, None]  # [B, C, N]
    logits = logits + (h ** 2).sum(dim=1) / (2.0 * precision) - 0.5 * channels * torch.log(precision * background_var)
    weights = torch.softmax(logits, dim=-1)
    beta = h / precision[:, None, :]  # [B, C, N]
    x0 = weights @ refs + torch.einsum("bcn,np->bcp", weights[:, None, :] * beta, u).reshape(len(x), -1)
    return x0


def pixel_references(images: torch.Tensor, alpha: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(refs [N, D] in [−1, 1], uncovered [N, P] or None), float64, for `exact_denoise`: opaque images
    as they are; with alpha, the premultiplied colour (2·rgb − alpha: zero where empty) and 1 − alpha."""
    n = len(images)
    if alpha is None:
        return (images.double() * 2.0 - 1.0).reshape(n, -1), None
    alpha = alpha.double()
    return (images.double() * 2.0 - alpha).reshape(n, -1), (1.0 - alpha).reshape(n, -1)


def render_references(spec, cameras: Camera, config: ReferencePriorConfig) -> torch.Tensor:
    """Ground-truth renders of a shape-library spec: [N, 3, S, S] RGB in [0, 1], float32, CPU."""
    return render_reference_layers(spec, cameras, config)[0]


def render_reference_layers(spec, cameras: Camera, config: ReferencePriorConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """(RGB over the config's background [N, 3, S, S], alpha [N, 1, S, S]), in [0, 1], float32, CPU."""
    from dreamer.shapes import render_spec

    size = config.image_size
    chunks = []
    with torch.no_grad():
        for start in range(0, len(cameras), _RENDER_CHUNK):
            cams = cameras[start:start + _RENDER_CHUNK].with_resolution(size, size)
            out = render_spec(spec, cams, background=config.background_rgb(), supersample=config.supersample)
            layers = torch.cat([out.rgb, out.alpha], dim=-1).detach().to("cpu", torch.float32).permute(0, 3, 1, 2)
            if layers.shape[-2:] != (size, size):
                layers = F.interpolate(layers, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
            chunks.append(layers)
    layers = torch.cat(chunks).clamp(0.0, 1.0).contiguous()
    return layers[:, :3].contiguous(), layers[:, 3:].contiguous()


def _spec_payload(spec) -> dict:
    if dataclasses.is_dataclass(spec):
        return dataclasses.asdict(spec)
    return {"repr": repr(spec)}


def _spec_label(spec) -> str:
    prompt = getattr(spec, "prompt", None)
    return str(prompt) if prompt else f"{getattr(spec, 'colour', '')} {getattr(spec, 'shape', '')}".strip()


# ----------------------------------------------------------------------------------------------


class ReferencePrior(Prior):
    """Exact denoiser of multi-view shape-library renders; instant, deterministic, measurable."""

    embedded = True  # ships with dreamer: no download, runs on a CPU
    exact = True  # an exact denoiser over the library: an oracle

    def __init__(self, config: ReferencePriorConfig | None = None, device: str | torch.device = "cpu") -> None:
        super().__init__()
        self.config = config if config is not None else ReferencePriorConfig()
        c = self.config
        self.image_size = int(c.image_size)
        self.latent_shape = (3, self.image_size, self.image_size)
        self.num_train_timesteps = 1000
        self.camera_conditioned = bool(c.camera_aware)
        self.register_buffer("alphas_cumprod", make_alphas_cumprod(self.num_train_timesteps, c.beta_schedule),
                             persistent=False)
        self._sets: list[ReferenceSet] = []
        self._by_key: dict[str, int] = {}
        self._packed: dict[tuple[int, str], tuple] = {}  # (index, device) -> (refs [N,D] f64, ‖refs‖² [N], dirs)
        self._generic: int | None = None
        self.to(device)

    # -- registering reference sets -----------------------------------------------------------

    @classmethod
    def from_references(cls, images: torch.Tensor, directions: torch.Tensor | None = None,
                        config: ReferencePriorConfig | None = None, label: str = "custom") -> "ReferencePrior":
        """A prior whose set 0 is the given images [N,3,H,W] in [0,1] (cameras [N,3] optional)."""
        prior = cls(config)
        prior.register_references(images, directions, label=label)
        return prior

    def register_references(self, images: torch.Tensor, directions: torch.Tensor | None = None,
                            label: str = "custom") -> int:
        """Add a reference set; returns its index (the embedding value that selects it).

        images [N, 3, H, W] RGB in [0, 1] (resized to image_size); directions [N, 3] camera
        positions or directions (normalised here), or None for a set without camera weighting.
        """
        if images.ndim != 4 or images.shape[1] != 3 or images.shape[0] < 1:
            raise ValueError(f"reference images must be [N, 3, H, W] with N >= 1, got {tuple(images.shape)}")
        with torch.no_grad():
            rgb = self.decode(self.encode_images(images.detach().to("cpu", torch.float32)))
        if directions is not None:
            if directions.shape != (images.shape[0], 3):
                raise ValueError(f"directions must be [N, 3] = [{images.shape[0]}, 3], got {tuple(directions.shape)}")
            directions = F.normalize(directions.detach().to("cpu", torch.float32), dim=-1)
        return self._add(ReferenceSet(label, rgb.contiguous(), directions))

    def _add(self, ref_set: ReferenceSet) -> int:
        self._sets.append(ref_set)
        return len(self._sets) - 1

    @property
    def num_sets(self) -> int:
        return len(self._sets)

    def reference_set(self, index: int) -> ReferenceSet:
        return self._materialise(int(index))

    def _materialise(self, index: int) -> ReferenceSet:
        if self._sets[index] is None and index == self._generic:
            built = self._build_generic()  # appended at the end by _load_or_render
            self._sets[index] = built
        return self._sets[index]

    def _render_payload(self, kind: str, **extra) -> dict:
        c = self.config
        return {
            "version": reference_cache.CACHE_VERSION,
            "library": shape_library_fingerprint(),
            "kind": kind,
            "image_size": c.image_size,
            "elevation": list(c.elevation),
            "distance": c.distance,
            "fovy": c.fovy,
            "background": RANDOM_BACKGROUND if c.random_background else list(c.background_rgb()),
            "supersample": c.supersample,
            **extra,
        }

    def _load_or_render(self, key: str, label: str, cameras: Camera, render, spec=None) -> int:
        """Index of the set `key`: already registered, loaded from the cache, or rendered and saved.

        `render()` returns (images, alpha); the alpha is kept only for random-background sets."""
        if key in self._by_key:
            return self._by_key[key]
        n, size, keep_alpha = len(cameras), self.image_size, self.config.random_background
        path = reference_cache.cache_path(self.config.resolved_cache_dir(), label, key)
        cached = reference_cache.load_references(path, key, n, size, with_alpha=keep_alpha)
        if cached is not None:
            images, directions, alpha = cached["images"], cached["directions"], cached.get("alpha")
        else:
            (images, alpha), directions = render(), camera_directions(cameras)
            alpha = alpha if keep_alpha else None
            try:
                reference_cache.save_references(path, key, images, directions, {"label": label}, alpha=alpha)
            except OSError as exc:  # unwritable cache: keep going in memory
                reference_cache.log.warning("could not write reference cache %s (%s)", path, exc)
                path = None
        index = self._add(ReferenceSet(label, images, directions, path, alpha, spec))
        self._by_key[key] = index
        return index

    def index_for_spec(self, spec) -> int:
        """The reference set of a shape-library ObjectSpec (registered on first use)."""
        c = self.config
        key = cache_key(self._render_payload("object", spec=_spec_payload(spec), num_views=c.num_views))
        cameras = reference_orbit(c.num_views, c)
        return self._load_or_render(key, _spec_label(spec), cameras,
                                    lambda: render_reference_layers(spec, cameras, c), spec)

    def generic_index(self) -> int:
        """The generic set: every library shape × `uncond_colours` × `uncond_views` views.

        The index is reserved now and the set is rendered (or loaded) on first use: SDS at
        guidance scale 1 never needs it, and rendering it cold costs ~20–60 s on 2 cores.
        """
        if self._generic is None:
            self._sets.append(None)  # placeholder, filled by _materialise
            self._generic = len(self._sets) - 1
        return self._generic

    def _build_generic(self) -> ReferenceSet:
        from dreamer.shapes import OBJECTS, ObjectSpec

        c = self.config
        shapes = sorted(OBJECTS)
        try:  # canonical names ("grey" -> "gray"); UserError names the vocabulary
            colours = [ObjectSpec(shape=shapes[0], colour=name).colour for name in c.uncond_colours]
        except UserError as exc:
            raise UserError(f"reference prior: bad uncond_colours {list(c.uncond_colours)}: {exc}") from None
        per_shape = len(colours) * c.uncond_views
        # Each shape gets its own golden spiral of per_shape views; colours alternate along it so
        # every colour is seen from all around.
        orbit = reference_orbit(per_shape, c)
        key = cache_key(self._render_payload(
            "generic", shapes=shapes, colours=colours, views=c.uncond_views))
        cam_index = torch.arange(per_shape).repeat(len(shapes))
        cameras = Camera(orbit.c2w[cam_index], orbit.fovy[cam_index], orbit.width, orbit.height)

        def render() -> tuple[torch.Tensor, torch.Tensor]:
            rgb = torch.empty(len(shapes) * per_shape, 3, c.image_size, c.image_size)
            alpha = torch.empty(len(shapes) * per_shape, 1, c.image_size, c.image_size)
            for s, shape in enumerate(shapes):
                for k, colour in enumerate(colours):
                    rows = s * per_shape + torch.arange(k, per_shape, len(colours))
                    rgb[rows], alpha[rows] = render_reference_layers(ObjectSpec(shape=shape, colour=colour),
                                                                     orbit[rows - s * per_shape], c)
            return rgb, alpha

        return self._sets[self._load_or_render(key, "generic", cameras, render)]

    # -- the Prior contract -------------------------------------------------------------------

    def encode_prompt(self, prompt: str, negative_prompt: str = "", view_dependent: bool = False) -> PromptEmbedding:
        """Embeddings are set indices. `view_dependent` is ignored: this prior takes the camera."""
        from dreamer.shapes import parse_prompt

        cond = self.index_for_spec(parse_prompt(prompt))  # UserError when out of vocabulary
        return set_index_embedding(prompt, negative_prompt, cond, self.generic_index(),
                                   lambda text: self.index_for_spec(parse_prompt(text)), self.alphas_cumprod.device)

    def encode_images(self, rgb: torch.Tensor) -> torch.Tensor:
        """[B,3,H,W] in [0,1] -> [B,3,S,S] in [−1,1]; bilinear (antialiased when shrinking), differentiable."""
        return encode_pixels(rgb, self.image_size)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return decode_pixels(z)

    def _alpha_sigma(self, t: torch.Tensor, batch: int, device) -> tuple[torch.Tensor, torch.Tensor]:
        """(α_t, σ_t), each [B] in float64 (the exact denoiser's precision)."""
        t = schedule.timesteps(t, batch, device, self.num_train_timesteps)
        assert t.shape == (batch,), (t.shape, batch)
        return schedule.alphas_sigmas(self.alphas_cumprod.double(), t, ndim=1)

    def _packed_set(self, index: int, device: torch.device) -> tuple:
        """(refs [N, D] in [−1, 1], ‖refs‖² [N], directions or None, uncovered [N, P] or None), float64.

        A random-background set's refs are its premultiplied colours (2·rgb − alpha: zero where
        empty) and `uncovered` = 1 − alpha carries the background."""
        key = (index, str(device))
        if key not in self._packed:
            ref_set = self._materialise(index)
            refs, uncovered = pixel_references(ref_set.images, ref_set.alpha)
            refs, uncovered = refs.to(device), None if uncovered is None else uncovered.to(device)
            dirs = None if ref_set.directions is None else ref_set.directions.to(device)
            self._packed[key] = (refs, (refs * refs).sum(dim=-1), dirs, uncovered)
        return self._packed[key]

    def _camera_directions(self, camera: Camera, batch: int, device) -> torch.Tensor:
        dirs = camera_directions(camera).to(device)
        if len(dirs) == batch:
            return dirs
        if len(dirs) >= 1 and batch % len(dirs) == 0:  # e.g. CFG's cat([x, x]) with B cameras
            return dirs.repeat(batch // len(dirs), 1)
        raise ValueError(f"{len(dirs)} cameras for a batch of {batch}")

    @torch.no_grad()
    def predict_x0(self, x_t: torch.Tensor, t: torch.Tensor, embedding: torch.Tensor,
                   camera: Camera | None = None) -> torch.Tensor:
        """The exact posterior mean x̂0 [B, 3, S, S] (float64 inside, x_t's dtype out)."""
        batch = x_t.shape[0]
        assert tuple(x_t.shape[1:]) == self.latent_shape, (tuple(x_t.shape), self.latent_shape)
        emb = torch.as_tensor(embedding).reshape(batch, -1)[:, 0].long().cpu()
        if int(emb.min()) < 0 or int(emb.max()) >= len(self._sets):
            raise IndexError(f"embedding {emb.tolist()} out of range: {len(self._sets)} reference sets registered")
        device = x_t.device
        alpha, sigma = self._alpha_sigma(t, batch, device)
        cam_dirs = None
        if camera is not None and self.config.camera_aware:
            cam_dirs = self._camera_directions(camera, batch, device)
        x = x_t.reshape(batch, -1).double()
        out = torch.empty_like(x)
        for index in emb.unique().tolist():
            rows = (emb == index).nonzero().squeeze(-1).to(device)
            spec = self._sets[index].spec if self._sets[index] is not None else None
            if camera is not None and self.config.exact_views and spec is not None:
                out[rows] = self._denoise_at_own_cameras(spec, camera, batch, rows, x, alpha, sigma)
                continue
            refs, sqnorm, dirs, uncovered = self._packed_set(index, device)
            log_w = None
            if cam_dirs is not None and dirs is not None:
                log_w = camera_log_weights(cam_dirs[rows], dirs, self.config.camera_temperature)
            out[rows] = exact_denoise(x[rows], alpha[rows], sigma[rows], refs, log_w, sqnorm, uncovered)
        return out.reshape(x_t.shape).to(x_t.dtype)

    def _denoise_at_own_cameras(self, spec, camera: Camera, batch: int, rows: torch.Tensor, x: torch.Tensor,
                                alpha: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """x̂0 of `rows` against the object rendered at each row's own camera (one reference per row)."""
        if len(camera) != batch and (len(camera) == 0 or batch % len(camera)):
            raise ValueError(f"{len(camera)} cameras for a batch of {batch}")
        cams = camera if len(camera) == batch else camera[torch.arange(batch) % len(camera)]  # CFG's tiled batch
        images, coverage = render_reference_layers(spec, cams[rows.cpu()], self.config)
        refs, uncovered = pixel_references(images, coverage if self.config.random_background else None)
        refs = refs.to(x.device)
        return torch.cat([exact_denoise(x[r:r + 1], alpha[r:r + 1], sigma[r:r + 1], refs[k:k + 1],
                                        uncovered=None if uncovered is None else uncovered[k:k + 1].to(x.device))
                          for k, r in enumerate(rows.tolist())])

    @torch.no_grad()
    def predict_noise(self, x_t: torch.Tensor, t: torch.Tensor, embedding: torch.Tensor,
                      camera: Camera | None = None) -> torch.Tensor:
        """ε̂ = (x_t − α_t x̂0) / σ_t. `camera` may hold B cameras or B/k (tiled k times)."""
        batch = x_t.shape[0]
        shape = (batch,) + (1,) * (x_t.ndim - 1)
        alpha, sigma = (c.reshape(shape) for c in self._alpha_sigma(t, batch, x_t.device))
        x0 = self.predict_x0(x_t, t, embedding, camera).double()
        return schedule.eps_from_x0(x_t.double(), x0, alpha, sigma).to(x_t.dtype)

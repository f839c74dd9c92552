"""The `reference` prior: the exact denoiser of a finite set of shape-library renders.

For a prompt naming a library object ("a red chair") the prior's image distribution is the
uniform mixture of its reference renders y_1..y_N (pixels in [−1, 1], `num_views` cameras on a
fixed golden-spiral orbit). Under x_t = α_t·x0 + σ_t·ε the posterior mean is closed-form:

    x̂0(x_t) = Σ_i softmax_i(−‖x_t − α_t y_i‖² / (2σ_t²) + log w_i) · y_i,   ε̂ = (x_t − α_t x̂0) / σ_t

with w_i = 1, or, when a camera is passed and `camera_aware` is on,
w_i = exp(−angle(cam, cam_i)² / (2τ²)) — the angle between the two camera directions seen from
the origin — i.e. the exact denoiser of the camera-conditional mixture. The mathematics is in
`exact_mixture`; what this prior shares with `reference-video` is `exact_prior.ExactMixturePrior`.

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
are closed-form (`exact_mixture.exact_denoise`). A white object is then as visible to the prior as
any other.

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
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from dreamer.cameras import Camera
from dreamer.errors import UserError
from dreamer.priors.exact_mixture import exact_denoise, pixel_references
from dreamer.priors.exact_prior import ExactMixturePrior
from dreamer.priors.reference_config import ReferencePriorConfig
from dreamer.priors.reference_orbit import camera_directions, camera_log_weights, reference_orbit
from dreamer.shapes.fingerprint import cache_key

__all__ = [
    "ReferencePriorConfig",  # defined in reference_config, kept here: the registry names this module
    "ReferencePrior",
    "ReferenceSet",
    "render_references",
    "render_reference_layers",
]

_RENDER_CHUNK = 32  # cameras per render_spec call (bounds memory)


@dataclass
class ReferenceSet:
    """One registered set of reference images."""

    label: str  # e.g. "a red chair", "generic", "custom"
    images: torch.Tensor  # [N, 3, S, S] RGB in [0, 1] (CPU, float32); premultiplied when `alpha` is set
    directions: torch.Tensor | None  # [N, 3] unit camera directions from the origin; None = no camera weighting
    path: Path | None = None  # cache file it was loaded from / written to
    alpha: torch.Tensor | None = None  # [N, 1, S, S] coverage (random-background sets); None: opaque images
    spec: object | None = None  # the library object it shows (for `exact_views`); None: generic or custom


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


class ReferencePrior(ExactMixturePrior):
    """Exact denoiser of multi-view shape-library renders; instant, deterministic, measurable."""

    config_class = ReferencePriorConfig
    sample_dims = 1  # a batch of images [B, 3, S, S]

    def __init__(self, config: ReferencePriorConfig | None = None, device: str | torch.device = "cpu") -> None:
        super().__init__(config, device)
        self.camera_conditioned = bool(self.config.camera_aware)

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

    def _load_or_render(self, key: str, label: str, cameras: Camera, render, spec=None) -> int:
        """Index of the set `key`: already registered, loaded from the cache, or rendered and saved.

        `render()` returns (images, alpha); the alpha is kept only for random-background sets."""
        if key in self._by_key:
            return self._by_key[key]
        images, directions, alpha, path = self._cached_render(label, key, cameras, render, {"label": label},
                                                              with_alpha=self.config.random_background)
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

    def _index_for_prompt(self, text: str) -> int:
        from dreamer.shapes import parse_prompt

        return self.index_for_spec(parse_prompt(text))  # UserError when out of vocabulary

    def _build_generic(self) -> ReferenceSet:
        """Every library shape × `uncond_colours` × `uncond_views` views.

        The set is also registered under its key at the end of the list (so `num_sets` grows by one)."""
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

    # -- denoising ------------------------------------------------------------------------------

    def _check_sample(self, x_t: torch.Tensor) -> None:
        if tuple(x_t.shape[1:]) != self.latent_shape:
            raise UserError(f"the reference prior denoises images [B, {', '.join(map(str, self.latent_shape))}]; "
                            f"got {tuple(x_t.shape)} (set prior.image_size)")

    def _pack(self, ref_set: ReferenceSet, device: torch.device) -> tuple:
        """(refs [N, D] in [−1, 1], ‖refs‖² [N], directions or None, uncovered [N, P] or None), float64.

        A random-background set's refs are its premultiplied colours (2·rgb − alpha: zero where
        empty) and `uncovered` = 1 − alpha carries the background."""
        refs, uncovered = pixel_references(ref_set.images, ref_set.alpha)
        refs, uncovered = refs.to(device), None if uncovered is None else uncovered.to(device)
        dirs = None if ref_set.directions is None else ref_set.directions.to(device)
        return refs, (refs * refs).sum(dim=-1), dirs, uncovered

    def _camera_query(self, camera: Camera | None, batch: int, device) -> torch.Tensor | None:
        """[B, 3] query camera directions (B cameras, or B/k tiled k times as in CFG), or None."""
        if camera is None or not self.config.camera_aware:
            return None
        dirs = camera_directions(camera).to(device)
        if len(dirs) == batch:
            return dirs
        if len(dirs) >= 1 and batch % len(dirs) == 0:  # e.g. CFG's cat([x, x]) with B cameras
            return dirs.repeat(batch // len(dirs), 1)
        raise ValueError(f"{len(dirs)} cameras for a batch of {batch}")

    def _denoise_set(self, index: int, rows: torch.Tensor, x: torch.Tensor, alpha: torch.Tensor,
                     sigma: torch.Tensor, camera: Camera | None, query: torch.Tensor | None) -> torch.Tensor:
        spec = self._sets[index].spec if self._sets[index] is not None else None
        if camera is not None and self.config.exact_views and spec is not None:
            return self._denoise_at_own_cameras(spec, camera, len(x), rows, x, alpha, sigma)
        refs, sqnorm, dirs, uncovered = self._packed_set(index, x.device)
        log_w = None
        if query is not None and dirs is not None:
            log_w = camera_log_weights(query[rows], dirs, self.config.camera_temperature)
        return exact_denoise(x[rows], alpha[rows], sigma[rows], refs, log_w, sqnorm, uncovered)

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

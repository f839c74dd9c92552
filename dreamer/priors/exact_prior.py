"""`ExactMixturePrior`: what the exact (closed-form) shape-library priors share.

The `reference` prior (images) and the `reference-video` prior (clips) are each the exact posterior
mean of a finite mixture of reference samples (`exact_mixture`). Their references come in registered
sets, and an embedding is a set index ([B] or [B, 1] long): one set per encoded prompt, plus a generic
set reserved on first use and built lazily (the unconditional branch). This base holds the set
registry, the packed float64 copies per device, the embedding and input checks, α/σ, the per-set loop
of `predict_x0`, ε̂ from x̂0, the pixel-space encoding, and the load-or-render-and-save of a set.

A subclass says what differs: what a sample is (`sample_dims`, `_check_sample`), how a prompt names a
set (`_index_for_prompt`), how the generic set is built (`_build_generic`), how a set is packed
(`_pack`) and how one set's rows are denoised under the query cameras (`_camera_query`, `_denoise_set`).
"""

from __future__ import annotations

from typing import Callable, ClassVar

import torch

from dreamer.cameras import Camera
from dreamer.errors import UserError
from dreamer.priors import reference_cache, schedule
from dreamer.priors.base import Prior, PromptEmbedding
from dreamer.priors.pixel_space import decode_pixels, encode_pixels
from dreamer.priors.reference_config import RANDOM_BACKGROUND, ReferencePriorConfig
from dreamer.priors.reference_orbit import camera_directions
from dreamer.priors.schedule import make_alphas_cumprod
from dreamer.shapes.fingerprint import shape_library_fingerprint

__all__ = ["ExactMixturePrior", "set_index_embedding"]


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


class ExactMixturePrior(Prior):
    """Exact denoiser of registered reference sets; instant, deterministic, measurable (an oracle)."""

    embedded = True  # ships with dreamer: no download, runs on a CPU
    exact = True  # an exact denoiser over the library: an oracle

    config_class: ClassVar[type[ReferencePriorConfig]] = ReferencePriorConfig  # built when no config is given
    sample_dims: ClassVar[int] = 1  # leading axes of a batch before (3, S, S): 1 for images [B], 2 for clips [B, F]

    def __init__(self, config: ReferencePriorConfig | None = None, device: str | torch.device = "cpu") -> None:
        super().__init__()
        self.config = config if config is not None else self.config_class()
        c = self.config
        self.image_size = int(c.image_size)
        self.latent_shape = (3, self.image_size, self.image_size)
        self.num_train_timesteps = 1000
        self.register_buffer("alphas_cumprod", make_alphas_cumprod(self.num_train_timesteps, c.beta_schedule),
                             persistent=False)
        self._sets: list = []  # the registered sets; None: the generic set, reserved and not built yet
        self._by_key: dict[str, int] = {}  # cache key -> set index
        self._packed: dict[tuple[int, str], tuple] = {}  # (index, device) -> what `_pack` returns
        self._generic: int | None = None
        self.to(device)

    # -- what a subclass says --------------------------------------------------------------------

    def _index_for_prompt(self, text: str) -> int:
        """The set a library prompt names (registered on first use); UserError outside the library."""
        raise NotImplementedError

    def _build_generic(self):
        """The generic (unconditional) set, loaded from the cache or rendered."""
        raise NotImplementedError

    def _pack(self, ref_set, device: torch.device) -> tuple:
        """A set as float64 tensors on `device`, ready for `_denoise_set` (cached per device)."""
        raise NotImplementedError

    def _check_sample(self, x_t: torch.Tensor) -> None:
        """A one-line UserError unless `x_t` is a batch of the samples this prior denoises."""
        raise NotImplementedError

    def _camera_query(self, camera: Camera | None, batch: int, device: torch.device):
        """What `_denoise_set` needs from the query cameras (once per call), or None."""
        raise NotImplementedError

    def _denoise_set(self, index: int, rows: torch.Tensor, x: torch.Tensor, alpha: torch.Tensor,
                     sigma: torch.Tensor, camera: Camera | None, query) -> torch.Tensor:
        """x̂0 (float64) of the rows `rows` of x [B, ...flattened sample], all of which embed set `index`."""
        raise NotImplementedError

    # -- reference sets ----------------------------------------------------------------------------

    @property
    def num_sets(self) -> int:
        return len(self._sets)

    def reference_set(self, index: int):
        """The registered set `index` (the generic set is built here on first use)."""
        index = int(index)
        if self._sets[index] is None and index == self._generic:
            self._sets[index] = self._build_generic()
        return self._sets[index]

    def generic_index(self) -> int:
        """The generic set's index, reserved now and built on first use (SDS at guidance scale 1 never needs it)."""
        if self._generic is None:
            self._generic = self._add(None)
        return self._generic

    def _add(self, ref_set) -> int:
        self._sets.append(ref_set)
        return len(self._sets) - 1

    def _render_payload(self, kind: str, **extra) -> dict:
        """What a cached set's key hashes: the render settings, the library's source, `extra`."""
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

    def _cached_render(self, label: str, key: str, cameras: Camera, render: Callable[[], tuple],
                       metadata: dict[str, str], with_alpha: bool = False) -> tuple:
        """(images, directions, alpha or None, path or None) of one image per camera: loaded from the
        cache file of (`label`, `key`), or `render()` -> (images, alpha) and saved there (in memory only,
        path None, when the cache is unwritable). The alpha is kept only `with_alpha`."""
        path = reference_cache.cache_path(self.config.resolved_cache_dir(), label, key)
        cached = reference_cache.load_references(path, key, len(cameras), self.image_size, with_alpha=with_alpha)
        if cached is not None:
            return cached["images"], cached["directions"], cached.get("alpha"), path
        (images, alpha), directions = render(), camera_directions(cameras)
        alpha = alpha if with_alpha else None
        try:
            reference_cache.save_references(path, key, images, directions, metadata, alpha=alpha)
        except OSError as exc:  # unwritable cache: keep going in memory
            reference_cache.log.warning("could not write reference cache %s (%s)", path, exc)
            path = None
        return images, directions, alpha, path

    def _packed_set(self, index: int, device: torch.device) -> tuple:
        key = (index, str(device))
        if key not in self._packed:
            self._packed[key] = self._pack(self.reference_set(index), device)
        return self._packed[key]

    # -- the Prior contract --------------------------------------------------------------------------

    def encode_prompt(self, prompt: str, negative_prompt: str = "", view_dependent: bool = False) -> PromptEmbedding:
        """Embeddings are set indices. `view_dependent` is ignored: this prior takes the camera."""
        cond = self._index_for_prompt(prompt)  # UserError when outside the library
        return set_index_embedding(prompt, negative_prompt, cond, self.generic_index(), self._index_for_prompt,
                                   self.alphas_cumprod.device)

    def encode_images(self, rgb: torch.Tensor) -> torch.Tensor:
        """[..., 3, H, W] in [0, 1] -> [..., 3, S, S] in [−1, 1] (... = B images or B×F clip frames);
        bilinear (antialiased when shrinking), differentiable."""
        if rgb.ndim != self.sample_dims + 3 or rgb.shape[-3] != 3:
            raise UserError(f"the {type(self).__name__} encodes RGB batches with {self.sample_dims + 3} axes "
                            f"[..., 3, H, W]; got a tensor of shape {tuple(rgb.shape)}")
        lead = rgb.shape[:self.sample_dims]
        return encode_pixels(rgb.flatten(0, self.sample_dims - 1), self.image_size).unflatten(0, lead)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return decode_pixels(z)

    def _set_indices(self, embedding: torch.Tensor, batch: int) -> torch.Tensor:
        """[B] long set indices on the CPU from embeddings [B] or [B, 1] (column 0 of [B, k])."""
        emb = torch.as_tensor(embedding)
        if batch < 1 or emb.numel() < batch or emb.numel() % batch:
            raise UserError(f"the {type(self).__name__} takes one reference-set index per sample (an embedding "
                            f"[B] or [B, 1] from encode_prompt); got shape {tuple(emb.shape)} for a batch of {batch}")
        emb = emb.reshape(batch, -1)[:, 0].long().cpu()
        if int(emb.min()) < 0 or int(emb.max()) >= len(self._sets):
            raise IndexError(f"embedding {emb.tolist()} out of range: {len(self._sets)} reference sets registered")
        return emb

    def _alpha_sigma(self, t: torch.Tensor, batch: int, device) -> tuple[torch.Tensor, torch.Tensor]:
        """(α_t, σ_t), each [B] in float64 (the exact denoiser's precision)."""
        t = schedule.timesteps(t, batch, device, self.num_train_timesteps)
        if t.shape != (batch,):
            raise UserError(f"the {type(self).__name__} takes one timestep per sample or one for all; "
                            f"got {t.numel()} timesteps for a batch of {batch}")
        return schedule.alphas_sigmas(self.alphas_cumprod.double(), t, ndim=1)

    @torch.no_grad()
    def predict_x0(self, x_t: torch.Tensor, t: torch.Tensor, embedding: torch.Tensor,
                   camera: Camera | None = None) -> torch.Tensor:
        """The exact posterior mean x̂0, shaped like x_t (float64 inside, x_t's dtype out)."""
        self._check_sample(x_t)
        batch, device = x_t.shape[0], x_t.device
        indices = self._set_indices(embedding, batch)
        alpha, sigma = self._alpha_sigma(t, batch, device)
        query = self._camera_query(camera, batch, device)
        x = x_t.flatten(self.sample_dims).double()  # [B, D] images, [B, F, D] clips
        out = torch.empty_like(x)
        for index in indices.unique().tolist():
            rows = (indices == index).nonzero().squeeze(-1).to(device)
            out[rows] = self._denoise_set(index, rows, x, alpha, sigma, camera, query)
        return out.reshape(x_t.shape).to(x_t.dtype)

    @torch.no_grad()
    def predict_noise(self, x_t: torch.Tensor, t: torch.Tensor, embedding: torch.Tensor,
                      camera: Camera | None = None) -> torch.Tensor:
        """ε̂ = (x_t − α_t x̂0) / σ_t, shaped like x_t (`camera` as for `predict_x0`)."""
        batch = x_t.shape[0]
        shape = (batch,) + (1,) * (x_t.ndim - 1)
        alpha, sigma = (c.reshape(shape) for c in self._alpha_sigma(t, batch, x_t.device))
        x0 = self.predict_x0(x_t, t, embedding, camera).double()
        return schedule.eps_from_x0(x_t.double(), x0, alpha, sigma).to(x_t.dtype)

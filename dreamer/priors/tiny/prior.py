"""`TinyPrior`: the trained tiny UNet behind the `Prior` contract (pixel space, camera-conditioned).

encode_images: resize to the model's size (bilinear, antialiased when shrinking) and map to
2x − 1, differentiable; decode: back to [0, 1]. encode_prompt: MiniLM token embeddings
[1, L, 384] of the prompt, the negative prompt (the empty prompt when none: the
prompt-dropout embedding the model was trained with) and the empty prompt. predict_noise: the
UNet's v̂ turned into ε̂ = σ_t x_t + α_t v̂, with the camera's (azimuth, elevation, distance)
features when a camera is given, the learned "no camera" input when `camera` is None.

The same class serves `tiny-mv` (weights whose layout has cross-view attention, a raymap and the
field of view): it declares `views_per_sample` = V (the view-set size it was trained on) and takes
batches of whole V-view sets, set-major.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch

from dreamer.cameras import Camera
from dreamer.devices import resolve_device, resolve_dtype
from dreamer.errors import UserError
from dreamer.resources import resolve_weights
from dreamer.priors.pixel_space import decode_pixels, encode_pixels
from dreamer.priors.base import Prior, PromptEmbedding
from dreamer.priors.schedule import make_alphas_cumprod, timesteps
from dreamer.priors.tiny.model import move, network_call
from dreamer.priors.tiny.text import PromptEncoder, TextEncoder
from dreamer.priors.tiny.weights import TinyModelInfo, has_weights, load_weights


@dataclass
class TinyPriorConfig:
    """Settings of the embedded `tiny` prior."""

    weights: str = "assets/priors/tiny"  # weights folder; "assets/…" is looked up in the current folder, then in the package
    dtype: Literal["auto", "fp32", "fp16", "bf16"] = "auto"  # network dtype; auto = fp16 on CUDA, fp32 on CPU

    def resolved_weights(self) -> Path:
        return resolve_weights(self.weights)


class TinyPrior(Prior):
    """The project's own small text + camera conditioned pixel diffusion model."""

    embedded = True  # ships with dreamer: no download, runs on a CPU

    camera_conditioned = True

    def __init__(self, config: TinyPriorConfig | None = None, device: str | torch.device = "cpu", *,
                 unet: torch.nn.Module | None = None, info: TinyModelInfo | None = None,
                 encoder: TextEncoder | None = None) -> None:
        """Loads `config.weights`; or wraps an in-memory `unet` + `info` (tests, training previews)."""
        super().__init__()
        self.config = config if config is not None else TinyPriorConfig()
        device = resolve_device(device)
        self.model_dtype = resolve_dtype(self.config.dtype, device, "tiny prior")
        if unet is None:
            folder = self.config.resolved_weights()
            if not has_weights(folder):
                from dreamer.priors.tiny.train import PRIOR_MODELS

                model = next((m for m, f in PRIOR_MODELS.items() if f == self.config.weights), "tiny")
                command = "dreamer prior train" + ("" if model == "tiny" else f" --model {model}")
                raise UserError(f"the {model} prior has no weights in {folder}: run `{command}` "
                                f"(about 2 hours on 2 CPU cores), or use the weight-free preset: --config reference")
            unet, info = load_weights(folder)
        if info is None:
            raise ValueError("TinyPrior(unet=...) needs the matching TinyModelInfo")
        self.unet = move(unet, device, self.model_dtype).eval().requires_grad_(False)
        self.info = info
        self.schedule = info.schedule
        self.image_size = int(info.unet.image_size)
        self.views_per_sample = info.views_per_sample
        self.needs_camera = info.lifted is not None  # tiny-3d renders its estimate at the cameras
        self.latent_shape = (3, self.image_size, self.image_size)
        self.num_train_timesteps = int(info.schedule.num_train_timesteps)
        s = info.schedule
        acp = make_alphas_cumprod(self.num_train_timesteps, s.beta_schedule, s.beta_start, s.beta_end)
        self.register_buffer("alphas_cumprod", acp.to(device), persistent=False)  # [T]
        self._prompts = PromptEncoder(info.max_length, device, encoder)

    @classmethod
    def declared_views(cls, config: TinyPriorConfig) -> int:
        """V from the weights folder's config.json (1 when it is missing: loading will say so)."""
        from dreamer.priors.tiny.weights import read_info

        folder = config.resolved_weights()
        if not has_weights(folder):
            return 1
        info = read_info(folder)
        return info.views_per_sample

    @property
    def device(self) -> torch.device:
        return self.alphas_cumprod.device

    # -- prompts

    def mean_object_colour(self) -> torch.Tensor:
        """The mean RGB of the palette the weights were trained on (config.json's data colours; all of them when
        unrestricted): every colour appears with every shape, so this is the training objects' mean colour."""
        from dreamer.shapes.colours import COLOURS

        names = self.info.data.get("colours") or list(COLOURS)
        return torch.tensor([COLOURS[name] for name in names], dtype=torch.float32).mean(dim=0)

    def encode_prompt(self, prompt: str, negative_prompt: str = "", view_dependent: bool = False) -> PromptEmbedding:
        """`view_dependent` is ignored: this prior takes the camera itself."""
        return self._prompts.embedding(prompt, negative_prompt)

    # -- images

    def encode_images(self, rgb: torch.Tensor) -> torch.Tensor:
        """[B,3,H,W] in [0,1] -> [B,3,S,S] in [−1,1]; differentiable."""
        return encode_pixels(rgb, self.image_size)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return decode_pixels(z)

    # -- noise prediction

    def _batch_cameras(self, camera: Camera, batch: int) -> Camera:
        if len(camera) == batch:
            return camera
        if len(camera) >= 1 and batch % len(camera) == 0:  # B/k cameras tiled k times (e.g. CFG's [x; x])
            return Camera.cat([camera] * (batch // len(camera)))
        raise ValueError(f"{len(camera)} cameras for a batch of {batch}")

    prediction_type = "v_prediction"

    def network(self) -> torch.nn.Module:
        return self.unet

    def network_output(self, net: torch.nn.Module, x_t: torch.Tensor, t: torch.Tensor, embedding: torch.Tensor,
                       camera: Camera | None = None, dtype: torch.dtype | None = None) -> torch.Tensor:
        """`net`'s v̂ [B, 3, S, S] in float32 (float64 for float64 inputs, when the prior itself was cast to
        float64: the amortised trainer's equivalence runs), with the camera's features (zeros = no camera);
        keeps the graph."""
        batch, device, views = x_t.shape[0], self.device, self.views_per_sample
        assert tuple(x_t.shape[1:]) == self.latent_shape, (tuple(x_t.shape), self.latent_shape)
        if batch % views:
            raise ValueError(f"the multi-view prior takes whole sets of {views} views; got a batch of {batch}")
        t = self._timesteps(t, batch)
        assert embedding.shape[0] == batch, (tuple(embedding.shape), batch)
        camera = self._batch_cameras(camera, batch) if camera is not None else None
        return network_call(net, self.info.unet, x_t.to(device), t, embedding.to(device), camera, views,
                            dtype=dtype or self.model_dtype).to(torch.promote_types(x_t.dtype, torch.float32))

    def _timesteps(self, t: torch.Tensor, batch: int) -> torch.Tensor:
        return timesteps(t, batch, self.device, self.num_train_timesteps)

    @torch.no_grad()
    def predict_noise(self, x_t: torch.Tensor, t: torch.Tensor, embedding: torch.Tensor,
                      camera: Camera | None = None) -> torch.Tensor:
        """ε̂ [B, 3, S, S] in x_t's dtype; t [B] or a scalar; embedding [B, L, 384]."""
        t = self._timesteps(t, x_t.shape[0])
        v = self.network_output(self.unet, x_t, t, embedding, camera)
        return self.output_to_epsilon(v, x_t.to(self.device), t).to(x_t.dtype)  # ε = σ x_t + α v

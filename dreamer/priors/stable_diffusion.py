"""Stable Diffusion (1.5 / 2.1 / 2.1-base, or any diffusers SD folder) as a latent-space prior.

Loads the tokenizer, CLIP text encoder, VAE, UNet and the scheduler's noise schedule from a hub id
(offline cache respected) or a local diffusers folder, freezes them, and exposes the `Prior`
contract: renders → VAE latents × scaling_factor (differentiable through the VAE encoder),
UNet output → ε (v-prediction converted). Missing weights are a one-line `UserError`.

Resolution: `image_size` is what the VAE sees (512 for SD 1.5 / 2.1-base, 768 for SD 2.1). The
render resolution belongs to the trainer: a DreamFusion-style 64 px render is upsampled
bilinearly to `image_size` inside `encode_images`, so the UNet still works at its native 64×64
(or 96×96) latent size — the same thing threestudio does for SD at 64 px.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch

from dreamer.devices import resolve_device, resolve_dtype
from dreamer.errors import UserError
from dreamer.priors._diffusers_common import (
    DiffusersPrior,
    ModelSource,
    freeze,
    load_part,
    resize_square,
    resolve_source,
    transformers_dtype_kwargs,
    vae_dtype,
)

SD_MODELS: dict[str, str] = {
    "sd15": "stable-diffusion-v1-5/stable-diffusion-v1-5",
    "sd21-base": "stabilityai/stable-diffusion-2-1-base",
    "sd21": "stabilityai/stable-diffusion-2-1",
}
SD_SUBFOLDERS = ("scheduler", "text_encoder", "tokenizer", "unet", "vae")


@dataclass
class StableDiffusionConfig:
    """Settings of a Stable Diffusion prior."""

    model: str = "sd15"  # sd15 | sd21 | sd21-base, a hub id, or a local diffusers folder
    revision: str | None = None  # hub branch / tag / commit (None = main); ignored for local folders
    variant: str | None = None  # weight file variant, e.g. "fp16" (half-size download); None = full precision files
    dtype: Literal["auto", "fp32", "fp16", "bf16"] = "auto"  # network dtype; auto = fp16 on CUDA, fp32 on CPU
    image_size: int | None = None  # side renders are resized to for the VAE; None = native (512; 768 for sd21)
    local_files_only: bool | None = None  # never touch the network; None = True exactly when HF_HUB_OFFLINE is set
    cache_dir: str | None = None  # hub cache folder; None = the huggingface_hub default ($HF_HOME/hub)
    enable_attention_slicing: bool = False  # compute UNet attention in slices (less memory, a little slower)
    channels_last: bool = False  # UNet in channels_last memory format (often faster on CUDA)
    vae_gradient_checkpointing: bool = False  # recompute VAE encoder activations in backward (saves memory at 512 px)


def load_stable_diffusion(config: StableDiffusionConfig, dtype: torch.dtype, *, unet_class: Any = None,
                          family: str = "Stable Diffusion", aliases: dict[str, str] | None = None) -> dict[str, Any]:
    """The five parts of a pipeline folder (or hub id) laid out like Stable Diffusion's.

    `unet_class` (default `UNet2DConditionModel`) reads unet/, so video models with SD's layout
    (zeroscope's UNet3DConditionModel) load here too; `family` names the model in errors and
    `aliases` (default `SD_MODELS`) maps short names to hub ids. Every missing-weights failure
    is a one-line UserError.
    """
    try:
        from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
        from transformers import CLIPTextModel, CLIPTokenizer
    except ImportError as exc:  # pragma: no cover - both are project dependencies
        raise UserError(f"the {family} prior needs diffusers and transformers: "
                        f"pip install diffusers transformers ({exc})") from exc

    unet_class = unet_class or UNet2DConditionModel
    src: ModelSource = resolve_source(
        family, config.model, SD_MODELS if aliases is None else aliases, revision=config.revision,
        variant=config.variant, cache_dir=config.cache_dir, local_files_only=config.local_files_only,
        subfolders=SD_SUBFOLDERS)
    variant = {"variant": config.variant} if config.variant else {}
    # The scheduler config is a few bytes: asking for it first makes a missing model fail fast.
    scheduler = load_part(src, "scheduler", DDPMScheduler.from_pretrained, "scheduler")
    text_encoder = load_part(src, "text encoder", CLIPTextModel.from_pretrained, "text_encoder",
                             **transformers_dtype_kwargs(dtype), **variant)
    # The VAE is read in float32 and cast to its own precision when assembled (`vae_dtype`): a VAE
    # that must run in float32 never has its weights rounded through fp16 on the way.
    vae = load_part(src, "VAE", AutoencoderKL.from_pretrained, "vae", torch_dtype=torch.float32, **variant)
    unet = load_part(src, "UNet", unet_class.from_pretrained, "unet", torch_dtype=dtype, **variant)
    # Last: CLIPTokenizer.from_pretrained "succeeds" with an empty vocabulary when files are missing.
    tokenizer = load_part(src, "tokenizer", CLIPTokenizer.from_pretrained, "tokenizer")
    if len(tokenizer) < 16:
        raise UserError(f"the {family} tokenizer files (tokenizer/vocab.json, merges.txt) are missing "
                        f"from {src.location}. {src.fix()}")
    return dict(tokenizer=tokenizer, text_encoder=text_encoder, vae=vae, unet=unet, scheduler=scheduler)


def _downsampling(block_out_channels) -> int:
    return 2 ** (len(block_out_channels) - 1)


class StableDiffusionPrior(DiffusersPrior):
    """A frozen Stable Diffusion model behind the `Prior` contract (latent space)."""

    config_class: ClassVar[type[StableDiffusionConfig]] = StableDiffusionConfig  # a subclass's settings

    def __init__(self, config: StableDiffusionConfig | None = None, device: str | torch.device = "auto"):
        super().__init__()
        config = config or self.config_class()
        device = resolve_device(device)
        dtype = resolve_dtype(config.dtype, device)
        parts = self._load_parts(config, dtype)
        self._assemble(**parts, image_size=config.image_size, device=device, dtype=dtype, config=config)

    @classmethod
    def _load_parts(cls, config: StableDiffusionConfig, dtype: torch.dtype) -> dict:
        """tokenizer, text_encoder, vae, unet and scheduler from the config's weights (a video prior loads its
        video UNet here instead)."""
        return load_stable_diffusion(config, dtype)

    @classmethod
    def from_components(cls, tokenizer, text_encoder, vae, unet, scheduler, image_size: int | None = None,
                        device: str | torch.device = "cpu", dtype: str | torch.dtype = "auto",
                        config: StableDiffusionConfig | None = None) -> "StableDiffusionPrior":
        """Build from already constructed parts (tests use tiny random-weight ones; the loader uses this path too).

        tokenizer: an HF tokenizer (CLIPTokenizer); text_encoder: CLIPTextModel; vae: AutoencoderKL;
        unet: UNet2DConditionModel; scheduler: anything with `.config` (num_train_timesteps,
        prediction_type) and `.alphas_cumprod` (DDPMScheduler). image_size None = config.image_size,
        and when that is None too, the UNet's native size.
        """
        self = cls.__new__(cls)
        DiffusersPrior.__init__(self)
        device = resolve_device(device)
        config = config or StableDiffusionConfig()
        self._assemble(tokenizer=tokenizer, text_encoder=text_encoder, vae=vae, unet=unet, scheduler=scheduler,
                       image_size=image_size if image_size is not None else config.image_size, device=device,
                       dtype=resolve_dtype(dtype, device), config=config)
        return self

    def _assemble(self, *, tokenizer, text_encoder, vae, unet, scheduler, image_size: int | None,
                  device: torch.device, dtype: torch.dtype, config: StableDiffusionConfig) -> None:
        self.config = config
        self.model_dtype = dtype
        self.tokenizer = tokenizer
        self.scheduler = scheduler
        self.text_encoder = text_encoder.to(device=device, dtype=dtype)
        self.vae = vae.to(device=device, dtype=vae_dtype(vae, dtype))  # float32 when its config says force_upcast
        self.unet = unet.to(device=device, dtype=dtype)
        freeze(self.text_encoder, self.vae, self.unet)
        if config.enable_attention_slicing:
            self.unet.set_attention_slice("auto")
        if config.channels_last:
            self.unet.to(memory_format=torch.channels_last)
        if config.vae_gradient_checkpointing:
            self.vae.enable_gradient_checkpointing()

        self._set_schedule(scheduler, device)

        self.vae_scale_factor = _downsampling(self.vae.config.block_out_channels)
        self.scaling_factor = float(self.vae.config.scaling_factor)
        shift = getattr(self.vae.config, "shift_factor", None)
        self.shift_factor = float(shift) if shift is not None else 0.0
        if image_size is None:
            sample = self.unet.config.sample_size
            sample = sample[0] if isinstance(sample, (list, tuple)) else sample
            image_size = int(sample) * self.vae_scale_factor
        multiple = self.vae_scale_factor * _downsampling(self.unet.config.block_out_channels)
        if image_size <= 0 or image_size % multiple:
            raise UserError(f"prior.image_size must be a positive multiple of {multiple} for this model, "
                            f"got {image_size}")
        self.image_size = int(image_size)
        side = self.image_size // self.vae_scale_factor
        self.latent_shape = (int(self.vae.config.latent_channels), side, side)

        max_len = getattr(tokenizer, "model_max_length", None) or 77
        self.max_length = int(min(max_len, self.text_encoder.config.max_position_embeddings))

    # --- text

    def _encode_texts(self, texts: list[str]) -> torch.Tensor:
        tokens = self.tokenizer(texts, padding="max_length", max_length=self.max_length, truncation=True,
                                return_tensors="pt")
        ids = tokens.input_ids.to(self.device)
        mask = None
        if getattr(self.text_encoder.config, "use_attention_mask", False):
            mask = tokens.attention_mask.to(self.device)
        hidden = self.text_encoder(ids, attention_mask=mask)[0]  # [N, L, D] last hidden state
        return hidden.float()

    # --- images

    def encode_images(self, rgb: torch.Tensor) -> torch.Tensor:
        """[B,3,H,W] in [0,1] -> latents [B,4,h,w] × scaling_factor, float32, differentiable.

        Bilinear resize to image_size (no antialias), VAE encoder in the graph, posterior mean
        (deterministic; SD's posterior std is tiny, so sampling would only add noise).
        """
        assert rgb.ndim == 4 and rgb.shape[1] == 3, rgb.shape
        x = resize_square(rgb.to(self.device), self.image_size) * 2.0 - 1.0
        mean = self.vae.encode(x.to(self.vae.dtype)).latent_dist.mean
        return ((mean.float() - self.shift_factor) * self.scaling_factor)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """latents [B,4,h,w] -> [B,3,image_size,image_size] in [0,1], float32."""
        z = z.to(self.device).float() / self.scaling_factor + self.shift_factor
        x = self.vae.decode(z.to(self.vae.dtype), return_dict=False)[0]
        return ((x.float() + 1.0) / 2.0).clamp(0.0, 1.0)

"""Stable Diffusion XL as a latent-space prior (TSM's teacher in Dreamer XL).

SDXL differs from SD 1.x/2.x in its conditioning: two CLIP text encoders whose penultimate
hidden states are concatenated along the feature axis ([L, 768 + 1280] for the base model), the
second encoder's pooled projection ("text_embeds"), and "added time ids" (original size, crop
top-left, target size) that the UNet embeds beside the timestep.

To keep the `Prior` contract's one tensor per prompt, the pooled projection travels as one
extra token: embedding [N, L + 1, D], whose last row holds the pooled vector in its first
`pooled_dim` features (zeros after). `_model_output` splits it again. As in diffusers' SDXL
pipeline (`force_zeros_for_empty_prompt`), the empty prompt is all zeros.
The VAE path (encode to latents × scaling_factor) is Stable Diffusion's, except for its precision:
the SDXL-base VAE gives NaN in fp16, so the VAE runs in float32 whenever its config says
`force_upcast` (SDXL's does; diffusers' default) while the UNet and text encoders keep the chosen
dtype, as Dreamer XL and diffusers' SDXL pipeline do. An fp16-safe VAE (`force_upcast: false`, e.g.
the "fp16-fix" one) stays in the chosen dtype. `encode_images`/`decode` cast to the VAE's dtype and
return float32.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from dreamer.devices import resolve_device, resolve_dtype
from dreamer.errors import UserError
from dreamer.priors._diffusers_common import (
    DiffusersPrior,
    freeze,
    load_part,
    resolve_source,
    transformers_dtype_kwargs,
)
from dreamer.priors.stable_diffusion import StableDiffusionConfig, StableDiffusionPrior

SDXL_MODELS: dict[str, str] = {"sdxl": "stabilityai/stable-diffusion-xl-base-1.0"}
SDXL_SUBFOLDERS = ("scheduler", "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2", "unet", "vae")


@dataclass
class SDXLConfig(StableDiffusionConfig):
    """Settings of the SDXL prior (the Stable Diffusion settings; native size 1024)."""

    model: str = "sdxl"  # sdxl, a hub id, or a local diffusers SDXL folder


def _load_sdxl(config: SDXLConfig, dtype: torch.dtype) -> dict[str, Any]:
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    src = resolve_source("Stable Diffusion XL", config.model, SDXL_MODELS, revision=config.revision,
                         variant=config.variant, cache_dir=config.cache_dir,
                         local_files_only=config.local_files_only, subfolders=SDXL_SUBFOLDERS)
    variant = {"variant": config.variant} if config.variant else {}
    tdtype = transformers_dtype_kwargs(dtype)
    parts = dict(
        scheduler=load_part(src, "scheduler", DDPMScheduler.from_pretrained, "scheduler"),
        text_encoder=load_part(src, "text encoder", CLIPTextModel.from_pretrained, "text_encoder", **tdtype, **variant),
        text_encoder_2=load_part(src, "second text encoder", CLIPTextModelWithProjection.from_pretrained,
                                 "text_encoder_2", **tdtype, **variant),
        # float32 first; `_assemble` casts it to `vae_dtype` (float32 for SDXL's VAE, which overflows in fp16)
        vae=load_part(src, "VAE", AutoencoderKL.from_pretrained, "vae", torch_dtype=torch.float32, **variant),
        unet=load_part(src, "UNet", UNet2DConditionModel.from_pretrained, "unet", torch_dtype=dtype, **variant),
        tokenizer=load_part(src, "tokenizer", CLIPTokenizer.from_pretrained, "tokenizer"),
        tokenizer_2=load_part(src, "second tokenizer", CLIPTokenizer.from_pretrained, "tokenizer_2"),
    )
    if min(len(parts["tokenizer"]), len(parts["tokenizer_2"])) < 16:
        raise UserError(f"the SDXL tokenizer files are missing from {src.location}. {src.fix()}")
    return parts


class SDXLPrior(StableDiffusionPrior):
    """A frozen SDXL base model behind the `Prior` contract."""

    def __init__(self, config: SDXLConfig | None = None, device: str | torch.device = "auto"):
        DiffusersPrior.__init__(self)
        config = config or SDXLConfig()
        device = resolve_device(device)
        dtype = resolve_dtype(config.dtype, device)
        parts = _load_sdxl(config, dtype)
        self._assemble_xl(parts, config.image_size, device, dtype, config)

    @classmethod
    def from_components(cls, tokenizer, tokenizer_2, text_encoder, text_encoder_2, vae, unet, scheduler,
                        image_size: int | None = None, device: str | torch.device = "cpu",
                        dtype: str | torch.dtype = "auto", config: SDXLConfig | None = None) -> "SDXLPrior":
        """Build from constructed parts (tests: tiny random ones)."""
        self = cls.__new__(cls)
        DiffusersPrior.__init__(self)
        device = resolve_device(device)
        config = config or SDXLConfig()
        parts = dict(tokenizer=tokenizer, tokenizer_2=tokenizer_2, text_encoder=text_encoder,
                     text_encoder_2=text_encoder_2, vae=vae, unet=unet, scheduler=scheduler)
        self._assemble_xl(parts, image_size if image_size is not None else config.image_size, device,
                          resolve_dtype(dtype, device), config)
        return self

    def _assemble_xl(self, parts: dict, image_size: int | None, device: torch.device, dtype: torch.dtype,
                     config: SDXLConfig) -> None:
        parts = dict(parts)
        self.tokenizer_2 = parts.pop("tokenizer_2")
        self.text_encoder_2 = parts.pop("text_encoder_2").to(device=device, dtype=dtype)
        freeze(self.text_encoder_2)
        self._assemble(**parts, image_size=image_size, device=device, dtype=dtype, config=config)
        self.pooled_dim = int(self.text_encoder_2.config.projection_dim)
        width = int(self.text_encoder.config.hidden_size + self.text_encoder_2.config.hidden_size)
        if self.unet.config.cross_attention_dim != width:
            raise UserError(f"SDXL UNet expects text width {self.unet.config.cross_attention_dim}, "
                            f"the two encoders give {width}")

    # --- text

    def _tokens(self, tokenizer, texts: list[str]) -> torch.Tensor:
        return tokenizer(texts, padding="max_length", max_length=self.max_length, truncation=True,
                         return_tensors="pt").input_ids.to(self.device)

    def _encode_texts(self, texts: list[str]) -> torch.Tensor:
        """[N, L + 1, D]: both encoders' penultimate hidden states, then the pooled token (see module doc)."""
        h1 = self.text_encoder(self._tokens(self.tokenizer, texts), output_hidden_states=True).hidden_states[-2]
        out2 = self.text_encoder_2(self._tokens(self.tokenizer_2, texts), output_hidden_states=True)
        seq = torch.cat([h1.float(), out2.hidden_states[-2].float()], dim=-1)  # [N, L, D]
        pooled = torch.zeros(len(texts), 1, seq.shape[-1], device=seq.device)
        pooled[:, 0, : self.pooled_dim] = out2.text_embeds.float()
        emb = torch.cat([seq, pooled], dim=1)
        empty = torch.tensor([t == "" for t in texts], device=emb.device)
        return torch.where(empty[:, None, None], torch.zeros_like(emb), emb)

    # --- noise prediction

    def time_ids(self, batch: int, dtype: torch.dtype) -> torch.Tensor:
        """[B, 6]: original size (H, W), crop top-left (0, 0), target size (H, W) — all image_size."""
        s = float(self.image_size)
        return torch.tensor([s, s, 0.0, 0.0, s, s], device=self.device, dtype=dtype).expand(batch, 6)

    def _model_output(self, net: torch.nn.Module, x_t: torch.Tensor, t: torch.Tensor,
                      embedding: torch.Tensor) -> torch.Tensor:
        seq, pooled = embedding[:, :-1], embedding[:, -1, : self.pooled_dim]
        added = {"text_embeds": pooled, "time_ids": self.time_ids(x_t.shape[0], x_t.dtype)}
        return net(x_t, t, encoder_hidden_states=seq, added_cond_kwargs=added, return_dict=False)[0]

"""DeepFloyd IF stage I as a pixel-space prior (64 px).

T5 text encoder + IF UNet, loaded like Stable Diffusion (hub id with the offline cache respected,
or a local diffusers folder; missing weights are a one-line `UserError`). No VAE: the prior's
input is the render itself, resized to 64 px and mapped to [−1, 1]. The IF UNet predicts ε and a
learned variance (6 output channels); only the first 3 (ε) are used. The IF repositories are
gated: accept the license on the model page and log in before downloading.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

import torch

from dreamer.devices import resolve_device, resolve_dtype
from dreamer.errors import UserError
from dreamer.priors._diffusers_common import (
    DiffusersPrior,
    freeze,
    load_part,
    resize_square,
    resolve_source,
    transformers_dtype_kwargs,
)

IF_MODELS: dict[str, str] = {
    "if-i-xl": "DeepFloyd/IF-I-XL-v1.0",
    "if-i-l": "DeepFloyd/IF-I-L-v1.0",
    "if-i-m": "DeepFloyd/IF-I-M-v1.0",
}
IF_SUBFOLDERS = ("scheduler", "text_encoder", "tokenizer", "unet")


@dataclass
class DeepFloydIFConfig:
    """Settings of a DeepFloyd IF stage-I prior."""

    model: str = "if-i-xl"  # if-i-xl | if-i-l | if-i-m, a hub id, or a local diffusers folder
    revision: str | None = None  # hub branch / tag / commit (None = main); ignored for local folders
    variant: str | None = None  # weight file variant, e.g. "fp16" (half-size download); None = full precision files
    dtype: Literal["auto", "fp32", "fp16", "bf16"] = "auto"  # network dtype; auto = fp16 on CUDA, fp32 on CPU
    image_size: int = 64  # side the render is resized to (stage I works at 64 px)
    max_length: int = 77  # T5 tokens per prompt (IF was trained with 77)
    local_files_only: bool | None = None  # never touch the network; None = True exactly when HF_HUB_OFFLINE is set
    cache_dir: str | None = None  # hub cache folder; None = the huggingface_hub default ($HF_HOME/hub)
    offload_text_encoder: bool = True  # keep T5 (~9 GB in fp16) on the CPU except while encoding prompts
    enable_attention_slicing: bool = False  # compute UNet attention in slices (less memory, a little slower)
    channels_last: bool = False  # UNet in channels_last memory format (often faster on CUDA)


def _load_deepfloyd_if(config: DeepFloydIFConfig, dtype: torch.dtype) -> dict[str, Any]:
    try:
        from diffusers import DDPMScheduler, UNet2DConditionModel
        from transformers import AutoTokenizer, T5EncoderModel
    except ImportError as exc:  # pragma: no cover - both are project dependencies
        raise UserError(f"the DeepFloyd IF prior needs diffusers and transformers: "
                        f"pip install diffusers transformers ({exc})") from exc

    src = resolve_source(
        "DeepFloyd IF", config.model, IF_MODELS, revision=config.revision, variant=config.variant,
        cache_dir=config.cache_dir, local_files_only=config.local_files_only, subfolders=IF_SUBFOLDERS,
        download_note=" (gated: accept the license on the model page and run `hf auth login` first)")
    variant = {"variant": config.variant} if config.variant else {}
    scheduler = load_part(src, "scheduler", DDPMScheduler.from_pretrained, "scheduler")
    unet = load_part(src, "UNet", UNet2DConditionModel.from_pretrained, "unet", torch_dtype=dtype, **variant)
    text_encoder = load_part(src, "text encoder", T5EncoderModel.from_pretrained, "text_encoder",
                             **transformers_dtype_kwargs(dtype), **variant)
    tokenizer = load_part(src, "tokenizer", AutoTokenizer.from_pretrained, "tokenizer")
    if len(tokenizer) < 16:
        raise UserError(f"the DeepFloyd IF tokenizer files are missing from {src.location}. {src.fix()}")
    return dict(tokenizer=tokenizer, text_encoder=text_encoder, unet=unet, scheduler=scheduler)


class DeepFloydIFPrior(DiffusersPrior):
    """A frozen DeepFloyd IF stage-I model behind the `Prior` contract (pixel space, [−1, 1])."""

    def __init__(self, config: DeepFloydIFConfig | None = None, device: str | torch.device = "auto"):
        super().__init__()
        config = config or DeepFloydIFConfig()
        device = resolve_device(device)
        dtype = resolve_dtype(config.dtype, device)
        parts = _load_deepfloyd_if(config, dtype)
        self._assemble(**parts, device=device, dtype=dtype, config=config)

    @classmethod
    def from_components(cls, tokenizer, text_encoder, unet, scheduler, image_size: int | None = None,
                        device: str | torch.device = "cpu", dtype: str | torch.dtype = "auto",
                        config: DeepFloydIFConfig | None = None) -> "DeepFloydIFPrior":
        """Build from constructed parts: an HF tokenizer, T5EncoderModel, UNet2DConditionModel
        (out_channels = 2 × in_channels for learned variance, or = in_channels), DDPMScheduler.
        image_size None = config.image_size (64)."""
        self = cls.__new__(cls)
        DiffusersPrior.__init__(self)
        device = resolve_device(device)
        config = config or DeepFloydIFConfig()
        if image_size is not None:
            config = replace(config, image_size=image_size)
        self._assemble(tokenizer=tokenizer, text_encoder=text_encoder, unet=unet, scheduler=scheduler,
                       device=device, dtype=resolve_dtype(dtype, device), config=config)
        return self

    def _assemble(self, *, tokenizer, text_encoder, unet, scheduler, device: torch.device, dtype: torch.dtype,
                  config: DeepFloydIFConfig) -> None:
        self.config = config
        self.model_dtype = dtype
        self.tokenizer = tokenizer
        self.scheduler = scheduler
        self.offload_text_encoder = bool(config.offload_text_encoder) and device.type != "cpu"
        self.text_encoder = text_encoder.to(device="cpu" if self.offload_text_encoder else device, dtype=dtype)
        self.unet = unet.to(device=device, dtype=dtype)
        freeze(self.text_encoder, self.unet)
        if config.enable_attention_slicing:
            self.unet.set_attention_slice("auto")
        if config.channels_last:
            self.unet.to(memory_format=torch.channels_last)
        self._set_schedule(scheduler, device)

        channels = int(self.unet.config.in_channels)
        if self.unet.config.out_channels not in (channels, 2 * channels):
            raise UserError(f"DeepFloyd IF UNet has {self.unet.config.out_channels} output channels for "
                            f"{channels} input channels: expected {channels} (ε) or {2 * channels} (ε + variance)")
        multiple = 2 ** (len(self.unet.config.block_out_channels) - 1)
        if config.image_size <= 0 or config.image_size % multiple:
            raise UserError(f"prior.image_size must be a positive multiple of {multiple}, got {config.image_size}")
        self.image_size = int(config.image_size)
        self.latent_shape = (channels, self.image_size, self.image_size)
        self.max_length = int(config.max_length)

    # --- text

    def _encode_texts(self, texts: list[str]) -> torch.Tensor:
        texts = [t.lower().strip() for t in texts]  # IF's own preprocessing without caption cleaning
        tokens = self.tokenizer(texts, padding="max_length", max_length=self.max_length, truncation=True,
                                add_special_tokens=True, return_tensors="pt")
        device = next(self.text_encoder.parameters()).device
        hidden = self.text_encoder(tokens.input_ids.to(device), attention_mask=tokens.attention_mask.to(device))[0]
        return hidden.float().to(self.device)  # [N, L, D]

    # --- images (pixel space)

    def encode_images(self, rgb: torch.Tensor) -> torch.Tensor:
        """[B,3,H,W] in [0,1] -> [B,3,image_size,image_size] in [−1,1], float32, differentiable."""
        assert rgb.ndim == 4 and rgb.shape[1] == 3, rgb.shape
        return resize_square(rgb.to(self.device).float(), self.image_size) * 2.0 - 1.0

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return ((z.float() + 1.0) / 2.0).clamp(0.0, 1.0)

    def _model_output(self, net: torch.nn.Module, x_t: torch.Tensor, t: torch.Tensor,
                      embedding: torch.Tensor) -> torch.Tensor:
        out = net(x_t, t, encoder_hidden_states=embedding, return_dict=False)[0]
        return out[:, : x_t.shape[1]]  # ε; the rest is the learned-variance interpolation

"""zeroscope / ModelScope text-to-video: a diffusers `UNet3DConditionModel` as a video prior.

One pipeline folder or hub id (e.g. cerspense/zeroscope_v2_576w) holds unet/ (UNet3DConditionModel),
vae/ (SD's AutoencoderKL), text_encoder/ + tokenizer/ (CLIP) and scheduler/, the same layout as
Stable Diffusion, so everything but the UNet is the SD prior's. The UNet takes sample
[B, C, F, h, w] and the text embedding once per clip ([B, L, D]: it repeats it per frame itself).
zeroscope_v2_576w was tuned at 576×320 on 24-frame clips; the prior's frames are square
(`image_size`, 320 by default) and its clips `num_frames` long.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dreamer.devices import resolve_device, resolve_dtype
from dreamer.priors._video_diffusers import LatentVideoPrior, check_num_frames, load_pipeline_parts
from dreamer.priors.stable_diffusion import StableDiffusionConfig

ZEROSCOPE_MODELS: dict[str, str] = {
    "zeroscope-576w": "cerspense/zeroscope_v2_576w",
    "modelscope": "ali-vilab/text-to-video-ms-1.7b",
}


@dataclass
class ZeroscopeConfig(StableDiffusionConfig):
    """Settings of the zeroscope prior; the fields mean what they mean for Stable Diffusion."""

    model: str = "zeroscope-576w"  # zeroscope-576w | modelscope, a hub id or a local pipeline folder
    image_size: int | None = 320  # side of the square frames the VAE sees (a multiple of 64; None = native)
    num_frames: int = 16  # F, frames per clip

    def __post_init__(self) -> None:
        check_num_frames("zeroscope", self.num_frames)


class ZeroscopePrior(LatentVideoPrior):
    """A frozen UNet3DConditionModel text-to-video model behind the VideoPrior contract."""

    def __init__(self, config: ZeroscopeConfig | None = None, device: str | torch.device = "auto"):
        torch.nn.Module.__init__(self)  # StableDiffusionPrior.__init__ would load a 2D UNet
        from diffusers import UNet3DConditionModel

        config = config or ZeroscopeConfig()
        device = resolve_device(device)
        dtype = resolve_dtype(config.dtype, device)
        parts = load_pipeline_parts("zeroscope", config, ZEROSCOPE_MODELS, dtype, UNet3DConditionModel)
        self._assemble(**parts, image_size=config.image_size, device=device, dtype=dtype, config=config)

    @classmethod
    def from_components(cls, tokenizer, text_encoder, vae, unet, scheduler, image_size: int | None = None,
                        device: str | torch.device = "cpu", dtype: str | torch.dtype = "auto",
                        config: ZeroscopeConfig | None = None) -> "ZeroscopePrior":
        """From constructed parts; `unet` is a UNet3DConditionModel."""
        return super().from_components(tokenizer, text_encoder, vae, unet, scheduler, image_size, device, dtype,
                                       config or ZeroscopeConfig(image_size=None))

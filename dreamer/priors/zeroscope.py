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
from typing import Any, ClassVar

import torch

from dreamer.priors._video_diffusers import LatentVideoPrior, check_num_frames
from dreamer.priors.stable_diffusion import StableDiffusionConfig, load_stable_diffusion

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

    config_class: ClassVar[type[StableDiffusionConfig]] = ZeroscopeConfig

    @classmethod
    def _load_parts(cls, config: ZeroscopeConfig, dtype: torch.dtype) -> dict[str, Any]:
        from diffusers import UNet3DConditionModel

        return load_stable_diffusion(config, dtype, unet_class=UNet3DConditionModel, family="zeroscope",
                                     aliases=ZEROSCOPE_MODELS)

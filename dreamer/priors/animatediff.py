"""AnimateDiff: Stable Diffusion 1.5 with a diffusers `MotionAdapter`, as a video prior.

The SD 1.5 parts load exactly as the `sd15` prior's (`stable_diffusion.load_stable_diffusion`:
hub id or local folder, offline cache, one-line errors); the motion adapter (a hub repository or
folder with config.json and weights at its top, e.g. guoyww/animatediff-motion-adapter-v1-5-2)
loads through the same `load_part`, and `UNetMotionModel.from_unet2d(unet, adapter)` assembles
the video UNet. diffusers 0.42's UNetMotionModel takes sample [B, C, F, h, w] and the text
embedding once per frame ([B·F, L, D], as AnimateDiffPipeline passes it); ε / v come from the SD
scheduler's `prediction_type`. The adapters were trained on 16-frame clips at 512 px.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from dreamer.errors import UserError
from dreamer.priors._diffusers_common import load_part, resolve_source
from dreamer.priors._video_diffusers import LatentVideoPrior, check_num_frames
from dreamer.priors.stable_diffusion import StableDiffusionConfig, load_stable_diffusion

MOTION_ADAPTERS: dict[str, str] = {
    "v1-5-2": "guoyww/animatediff-motion-adapter-v1-5-2",
    "v1-5-3": "guoyww/animatediff-motion-adapter-v1-5-3",
    "v1-5": "guoyww/animatediff-motion-adapter-v1-5",
}


@dataclass
class AnimateDiffConfig(StableDiffusionConfig):
    """Settings of the AnimateDiff prior; the Stable Diffusion fields name and load the SD 1.5 base."""

    model: str = "sd15"  # the SD 1.5 base: sd15, a hub id (e.g. runwayml/stable-diffusion-v1-5) or a local folder
    motion_adapter: str = "v1-5-2"  # v1-5-2 | v1-5-3 | v1-5, a hub id or a local folder saved by MotionAdapter
    image_size: int | None = 512  # side of the square frames the VAE sees (None = the UNet's native size)
    num_frames: int = 16  # F, the clip length the motion modules were trained on

    def __post_init__(self) -> None:
        check_num_frames("AnimateDiff", self.num_frames)
        if not str(self.motion_adapter).strip():
            raise UserError(f"AnimateDiff prior: motion_adapter is empty; pass an alias ({', '.join(MOTION_ADAPTERS)}), "
                            "a hub id or a local folder")
        if self.enable_attention_slicing:
            raise UserError("AnimateDiff prior: enable_attention_slicing is not available for diffusers' UNetMotionModel; "
                            "leave it off (use dtype=fp16 or fewer frames to save memory)")


def load_motion_adapter(config: AnimateDiffConfig, dtype: torch.dtype) -> Any:
    """The MotionAdapter from its hub id or folder (config.json + weights at the top); one-line UserError when missing."""
    from diffusers import MotionAdapter

    src = resolve_source("AnimateDiff motion adapter", config.motion_adapter, MOTION_ADAPTERS, revision=None,
                         variant=None, cache_dir=config.cache_dir, local_files_only=config.local_files_only,
                         subfolders=(), option="prior.motion_adapter")
    return load_part(src, "motion adapter", MotionAdapter.from_pretrained, "", torch_dtype=dtype)


def motion_unet(unet: Any, adapter: Any, config: AnimateDiffConfig) -> Any:
    """`UNetMotionModel.from_unet2d(unet, adapter)`; an adapter built for another UNet is a one-line UserError."""
    from diffusers import UNetMotionModel

    try:
        return UNetMotionModel.from_unet2d(unet, adapter)
    except ValueError as exc:  # diffusers: "Incompatible Motion Adapter, got different number of ..."
        raise UserError(f"the motion adapter {config.motion_adapter} does not fit the UNet of {config.model}: {exc} "
                        "(AnimateDiff v1-5 adapters go with Stable Diffusion 1.5)") from exc


class AnimateDiffPrior(LatentVideoPrior):
    """Stable Diffusion 1.5 + an AnimateDiff motion adapter behind the VideoPrior contract (unet: UNetMotionModel)."""

    text_per_frame: ClassVar[bool] = True
    config_class: ClassVar[type[StableDiffusionConfig]] = AnimateDiffConfig

    @classmethod
    def _load_parts(cls, config: AnimateDiffConfig, dtype: torch.dtype) -> dict[str, Any]:
        adapter = load_motion_adapter(config, dtype)  # first: a few hundred MB, before SD's few GB
        parts = load_stable_diffusion(config, dtype)
        parts["unet"] = motion_unet(parts["unet"], adapter, config)
        return parts

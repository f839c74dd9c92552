"""The contract every video prior fulfils: the image `Prior`'s, on clips.

A clip is [B, F, 3, H, W] in [0, 1] (F frames of one camera path). The methods keep the image
prior's names and meanings with a frame axis after the batch, so a guidance rule whose maths is
elementwise in z (SDS, ISM, TSM, ASD) runs on clips unchanged:

    encode_images(rgb [B, F, 3, H, W]) -> z [B, F, *latent_shape]   (differentiable)
    decode(z [B, F, *latent_shape]) -> [B, F, 3, H, W]
    predict_noise(x_t [B, F, *latent_shape], t [B], embedding [B, ...], camera) -> ε̂ like x_t

`camera` (when `camera_conditioned`) is the clip's B·F cameras, ordered clip by clip, each with its
frame time (`Camera.time`); see `dreamer.cameras.clip_cameras`. `num_frames` (config key
`prior.num_frames`) is the clip length the prior takes, by default the one it was trained on, and the
default of the 4D trainer's clip length `motion.frames` (`MotionTrainer.clip_frames`; all of a 4D run's
frame counts are listed in dreamer.trainer.four_d). Rules that fine-tune the prior's network (VSD, ESD)
do not run on clips: `network()` says so in one line.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from dreamer.errors import UserError
from dreamer.priors.base import Prior


class VideoPrior(Prior):
    """A frozen text-conditioned video diffusion model (see the module docstring for the shapes)."""

    is_video: ClassVar[bool] = True
    fixed_frames: ClassVar[bool] = False  # True: takes clips of exactly `num_frames` frames (config key num_frames)
    num_frames: int = 8  # the clip length F it was trained on

    def network(self) -> torch.nn.Module:
        raise UserError(f"the {type(self).__name__} is a video prior: VSD and ESD fine-tune an image network and "
                        "do not run on clips; use sds, video-sds, ism, tsm or asd")

    def check_clip(self, x: torch.Tensor) -> None:
        """A one-line error unless `x` is a batch of clips [B, F, C, h, w]."""
        if x.ndim != 5:
            raise UserError(f"the {type(self).__name__} takes clips [B, F, C, H, W]; got a tensor of shape "
                            f"{tuple(x.shape)} (an image prior takes single frames)")

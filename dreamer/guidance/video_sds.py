"""Video SDS (4D-fy, Align Your Gaussians): SDS on clips of a video prior, with motion amplification.

The gradient is SDS's, g = w(t)·(ε̂ − ε), on clip latents [B, F, C, h, w] with one t per clip. The
guided prediction is first motion-amplified: ε̂ ← mean_F ε̂ + k·(ε̂ − mean_F ε̂) (`functional.amplify_motion`),
which pushes the frames apart where the prior wants them to differ and fights the "static statue"
failure of video SDS. The other weapon against it, a motion-averse negative prompt ("static,
motionless, …", 4D-fy), is the run's `negative_prompt`: the 4D presets set it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dreamer.cameras import Camera
from dreamer.errors import UserError
from dreamer.guidance import functional as F
from dreamer.guidance.base import GuidanceOutput
from dreamer.guidance.sds import SDS, SDSConfig
from dreamer.priors.base import Prior, PromptEmbedding


@dataclass
class VideoSDSConfig(SDSConfig):
    """Settings of video SDS: SDS's, plus the motion amplification."""

    motion_amplification: float = 1.0  # k: ε̂ ← mean over frames + k·(ε̂ − mean); 1 = off (AYG uses > 1)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.motion_amplification < 0:
            raise UserError(f"video-sds.motion_amplification must be >= 0, got {self.motion_amplification}")

    @property
    def takes_images(self) -> bool:
        return False


class VideoSDS(SDS):
    """SDS over clips; needs a video prior."""

    def __init__(self, config: VideoSDSConfig, prior: Prior, total_steps: int, generator: torch.Generator):
        if not prior.is_video:
            raise UserError(f"video-sds needs a video prior (reference-video, animatediff, zeroscope); "
                            f"'{type(prior).__name__}' takes single images: use sds")
        super().__init__(config, prior, total_steps, generator)

    def adjust_prediction(self, eps_cfg: torch.Tensor) -> torch.Tensor:
        return F.amplify_motion(eps_cfg, self.config.motion_amplification)

    def forward(self, images: torch.Tensor, embedding: PromptEmbedding, cameras: Camera,
                step: int, depth: torch.Tensor | None = None, alpha: torch.Tensor | None = None) -> GuidanceOutput:
        """images: clips [B, F, H, W, 3]; cameras: their B·F cameras with frame times; alpha [B, F, H, W, 1]."""
        if images.ndim != 5:
            raise UserError(f"video-sds takes clips [B, F, H, W, 3]; got renders of shape {tuple(images.shape)}")
        return super().forward(images, embedding, cameras, step, depth, alpha)

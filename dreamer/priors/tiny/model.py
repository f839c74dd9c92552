"""The network of the `tiny` prior: a small diffusers UNet2DConditionModel in pixel space.

Inputs: x_t [B, 3, S, S] (pixels in [−1, 1], noised), t [B], token embeddings [B, L, 384]
(all-MiniLM-L6-v2, attended by cross-attention blocks at the lower resolutions) and camera
features [B, 6] added to the time embedding through the UNet's `class_embed_type="projection"`
MLP (Linear → SiLU → Linear into the time-embedding width), and optionally (`pooled_text`) an
attention-pooled summary of the token embeddings added there too:

    camera_features(az, el, d) = (sin az, cos az, sin el, cos el, (d − 2.8) / 0.4, 1)
    no camera (dropout / camera-free)    = (0, 0, 0, 0, 0, 0)

The last entry flags "a camera is given"; the all-zero vector is the learned "no camera" input
(the MLP's biases make its embedding a learned constant). Output: v-prediction,
v = α_t ε − σ_t x0 (ε̂ = σ_t x_t + α_t v̂; the conversions live in dreamer.priors.schedule).

The multi-view layout (`tiny-mv`, dreamer.priors.tiny.multiview) adds three things, each off in
`tiny`'s config: `camera_fov` appends (fovy − 42.5) / 5 to the camera features; `ray_channels` = 6
concatenates a per-pixel Plücker raymap (o × d, d) in the world frame to x_t; `cross_view` makes
every self-attention layer attend over all V views of a sample (V = `num_views`, passed per call).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from dreamer.errors import UserError
from dreamer.priors.tiny.text import TEXT_DIM

CAMERA_DIM = 6
DISTANCE_CENTRE = 2.8  # camera distance mapped to 0 in the features
DISTANCE_SCALE = 0.4  # distance offset mapped to ±1
FOV_CENTRE = 42.5  # field of view (degrees) mapped to 0 in the features (camera_fov layouts)
FOV_SCALE = 5.0  # field-of-view offset (degrees) mapped to ±1


@dataclass
class TinyUNetConfig:
    """Architecture of the tiny prior's UNet (stored in the weights folder's config.json)."""

    image_size: int = 32  # side of the square images, pixels
    block_out_channels: tuple[int, ...] = (32, 64, 128)  # channels per resolution level (32, 16, 8 px at 32 px)
    # levels with self + cross-attention blocks (the mid block always has one); reading the text at 16 px as
    # well as 8 px raised the shipped prior's sample shape accuracy from 0.68 to 0.78 (docs/tiny-prior.md)
    cross_attention: tuple[bool, ...] = (False, True, True)
    # levels whose attention blocks read only the text (diffusers' only_cross_attention: cross-attention
    # without self-attention over the pixels); None = none. Measured, not shipped: at 32 px it costs about
    # as much as full attention there, ~30 % more per CFG evaluation (docs/benchmarks.md)
    text_only_attention: tuple[bool, ...] | None = None
    layers_per_block: int = 1  # ResNet blocks per level on the way down (the way up has one more)
    attention_head_dim: int = 32  # channels per attention head
    norm_num_groups: int = 32  # GroupNorm groups (must divide every channel count)
    text_dim: int = TEXT_DIM  # width of the token embeddings (MiniLM: 384)
    camera_dim: int = CAMERA_DIM  # width of the camera features
    # also add an attention-pooled summary of the prompt to the time embedding (diffusers'
    # addition_embed_type="text"), so every ResNet block — the 32 px ones too — sees the prompt
    pooled_text: bool = False
    camera_fov: bool = False  # append the field of view to the camera features (camera_dim 7)
    ray_channels: int = 0  # 0, or 6: a Plücker raymap (o × d, d) per pixel concatenated to x_t
    cross_view: bool = False  # self-attention runs over the V views of a sample together

    def __post_init__(self) -> None:
        if self.ray_channels not in (0, 6):
            raise UserError(f"tiny model: ray_channels must be 0 or 6, got {self.ray_channels}")
        if self.camera_fov and self.camera_dim != CAMERA_DIM + 1:
            self.camera_dim = CAMERA_DIM + 1
        self.block_out_channels = tuple(int(c) for c in self.block_out_channels)
        self.cross_attention = tuple(bool(c) for c in self.cross_attention)
        if len(self.block_out_channels) != len(self.cross_attention):
            raise UserError("tiny model: block_out_channels and cross_attention need one entry per level")
        if self.text_only_attention is not None:
            self.text_only_attention = tuple(bool(c) for c in self.text_only_attention)
            if len(self.text_only_attention) != len(self.cross_attention):
                raise UserError("tiny model: text_only_attention needs one entry per level")
            if any(t and not c for t, c in zip(self.text_only_attention, self.cross_attention)):
                raise UserError("tiny model: a text_only_attention level needs cross_attention there too")
        if any(c % self.norm_num_groups for c in self.block_out_channels):
            raise UserError(f"tiny model: norm_num_groups {self.norm_num_groups} must divide every channel count")
        if self.image_size % (2 ** (len(self.block_out_channels) - 1)):
            raise UserError("tiny model: image_size must be divisible by 2^(levels − 1)")

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d = {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}
        if d["text_only_attention"] is None:  # config.json of the usual layouts stays as it was
            del d["text_only_attention"]
        for key, off in (("camera_fov", False), ("ray_channels", 0), ("cross_view", False)):
            if d[key] == off:  # the single-view layout's config.json stays as it was
                del d[key]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TinyUNetConfig":
        return cls(**d)


def build_unet(config: TinyUNetConfig):
    """A freshly initialised UNet2DConditionModel (float32) for `config`."""
    from diffusers import UNet2DConditionModel

    down = tuple("CrossAttnDownBlock2D" if a else "DownBlock2D" for a in config.cross_attention)
    up = tuple("CrossAttnUpBlock2D" if a else "UpBlock2D" for a in reversed(config.cross_attention))
    heads = tuple(max(1, c // config.attention_head_dim) for c in config.block_out_channels)
    unet = UNet2DConditionModel(
        sample_size=config.image_size,
        in_channels=3 + config.ray_channels,
        out_channels=3,
        down_block_types=down,
        up_block_types=up,
        mid_block_type="UNetMidBlock2DCrossAttn",
        block_out_channels=config.block_out_channels,
        layers_per_block=config.layers_per_block,
        norm_num_groups=config.norm_num_groups,
        cross_attention_dim=config.text_dim,
        attention_head_dim=heads,  # diffusers' legacy name: this is the number of heads per level
        class_embed_type="projection",
        projection_class_embeddings_input_dim=config.camera_dim,
        only_cross_attention=list(config.text_only_attention) if config.text_only_attention else False,
        mid_block_only_cross_attention=False,
        addition_embed_type="text" if config.pooled_text else None,
        addition_embed_type_num_heads=max(1, config.text_dim // 64),
    )
    if config.cross_view:
        from dreamer.priors.tiny.multiview import use_cross_view_attention

        use_cross_view_attention(unet)
    return unet


def camera_features(spherical: torch.Tensor | None, batch: int, device=None, dtype=torch.float32,
                    fovy: torch.Tensor | None = None) -> torch.Tensor:
    """[B, 6] features of cameras given as [B, 3] (azimuth°, elevation°, distance); None -> zeros.

    With `fovy` [B] (degrees) a seventh feature, (fovy − 42.5) / 5, follows (the camera_fov layouts)."""
    width = CAMERA_DIM + (fovy is not None)
    if spherical is None:
        return torch.zeros(batch, width, device=device, dtype=dtype)
    assert spherical.shape == (batch, 3), (tuple(spherical.shape), batch)
    az, el = torch.deg2rad(spherical[:, 0].float()), torch.deg2rad(spherical[:, 1].float())
    dist = (spherical[:, 2].float() - DISTANCE_CENTRE) / DISTANCE_SCALE
    columns = [az.sin(), az.cos(), el.sin(), el.cos(), dist, torch.ones_like(dist)]
    if fovy is not None:
        columns.append((fovy.to(dist.device).float() - FOV_CENTRE) / FOV_SCALE)
    feats = torch.stack(columns, dim=-1)
    return feats.to(device=device if device is not None else spherical.device, dtype=dtype)


def drop_cameras(features: torch.Tensor, drop: torch.Tensor) -> torch.Tensor:
    """Zero the features of the rows where `drop` [B] is True (camera dropout)."""
    return torch.where(drop[:, None], torch.zeros_like(features), features)


def move(unet: torch.nn.Module, device, dtype: torch.dtype) -> torch.nn.Module:
    """`unet` on `device` in `dtype`; the dtype cast only when it changes (diffusers warns on every cast)."""
    unet = unet.to(device)
    if next(unet.parameters()).dtype != dtype:
        unet = unet.to(dtype)
    return unet


def count_parameters(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def network_call(net: torch.nn.Module, config: TinyUNetConfig, x_t: torch.Tensor, t: torch.Tensor,
                 text: torch.Tensor, camera, views: int = 1, *, drop: torch.Tensor | None = None,
                 spherical: torch.Tensor | None = None, dtype: torch.dtype | None = None) -> torch.Tensor:
    """`net`'s raw output for x_t [B, 3, S, S], t [B], text [B, L, D] and `camera` (a Camera of B, or None =
    no camera), with the inputs layout `config` asks for: camera features (+ field of view), the raymap
    channels, and `views` per sample for cross-view attention (B must be a multiple of it). `drop` [B]:
    camera dropout rows; `spherical` [B, 3]: the cameras' coordinates when given as numbers (training)."""
    from dreamer.priors.tiny.lifted import LiftedDenoiser
    from dreamer.priors.tiny.multiview import camera_conditioning

    dtype = dtype or next(net.parameters()).dtype
    if isinstance(net, LiftedDenoiser):  # `tiny-3d`: renders its estimate at the cameras (no camera dropout)
        return net(x_t.to(dtype), t, text.to(dtype), camera, int(views))
    device = x_t.device
    feats, rays = camera_conditioning(config, camera, x_t.shape[0], device, dtype, drop, spherical)
    x_in = x_t.to(dtype) if rays is None else torch.cat([x_t.to(dtype), rays], dim=1)
    kwargs = {"cross_attention_kwargs": {"num_views": int(views)}} if config.cross_view else {}
    return net(x_in, t, encoder_hidden_states=text.to(dtype), class_labels=feats, **kwargs).sample

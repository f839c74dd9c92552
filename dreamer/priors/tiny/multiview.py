"""The multi-view parts of the `tiny-mv` prior: cross-view self-attention and per-pixel raymaps.

Cross-view attention (MVDream's "3D self-attention"): a batch holds samples of V views each, set by
set ([s0v0, s0v1, …, s1v0, …]); every self-attention layer reshapes its tokens (B·V, L, C) to
(B, V·L, C), so each pixel of a view attends to the pixels of all V views of its sample, then
reshapes back. The layer's weights are the single-view ones, so with V = 1 the network is exactly
the single-view network. Cross-attention to the text is unchanged. V reaches the processors as
`cross_attention_kwargs={"num_views": V}` on each UNet call.

Raymap: the Plücker coordinates (o × d, d) of each pixel's ray in the world frame, [B, 6, S, S],
concatenated to x_t (CAT3D, LGM); zeros for a dropped camera.
"""

from __future__ import annotations

import torch

from dreamer.cameras import Camera, camera_rays


class CrossViewAttnProcessor:
    """diffusers attention processor: self-attention over all views of a sample, cross-attention as usual."""

    def __init__(self) -> None:
        from diffusers.models.attention_processor import AttnProcessor2_0

        self.inner = AttnProcessor2_0()

    def __call__(self, attn, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor | None = None,
                 attention_mask: torch.Tensor | None = None, temb: torch.Tensor | None = None,
                 num_views: int = 1) -> torch.Tensor:
        if encoder_hidden_states is not None or num_views == 1:
            return self.inner(attn, hidden_states, encoder_hidden_states, attention_mask, temb)
        bv, length, channels = hidden_states.shape
        if bv % num_views:
            raise ValueError(f"a batch of {bv} is not a whole number of {num_views}-view sets")
        joint = hidden_states.reshape(bv // num_views, num_views * length, channels)
        out = self.inner(attn, joint, None, attention_mask, temb)
        return out.reshape(bv, length, out.shape[-1])


def use_cross_view_attention(unet: torch.nn.Module) -> None:
    """Give every attention layer of a diffusers UNet the cross-view processor."""
    unet.set_attn_processor(CrossViewAttnProcessor())


def plucker_raymap(camera: Camera, size: int) -> torch.Tensor:
    """[B, 6, size, size] float32 Plücker coordinates (o × d, d) of the cameras' pixel rays, world frame."""
    origins, dirs = camera_rays(camera.with_resolution(size))  # [B, S, S, 3] each
    moment = torch.cross(origins, dirs, dim=-1)
    return torch.cat([moment, dirs], dim=-1).permute(0, 3, 1, 2).float().contiguous()


def widen_state_dict(target: dict[str, torch.Tensor], source: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """`target`'s tensors with `source`'s values copied in: tensors wider than the source's in their
    second axis (conv_in's ray channels, the camera MLP's field-of-view column) keep the source in
    their leading slice and zeros after it, so the widened network starts as the source network.
    Every source tensor must fit; tensors only the target has (none today) keep their values."""
    out = {}
    for name, value in target.items():
        if name not in source:
            out[name] = value
            continue
        src = source[name].to(value.dtype)
        if src.shape == value.shape:
            out[name] = src.clone()
        elif src.ndim == value.ndim and src.ndim >= 2 and src.shape[0] == value.shape[0] \
                and src.shape[2:] == value.shape[2:] and src.shape[1] < value.shape[1]:
            wide = torch.zeros_like(value)
            wide[:, : src.shape[1]] = src
            out[name] = wide
        else:
            raise ValueError(f"cannot start {name} {tuple(value.shape)} from {tuple(src.shape)}")
    return out


def camera_conditioning(config, camera: Camera | None, batch: int, device, dtype: torch.dtype,
                        drop: torch.Tensor | None = None, spherical: torch.Tensor | None = None,
                        ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The camera inputs of a tiny UNet with layout `config` (TinyUNetConfig) for `camera` (B cameras, or
    None = no camera): (class labels [B, camera_dim], raymap [B, 6, S, S] or None when the layout has
    none). Rows where `drop` [B] is True get the "no camera" zeros in both (camera dropout).
    `spherical` [B, 3] (training: the drawn azimuth, elevation, distance) replaces camera.spherical()."""
    from dreamer.priors.tiny.model import camera_features, drop_cameras

    if camera is not None and len(camera) != batch:
        raise ValueError(f"{len(camera)} cameras for a batch of {batch}")
    sph = spherical if spherical is not None else (camera.spherical().float() if camera is not None else None)
    if config.camera_fov and sph is not None and camera is None:
        raise ValueError("a camera_fov layout needs the Camera (its field of view), not only spherical coordinates")
    if sph is None:  # no camera: the learned "no camera" zeros
        feats = torch.zeros(batch, config.camera_dim)
    else:
        fovy = camera.fovy.float().cpu() if config.camera_fov else None
        feats = camera_features(sph.float().cpu(), batch, fovy=fovy)
    rays = None
    if config.ray_channels:
        rays = plucker_raymap(camera.to("cpu"), config.image_size) if camera is not None else \
            torch.zeros(batch, config.ray_channels, config.image_size, config.image_size)
    if drop is not None:
        feats = drop_cameras(feats, drop.cpu())
        if rays is not None:
            rays = torch.where(drop.cpu()[:, None, None, None], torch.zeros_like(rays), rays)
    return feats.to(device, dtype), (rays.to(device, dtype) if rays is not None else None)

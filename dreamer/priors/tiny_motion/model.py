"""The network of the `tiny-motion` prior: the frozen `tiny` UNet turned into a video UNet.

diffusers' `UNetMotionModel.from_unet2d` takes the image UNet's weights and interleaves a
`MotionAdapter`'s temporal transformers (attention over the frames at each pixel) after every
ResNet/attention pair. Two things of ours go around it:

* **the camera.** `from_unet2d` drops the image UNet's class embedding, which is how `tiny` reads its
  camera (`dreamer.priors.tiny.model`: six features into a projection MLP added to the time
  embedding). `ClipEmbedding` puts it back: it replaces the motion UNet's `time_embedding` and
  reads the clip's camera features (its first frame's camera) through `timestep_cond`, which
  diffusers hands to the time embedding untouched, once per clip before repeating it per frame.
* **the motion words.** The temporal transformers take no text (diffusers' motion modules have no
  cross-attention), and the frozen image layers were trained on prompts without motion words. So
  `ClipEmbedding` also adds a projection of the prompt's mean token embedding to the time
  embedding, which every ResNet block reads: "bouncing" and "spinning" reach the whole network.
  That path is indirect (the frozen ResNets turn it into channel offsets), so `TemporalTextBias` also
  adds a projection of the same pooled prompt to every temporal transformer's tokens, right after
  its input projection: the layers that decide how frames move read which motion was asked for.

All new paths start at zero: the temporal transformers' output projections (`proj_out`) and the
text projections. At zero the network equals the image UNet frame by frame (tested), so training
starts from what `tiny` already draws and learns only how frames move.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass

import torch

from dreamer.errors import UserError


@dataclass
class MotionLayersConfig:
    """The temporal layers added to the image UNet (stored in the weights folder's config.json)."""

    heads: tuple[int, ...] = (1, 2, 4)  # attention heads per resolution level (32-channel heads at 32, 64, 128)
    max_frames: int = 32  # longest clip the sinusoidal frame positions cover
    mid_block: bool = True  # a temporal transformer in the mid block too
    text_to_time: bool = True  # the prompt's mean token embedding projected into the time embedding
    text_to_temporal: bool = True  # ... and added to every temporal transformer's tokens (TemporalTextBias)

    def __post_init__(self) -> None:
        self.heads = tuple(int(h) for h in self.heads)
        if not self.heads or min(self.heads) < 1 or self.max_frames < 2:
            raise UserError("tiny-motion model: heads must be positive (one per level) and max_frames >= 2")

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["heads"] = list(self.heads)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "MotionLayersConfig":
        return cls(**{"text_to_temporal": False, **d})  # weights saved before the option had none


class PromptContext:
    """The pooled prompt of the clips in the current call, [B, D]: ClipEmbedding sets it at the start of
    every UNet call (diffusers gives the temporal transformers no text), TemporalTextBias reads it."""

    def __init__(self) -> None:
        self.pooled: torch.Tensor | None = None


class TemporalTextBias(torch.nn.Module):
    """A per-clip offset, linear in the pooled prompt, added to a temporal transformer's tokens after its
    input projection (a forward hook on `proj_in`, so the transformer's own weights keep their names).
    diffusers lays the tokens out as [B·H·W, F, C], clip-major. Starts at zero."""

    def __init__(self, proj_in: torch.nn.Linear, text_dim: int, context: PromptContext) -> None:
        super().__init__()
        self.projection = torch.nn.Linear(text_dim, proj_in.out_features)
        torch.nn.init.zeros_(self.projection.weight)
        torch.nn.init.zeros_(self.projection.bias)
        self.context = context
        proj_in.register_forward_hook(self._add)

    def _add(self, _module, _inputs, tokens: torch.Tensor) -> torch.Tensor:
        pooled = self.context.pooled
        if pooled is None:
            raise ValueError("TemporalTextBias needs the clips' pooled prompt (set by ClipEmbedding)")
        offset = self.projection(pooled.to(tokens.dtype))  # [B, C]
        return tokens + offset.repeat_interleave(tokens.shape[0] // offset.shape[0], dim=0)[:, None, :]


class ClipEmbedding(torch.nn.Module):
    """time embedding + camera embedding (+ projected prompt) of each clip; diffusers calls it as
    `time_embedding(t_emb, timestep_cond)` with `timestep_cond` = [B, camera_dim (+ text_dim)]."""

    def __init__(self, time_embedding: torch.nn.Module, camera_embedding: torch.nn.Module, camera_dim: int,
                 text_dim: int | None, text_to_time: bool = True) -> None:
        super().__init__()
        self.time_embedding = time_embedding
        self.camera_embedding = camera_embedding
        self.camera_dim = camera_dim
        self.reads_text = bool(text_dim)  # timestep_cond carries the pooled prompt after the camera
        self.prompt = PromptContext()
        width = time_embedding.linear_2.out_features
        self.text_projection = None
        if text_dim and text_to_time:
            self.text_projection = torch.nn.Linear(text_dim, width)
            torch.nn.init.zeros_(self.text_projection.weight)
            torch.nn.init.zeros_(self.text_projection.bias)

    def forward(self, t_emb: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        if condition is None:
            raise ValueError("ClipEmbedding needs the clip's camera features (timestep_cond)")
        emb = self.time_embedding(t_emb)
        camera = condition[:, :self.camera_dim].to(emb.dtype)
        emb = emb + self.camera_embedding(camera)
        pooled = condition[:, self.camera_dim:] if self.reads_text else None
        self.prompt.pooled = pooled
        if self.text_projection is not None:
            emb = emb + self.text_projection(pooled.to(emb.dtype))
        return emb


def motion_adapter(image_unet, config: MotionLayersConfig):
    """A fresh diffusers MotionAdapter shaped for `image_unet` (one temporal layer per ResNet)."""
    from diffusers import MotionAdapter

    levels = len(image_unet.config.block_out_channels)
    if len(config.heads) != levels:
        raise UserError(f"tiny-motion model: heads needs one entry per level ({levels}), got {list(config.heads)}")
    groups = image_unet.config.norm_num_groups
    return MotionAdapter(block_out_channels=tuple(image_unet.config.block_out_channels),
                         motion_layers_per_block=image_unet.config.layers_per_block,
                         motion_num_attention_heads=config.heads, motion_norm_num_groups=groups,
                         motion_max_seq_length=config.max_frames, use_motion_mid_block=config.mid_block)


def build_motion_unet(image_unet, config: MotionLayersConfig, adapter=None):
    """The video UNet: `image_unet`'s weights (copied), `adapter`'s temporal layers (a fresh one with zero
    output projections when None) and a ClipEmbedding carrying `image_unet`'s camera embedding."""
    from diffusers import UNetMotionModel

    if getattr(image_unet.config, "class_embed_type", None) != "projection":
        raise UserError("tiny-motion model: the image UNet must read its camera through a projection class embedding")
    if getattr(image_unet.config, "addition_embed_type", None):
        raise UserError("tiny-motion model: image UNets with a pooled-text embedding are not supported")
    fresh = adapter is None
    adapter = motion_adapter(image_unet, config) if fresh else adapter
    from diffusers.utils import logging as diffusers_logging

    level = diffusers_logging.get_verbosity()
    diffusers_logging.set_verbosity_error()  # from_unet2d casts to the UNet's dtype and warns about it
    try:
        unet = UNetMotionModel.from_unet2d(image_unet, adapter)
    finally:
        diffusers_logging.set_verbosity(level)
    if fresh:
        zero_motion_outputs(unet)
    camera = copy.deepcopy(image_unet.class_embedding)
    text_dim = image_unet.config.cross_attention_dim if (config.text_to_time or config.text_to_temporal) else None
    embedding = ClipEmbedding(unet.time_embedding, camera, image_unet.config.projection_class_embeddings_input_dim,
                              text_dim, config.text_to_time)
    unet.time_embedding = embedding
    if config.text_to_temporal:
        unet.temporal_text = torch.nn.ModuleList(
            TemporalTextBias(module.proj_in, text_dim, embedding.prompt) for module in motion_modules(unet))
    return unet


def zero_motion_outputs(unet) -> None:
    """Zero every temporal transformer's output projection (each then adds nothing to its input)."""
    for module in motion_modules(unet):
        torch.nn.init.zeros_(module.proj_out.weight)
        torch.nn.init.zeros_(module.proj_out.bias)


def motion_modules(unet) -> list[torch.nn.Module]:
    """The temporal transformers of a UNetMotionModel (down, mid and up blocks)."""
    blocks = [*unet.down_blocks, *unet.up_blocks] + ([unet.mid_block] if unet.mid_block is not None else [])
    found = []
    for block in blocks:
        for module in getattr(block, "motion_modules", []) or []:
            found.append(module)
    return found


def trainable_module(unet) -> torch.nn.Module:
    """What training changes, as one module sharing `unet`'s parameters: the temporal transformers and the
    text projection (the image layers stay frozen). Its state dict is what the weights folder ships."""
    parts = torch.nn.ModuleDict({"temporal": torch.nn.ModuleList(motion_modules(unet))})
    if unet.time_embedding.text_projection is not None:
        parts["text_projection"] = unet.time_embedding.text_projection
    if getattr(unet, "temporal_text", None) is not None:
        parts["temporal_text"] = unet.temporal_text
    return parts


def pooled_text(tokens: torch.Tensor) -> torch.Tensor:
    """[B, L, D] token embeddings -> [B, D] their mean (what the text projection reads)."""
    return tokens.float().mean(dim=1)


def clip_call(unet, x_t: torch.Tensor, t: torch.Tensor, text: torch.Tensor, camera_features: torch.Tensor,
              dtype: torch.dtype | None = None) -> torch.Tensor:
    """The video UNet's raw output [B, F, 3, S, S] for clips x_t [B, F, 3, S, S], t [B], token embeddings
    [B, L, D] and per-clip camera features [B, camera_dim] (zeros = no camera)."""
    dtype = dtype or next(unet.parameters()).dtype
    condition = camera_features.to(x_t.device, torch.float32)
    if unet.time_embedding.reads_text:
        condition = torch.cat([condition, pooled_text(text).to(condition.device)], dim=1)
    sample = x_t.to(dtype).permute(0, 2, 1, 3, 4)  # diffusers' video layout [B, C, F, H, W]
    per_frame = text.to(dtype).repeat_interleave(x_t.shape[1], dim=0)  # diffusers' pipelines pass one per frame
    out = unet(sample, t, encoder_hidden_states=per_frame, timestep_cond=condition.to(dtype)).sample
    return out.permute(0, 2, 1, 3, 4)

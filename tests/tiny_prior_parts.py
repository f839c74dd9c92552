"""A fresh, untrained 16 px `tiny` prior built in code (a test helper, not a test module).

Shared by test_prior_tiny.py and test_guidance_rules.py (VSD/ESD need a network prior): the project's
own pixel-space diffusers UNet at 16 px with a deterministic stand-in for the MiniLM text encoder.
"""

from __future__ import annotations

import zlib

import torch

from dreamer.priors.tiny.model import TinyUNetConfig, build_unet
from dreamer.priors.tiny.prior import TinyPrior
from dreamer.priors.tiny.text import DEFAULT_MAX_LENGTH, TEXT_DIM
from dreamer.priors.tiny.weights import TinyModelInfo

TINY_UNET = TinyUNetConfig(image_size=16, block_out_channels=(8, 16), cross_attention=(False, True),
                           attention_head_dim=8, norm_num_groups=4)


class HashEncoder:
    """Deterministic stand-in for MiniLM: a fixed random [L, 384] per text (CRC of the text)."""

    dim = TEXT_DIM

    def __init__(self, max_length: int = DEFAULT_MAX_LENGTH) -> None:
        self.max_length = max_length

    def __call__(self, texts):
        out = [torch.randn(self.max_length, self.dim, generator=torch.Generator().manual_seed(zlib.crc32(t.encode())))
               for t in texts]
        return torch.stack(out) if out else torch.zeros(0, self.max_length, self.dim)


def fresh_tiny_prior(seed: int = 0) -> TinyPrior:
    """An untrained tiny prior (random UNet weights drawn after torch.manual_seed(seed))."""
    torch.manual_seed(seed)
    return TinyPrior(unet=build_unet(TINY_UNET), info=TinyModelInfo(unet=TINY_UNET), encoder=HashEncoder())


# the multi-view layout of `tiny-mv` at test size: cross-view attention, raymap, field of view
TINY_MV_UNET = TinyUNetConfig(image_size=16, block_out_channels=(8, 16), cross_attention=(False, True),
                              attention_head_dim=8, norm_num_groups=4, camera_fov=True, ray_channels=6,
                              cross_view=True)


def fresh_tiny_mv_prior(seed: int = 0, views: int = 4) -> TinyPrior:
    """An untrained multi-view tiny prior taking sets of `views` views."""
    torch.manual_seed(seed)
    info = TinyModelInfo(unet=TINY_MV_UNET, data={"views_per_set": views})
    return TinyPrior(unet=build_unet(TINY_MV_UNET), info=info, encoder=HashEncoder())


def train_straight_and_resumed(config, tmp_path):
    """Train `config` in one go into tmp_path/a and in two sessions (stopped after 2 steps) into tmp_path/b;
    assert both end at the same step with the same weights. Returns (network a, its TinyModelInfo)."""
    from dreamer.priors.tiny.train import TinyTrainConfig, train
    from dreamer.priors.tiny.weights import load_weights

    straight = train(config, tmp_path / "a", progress=False, encoder=HashEncoder(), command="test")
    train(TinyTrainConfig(**{**config.__dict__, "steps": 2}), tmp_path / "b", progress=False, encoder=HashEncoder(),
          command="test")
    resumed = train(config, tmp_path / "b", progress=False, encoder=HashEncoder(), command="test")
    assert (straight.step, resumed.resumed_from) == (config.steps, 2)
    a, info = load_weights(tmp_path / "a")
    b, _ = load_weights(tmp_path / "b")
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(va, vb), k
    return a, info

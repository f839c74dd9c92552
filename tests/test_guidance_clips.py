"""Guidance rules on clips [B, F, H, W, 3] with a video prior (issue 22, section 5).

Rules whose maths is elementwise in z (SDS, ISM, TSM, ASD, video SDS) run on clips; VSD and ESD
(a LoRA of an image network) fail with one line. Video SDS adds motion amplification.
"""

from __future__ import annotations

import pytest
import torch

from dreamer import registry
from dreamer.cameras import clip_cameras, frame_times, sample_orbit, OrbitConfig
from dreamer.errors import UserError
from dreamer.guidance import functional as F
from fakes import FakePixelPrior, FakeVideoPrior

B, FRAMES, SIZE = 2, 4, 8
CLIP_RULES = sorted(n for n in registry.GUIDANCES if registry.default_config("guidance", n).takes_clips)
IMAGE_ONLY = sorted(n for n in registry.GUIDANCES if not registry.default_config("guidance", n).takes_clips)


def _rule(name, prior, **changes):
    config = registry.default_config("guidance", name)
    for key, value in changes.items():
        setattr(config, key, value)
    return registry.component_class("guidance", name)(config, prior, 100, torch.Generator().manual_seed(0))


def _clip(seed=0):
    g = torch.Generator().manual_seed(seed)
    cams = sample_orbit(B, OrbitConfig(), SIZE, generator=g)
    cams = clip_cameras(cams, frame_times(FRAMES, 0.25))
    images = torch.rand(B, FRAMES, SIZE, SIZE, 3, generator=g).requires_grad_(True)
    return images, cams


def test_the_capability_table():
    assert {"sds", "ism", "tsm", "asd", "video-sds"} <= set(CLIP_RULES)
    assert set(IMAGE_ONLY) == {"vsd", "esd"}
    assert not registry.default_config("guidance", "video-sds").takes_images


@pytest.mark.parametrize("name", CLIP_RULES)
def test_rule_runs_on_clips(name):
    prior = FakeVideoPrior(SIZE, FRAMES, camera_conditioned=True)
    rule = _rule(name, prior)
    images, cams = _clip()
    emb = prior.encode_prompt("a red cube bouncing", "static")
    kwargs = {"depth": torch.rand(B, FRAMES, SIZE, SIZE, 1)} if rule.config.uses_depth else {}
    out = rule(images, emb, cams, step=10, **kwargs)
    assert out.t.shape == (B,)  # one timestep per clip
    out.loss.backward()
    assert images.grad.shape == (B, FRAMES, SIZE, SIZE, 3)
    assert torch.isfinite(images.grad).all() and images.grad.abs().sum() > 0
    call = prior.calls[-1]
    assert call["frames"] == FRAMES and call["camera"]
    # the prior saw the clip's frame times, clip by clip (doubled for CFG)
    assert torch.allclose(call["times"][:FRAMES], frame_times(FRAMES, 0.25))


@pytest.mark.parametrize("name", IMAGE_ONLY)
def test_image_only_rules_refuse_a_video_prior_in_one_line(name):
    with pytest.raises(UserError, match="video prior") as err:
        _rule(name, FakeVideoPrior(SIZE, FRAMES))
    assert "\n" not in str(err.value)


def test_video_sds_refuses_an_image_prior_and_single_renders():
    with pytest.raises(UserError, match="needs a video prior"):
        _rule("video-sds", FakePixelPrior(SIZE))
    rule = _rule("video-sds", FakeVideoPrior(SIZE, FRAMES))
    with pytest.raises(UserError, match=r"takes clips \[B, F, H, W, 3\]"):
        rule(torch.rand(B, SIZE, SIZE, 3), rule.prior.encode_prompt("a"), sample_orbit(B, OrbitConfig(), SIZE), 0)


def test_motion_amplification_maths():
    eps = torch.randn(2, 5, 3, 4, 4)
    mean = eps.mean(dim=1, keepdim=True)
    assert torch.equal(F.amplify_motion(eps, 1.0), mean + (eps - mean))
    assert torch.allclose(F.amplify_motion(eps, 0.0), mean.expand_as(eps))
    amplified = F.amplify_motion(eps, 3.0)
    assert torch.allclose(amplified.mean(dim=1), mean[:, 0], atol=1e-6)  # the mean over frames is kept
    assert torch.allclose(amplified - mean, 3.0 * (eps - mean), atol=1e-6)  # what differs is tripled


def test_video_sds_with_amplification_1_is_sds_on_clips():
    prior = FakeVideoPrior(SIZE, FRAMES)
    emb = prior.encode_prompt("a red cube bouncing")
    grads = []
    for name, extra in (("sds", {}), ("video-sds", {"motion_amplification": 1.0}), ("video-sds", {"motion_amplification": 4.0})):
        rule = _rule(name, prior, **extra)
        images, cams = _clip(3)
        rule(images, emb, cams, step=5).loss.backward()
        grads.append(images.grad)
    assert torch.allclose(grads[0], grads[1])
    assert not torch.allclose(grads[0], grads[2])
    # amplification changes only what differs between frames: the frame-mean of the gradient is kept
    assert torch.allclose(grads[0].mean(dim=1), grads[2].mean(dim=1), atol=1e-6)


def test_view_dependent_prompts_take_each_clips_first_camera():
    prior = FakeVideoPrior(SIZE, FRAMES)
    emb = prior.encode_prompt("a red cube", view_dependent=True)
    _, cams = _clip()
    cond = emb.conditional(cams, B)
    assert cond.shape[0] == B
    expected = torch.cat([emb.views[label] for label in cams[::FRAMES].view_label])
    assert torch.equal(cond, expected)

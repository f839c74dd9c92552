"""The multi-view tiny prior (`tiny-mv`): cross-view attention, raymaps, view-set data and training."""

from __future__ import annotations

import json

import pytest
import torch

from dreamer.cameras import OrbitConfig, from_spherical, turntable, view_set_spherical
from dreamer.errors import UserError
from dreamer.priors.tiny.captions import captions_for, is_held_out
from dreamer.priors.tiny.data import TinyDataConfig
from dreamer.priors.tiny.model import TinyUNetConfig, build_unet, network_call
from dreamer.priors.tiny.multiview import plucker_raymap, widen_state_dict
from dreamer.priors.tiny.sample import SamplerConfig, sample_views, view_set_order
from dreamer.priors.tiny.text import TEXT_DIM
from dreamer.priors.tiny.train import TinyTrainConfig, recipe
from dreamer.priors.tiny.view_sets import ViewSetData
from dreamer.priors.tiny.weights import save_weights
from tiny_prior_parts import (TINY_MV_UNET, TINY_UNET, fresh_tiny_mv_prior, fresh_tiny_prior,
                              train_straight_and_resumed)

MV_DATA = TinyDataConfig(image_size=16, supersample=1, shapes=("cube", "chair"), colours=("red", "blue", "purple"),
                         views_per_set=4, source="live", fovy_range=(38.0, 48.0))


def _inputs(batch: int, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, 3, 16, 16, generator=gen)
    text = torch.randn(batch, 16, TEXT_DIM, generator=gen)
    cams = from_spherical(torch.arange(batch) * 70.0, 15.0, 2.8, 42.5, 16)
    return x, torch.full((batch,), 600), text, cams


# ---------------------------------------------------------------------------------- network


@torch.no_grad()
def test_one_view_per_sample_is_exactly_the_single_view_network():
    torch.manual_seed(0)
    joint = build_unet(TINY_MV_UNET).eval()
    single_layout = TinyUNetConfig(**{**TINY_MV_UNET.__dict__, "cross_view": False})
    single = build_unet(single_layout).eval()
    single.load_state_dict(joint.state_dict())
    x, t, text, cams = _inputs(4)
    a = network_call(joint, TINY_MV_UNET, x, t, text, cams, views=1)
    b = network_call(single, single_layout, x, t, text, cams, views=1)
    assert torch.equal(a, b)
    four = network_call(joint, TINY_MV_UNET, x, t, text, cams, views=4)
    assert (four - a).abs().max() > 1e-3  # with 4 views per sample each view sees the others


@torch.no_grad()
def test_views_attend_within_their_set_only():
    torch.manual_seed(1)
    net = build_unet(TINY_MV_UNET).eval()
    x, t, text, cams = _inputs(8)
    both = network_call(net, TINY_MV_UNET, x, t, text, cams, views=4)
    first = network_call(net, TINY_MV_UNET, x[:4], t[:4], text[:4], cams[:4], views=4)
    x2 = x.clone()
    x2[4:] = torch.randn(4, 3, 16, 16)  # change the second set only
    changed = network_call(net, TINY_MV_UNET, x2, t, text, cams, views=4)
    assert torch.allclose(both[:4], first, atol=1e-5) and torch.allclose(changed[:4], both[:4], atol=1e-5)
    assert (changed[4:] - both[4:]).abs().max() > 1e-3
    with pytest.raises(ValueError, match="whole number of 4-view sets"):
        network_call(net, TINY_MV_UNET, x[:6], t[:6], text[:6], cams[:6], views=4)


@torch.no_grad()
def test_joint_attention_equals_attention_over_the_concatenated_tokens():
    from diffusers.models.attention_processor import Attention, AttnProcessor2_0

    from dreamer.priors.tiny.multiview import CrossViewAttnProcessor

    torch.manual_seed(2)
    attn = Attention(query_dim=16, heads=2, dim_head=8).eval()
    tokens = torch.randn(2 * 3, 5, 16)  # 2 sets of 3 views, 5 tokens each
    attn.set_processor(CrossViewAttnProcessor())
    joint = attn(tokens, num_views=3)
    attn.set_processor(AttnProcessor2_0())
    reference = attn(tokens.reshape(2, 15, 16)).reshape(6, 5, 16)
    assert torch.allclose(joint, reference, atol=1e-6)


@torch.no_grad()
def test_widened_network_starts_as_the_single_view_network():
    torch.manual_seed(3)
    source = build_unet(TINY_UNET).eval()
    widened = build_unet(TINY_MV_UNET).eval()
    widened.load_state_dict(widen_state_dict(widened.state_dict(), source.state_dict()))
    assert widened.conv_in.weight.shape[1] == 9 and torch.equal(widened.conv_in.weight[:, 3:], torch.zeros_like(widened.conv_in.weight[:, 3:]))
    x, t, text, cams = _inputs(4)
    cams = from_spherical(torch.arange(4) * 70.0, 15.0, 2.8, 47.0, 16)  # the fov feature is non-zero
    a = network_call(widened, TINY_MV_UNET, x, t, text, cams, views=1)
    b = network_call(source, TINY_UNET, x, t, text, cams, views=1)
    assert torch.allclose(a, b, atol=1e-5)
    with pytest.raises(ValueError, match="cannot start"):
        widen_state_dict(source.state_dict(), widened.state_dict())


def test_raymap_is_plucker_coordinates_of_the_pixel_rays():
    cams = from_spherical(torch.tensor([0.0, 90.0]), 20.0, 2.8, 42.5, 8)
    rays = plucker_raymap(cams, 8)
    assert rays.shape == (2, 6, 8, 8)
    moment, d = rays[:, :3], rays[:, 3:]
    assert torch.allclose(d.norm(dim=1), torch.ones(2, 8, 8), atol=1e-5)
    assert (moment * d).sum(dim=1).abs().max() < 1e-5  # a Plücker moment is orthogonal to its direction
    origin = cams.position[:, :, None, None]
    assert torch.allclose(moment, torch.cross(origin.expand_as(d), d, dim=1), atol=1e-5)
    # the centre ray passes (almost) through the origin: its moment is small; corner rays' are not
    assert moment[:, :, 3:5, 3:5].norm(dim=1).max() < 0.3 < moment[:, :, 0, 0].norm(dim=1).min()


# ---------------------------------------------------------------------------------- cameras and data


def test_view_sets_share_elevation_distance_and_fov_and_spread_in_azimuth():
    gen = torch.Generator().manual_seed(0)
    orbit = OrbitConfig(distance=(2.4, 3.2), fovy=(38.0, 48.0), elevation=(-10.0, 45.0))
    sph, fov = view_set_spherical(50, 4, orbit, gen, jitter=15.0)
    sph, fov = sph.reshape(50, 4, 3), fov.reshape(50, 4)
    for column in (sph[..., 1], sph[..., 2], fov):
        assert torch.equal(column, column[:, :1].expand_as(column))
    offsets = torch.remainder(sph[..., 0] - sph[:, :1, 0], 360.0)
    expected = torch.arange(4) * 90.0
    assert torch.all((offsets - expected).abs() <= 15.0 + 1e-4)
    assert offsets[:, 1:].std() > 3.0  # jittered, not only multiples of 90°


def test_view_set_batches_show_one_training_object_per_set():
    data = ViewSetData(MV_DATA)
    gen = torch.Generator().manual_seed(0)
    for _ in range(3):
        batch = data.batch(5, gen)
        assert batch.images.shape == (20, 3, 16, 16) and batch.cameras.shape == (20, 3) and batch.fovy.shape == (20,)
        assert not any(is_held_out(s) for s in batch.specs)
        idx = batch.caption_index.reshape(5, 4)
        assert torch.equal(idx, idx[:, :1].expand_as(idx))  # one caption per set
        for spec, i in zip(batch.specs, idx[:, 0].tolist()):
            assert data.captions[i] in {c.text for c in captions_for(spec)}
        corners = batch.images[:, :, 0, 0].reshape(5, 4, 3)  # one background per set
        assert torch.allclose(corners, corners[:, :1].expand_as(corners), atol=1e-6)


def test_training_view_sets_needs_the_cross_view_layout():
    with pytest.raises(UserError, match="cross_view"):
        TinyTrainConfig(batch_size=8, unet=TINY_UNET, data=MV_DATA)
    with pytest.raises(UserError, match="multiple of data.views_per_set"):
        TinyTrainConfig(batch_size=6, unet=TINY_MV_UNET, data=MV_DATA)
    assert recipe("tiny-mv").unet.cross_view and recipe("tiny-mv").data.views_per_set == 4
    with pytest.raises(UserError, match="unknown prior model"):
        recipe("huge")


def test_multi_view_training_runs_resumes_and_starts_from_single_view_weights(tmp_path):
    torch.manual_seed(0)
    save_weights(tmp_path / "single", build_unet(TINY_UNET), fresh_tiny_prior().info)
    config = TinyTrainConfig(steps=3, batch_size=8, unet=TINY_MV_UNET, data=MV_DATA, checkpoint_every=2, log_every=1,
                             warmup_steps=1, init_from=str(tmp_path / "single"))
    _, info = train_straight_and_resumed(config, tmp_path)
    assert info.views_per_sample == 4 and info.unet.ray_channels == 6
    assert "tiny-mv prior" in (tmp_path / "a" / "TRAINING.md").read_text()
    assert json.loads((tmp_path / "a" / "config.json").read_text())["unet"]["cross_view"] is True


# ---------------------------------------------------------------------------------- the prior


def test_prior_declares_its_views_and_takes_whole_sets():
    prior = fresh_tiny_mv_prior(views=4)
    assert prior.views_per_sample == 4 and fresh_tiny_prior().views_per_sample == 1
    emb = prior.encode_prompt("a red chair")
    x = torch.randn(8, 3, 16, 16)
    cams = turntable(8, 16)
    eps = prior.predict_noise(x, torch.full((8,), 500), emb.conditional(None, 8), cams)
    assert eps.shape == x.shape and torch.isfinite(eps).all()
    text_only = prior.predict_noise(x, torch.full((8,), 500), emb.conditional(None, 8), None)  # camera dropout
    assert torch.isfinite(text_only).all() and (text_only - eps).abs().max() > 1e-4
    with pytest.raises(ValueError, match="whole sets of 4 views"):
        prior.predict_noise(x[:6], torch.full((6,), 500), emb.conditional(None, 6), cams[:6])


def test_joint_sampling_groups_a_turntable_into_evenly_spaced_sets():
    assert view_set_order(8, 4).tolist() == [0, 2, 4, 6, 1, 3, 5, 7]
    assert view_set_order(5, 1) is None
    prior = fresh_tiny_mv_prior()
    images = sample_views(prior, "a red chair", turntable(8, 16), SamplerConfig(steps=2), seed=0)
    assert images.shape == (8, 3, 16, 16) and 0.0 <= float(images.min()) and float(images.max()) <= 1.0
    with pytest.raises(UserError, match="multiple of 4 views"):
        sample_views(prior, "a red chair", turntable(6, 16), SamplerConfig(steps=2))


def test_object_weighted_loss_and_high_timesteps():
    from dreamer.priors.tiny.train import _Run, weighted_mse

    pred, target = torch.zeros(2, 3, 4, 4), torch.ones(2, 3, 4, 4)
    target[:, :, :2] = 3.0  # the object's rows err more
    cover = torch.zeros(2, 1, 4, 4)
    cover[:, :, :2] = 1.0
    assert weighted_mse(pred, target, None) == pytest.approx(5.0)
    assert weighted_mse(pred, target, 1.0 + 4.0 * cover) == pytest.approx((9 * 5 + 1 * 1) / 6)
    config = TinyTrainConfig(batch_size=8, unet=TINY_MV_UNET, data=MV_DATA, high_t_share=1.0)
    assert int(_Run(config, torch.device("cpu"))._timesteps(200).min()) >= 500
    mixed = _Run(TinyTrainConfig(**{**config.__dict__, "high_t_share": 0.5}), torch.device("cpu"))._timesteps(2000)
    assert 0.6 < float((mixed >= 500).float().mean()) < 0.9  # half from the upper half, half uniform
    with pytest.raises(UserError, match="object_weight"):
        TinyTrainConfig(batch_size=8, unet=TINY_MV_UNET, data=MV_DATA, object_weight=-1.0)
    batch = ViewSetData(MV_DATA).batch(2, torch.Generator().manual_seed(0))
    assert batch.alpha.shape == (8, 1, 16, 16) and 0 < float(batch.alpha.mean()) < 1

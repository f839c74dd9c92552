"""The embedded video prior `tiny-motion`: the video UNet built from the image UNet (equal frame by frame
while its new layers are zero, camera and prompt read), the clip data and its held-out triples, the
Prior contract on clips, training with an exact resume, and the train-motion / sample-motion CLI.
A 16 px image UNet with random weights and 4-frame clips keep the file to seconds."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from dreamer.cameras import clip_cameras, from_spherical, turntable
from dreamer.cli import main
from dreamer.errors import UserError
from dreamer.priors.tiny.model import build_unet, camera_features
from dreamer.priors.tiny.weights import TinyModelInfo, save_weights
from dreamer.priors.tiny_motion.data import (HELD_OUT_TRIPLES, ClipData, ClipDataConfig, build_bank, motion_captions,
                                             training_colours)
from dreamer.priors.tiny_motion.model import (MotionLayersConfig, build_motion_unet, clip_call, motion_modules,
                                              trainable_module)
from dreamer.priors.tiny_motion.prior import TinyMotionPrior
from dreamer.priors.tiny_motion.sample import sample_clips
from dreamer.priors.tiny_motion.train import MotionTrainConfig, train_motion
from dreamer.priors.tiny_motion.weights import MotionModelInfo, load_motion_network
from dreamer.registry import component_class
from dreamer.shapes import OBJECTS
from dreamer.shapes.colours import COLOURS
from dreamer.shapes.motions import MOTIONS, canonical_motion
from tiny_prior_parts import TINY_UNET, HashEncoder

pytestmark = pytest.mark.slow(seconds=12)  # a mid-sized file: scheduled early (tests/conftest.py)

LAYERS = MotionLayersConfig(heads=(1, 2), max_frames=8)
DATA = ClipDataConfig(image_size=16, supersample=1, frames=4, phases=8, views_per_pair=2, shapes=("cube", "chair"),
                      motions=("bouncing", "spinning"))


def _image_unet(seed: int = 0):
    torch.manual_seed(seed)
    return build_unet(TINY_UNET).eval()


def _inputs(batch: int = 2, frames: int = 4):
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(batch, frames, 3, 16, 16, generator=gen)
    text = torch.randn(batch, 16, 384, generator=gen)
    feats = camera_features(torch.tensor([[30.0, 10.0, 2.8], [200.0, 40.0, 3.0]])[:batch], batch)
    return x, torch.tensor([300, 700])[:batch], text, feats


# ---------------------------------------------------------------------------------- the network


def test_with_zero_new_layers_the_video_unet_is_the_image_unet_frame_by_frame():
    image = _image_unet()
    video = build_motion_unet(image, LAYERS).eval()
    x, t, text, feats = _inputs()
    frames = x.shape[1]
    with torch.no_grad():
        out = clip_call(video, x, t, text, feats)
        per_frame = image(x.flatten(0, 1), t.repeat_interleave(frames), encoder_hidden_states=text.repeat_interleave(
            frames, 0), class_labels=feats.repeat_interleave(frames, 0)).sample
    assert out.shape == x.shape
    torch.testing.assert_close(out.flatten(0, 1), per_frame, atol=1e-5, rtol=1e-5)
    # the camera reaches it (tiny's class embedding, put back), and trained layers change it
    with torch.no_grad():
        assert (clip_call(video, x, t, text, torch.zeros_like(feats)) - out).abs().max() > 1e-3
        for module in motion_modules(video):
            torch.nn.init.normal_(module.proj_out.weight, std=0.5)
        assert (clip_call(video, x, t, text, feats) - out).abs().max() > 1e-3


def test_the_prompt_reaches_the_time_embedding_through_the_text_projection_only_once_trained():
    video = build_motion_unet(_image_unet(), LAYERS).eval()
    x, t, text, feats = _inputs()
    other = text.clone()
    other[:, 5:] += 1.0  # a different motion word changes the mean token embedding
    projection = video.time_embedding.text_projection
    with torch.no_grad():
        # the frozen cross-attention reads the tokens; the projection adds nothing at zero
        base = clip_call(video, x, t, text, feats)
        torch.nn.init.normal_(projection.weight, std=0.1)
        moved = clip_call(video, x, t, text, feats)
    assert (moved - base).abs().max() > 1e-3
    names = set(trainable_module(video).state_dict())
    assert any(n.startswith("text_projection") for n in names) and any(n.startswith("temporal") for n in names)
    assert len(motion_modules(video)) == 2 * 1 + 2 * 2 + 1  # one per down ResNet, per up ResNet, mid block


def test_the_prompt_reaches_every_temporal_transformer_per_clip_once_trained():
    video = build_motion_unet(_image_unet(), LAYERS).eval()
    x, t, text, feats = _inputs()
    other = text.clone()
    other[1, 5:] += 1.0  # the second clip asks for another motion
    with torch.no_grad():
        base = clip_call(video, x, t, text, feats)
        for bias in video.temporal_text:  # zero at start: nothing changes
            assert bias.projection.weight.abs().sum() == 0
        torch.nn.init.normal_(video.temporal_text[0].projection.weight, std=0.1)
        for module in motion_modules(video):  # the temporal layers pass their tokens on
            torch.nn.init.normal_(module.proj_out.weight, std=0.1)
        a = clip_call(video, x, t, text, feats)
        b = clip_call(video, x, t, other, feats)
    assert (a - base).abs().max() > 1e-4
    # per clip: changing the second clip's prompt leaves the first clip's output as it was
    torch.testing.assert_close(a[0], b[0], atol=1e-6, rtol=0)
    assert (a[1] - b[1]).abs().max() > 1e-4
    assert len(video.temporal_text) == len(motion_modules(video))
    assert any(n.startswith("temporal_text") for n in trainable_module(video).state_dict())


def test_weights_saved_before_the_temporal_prompt_load_without_it():
    config = MotionLayersConfig.from_dict({"heads": [1, 2], "max_frames": 8, "mid_block": True, "text_to_time": True})
    assert config.text_to_temporal is False
    video = build_motion_unet(_image_unet(), config)
    assert getattr(video, "temporal_text", None) is None
    assert not any(n.startswith("temporal_text") for n in trainable_module(video).state_dict())


def test_an_image_unet_without_a_camera_embedding_is_refused_in_one_line():
    from diffusers import UNet2DConditionModel

    plain = UNet2DConditionModel(sample_size=16, in_channels=3, out_channels=3, block_out_channels=(8, 16),
                                 down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                 up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), norm_num_groups=4,
                                 cross_attention_dim=384, layers_per_block=1, attention_head_dim=(1, 2))
    with pytest.raises(UserError, match="projection class embedding"):
        build_motion_unet(plain, LAYERS)
    with pytest.raises(UserError, match="one entry per level"):
        build_motion_unet(_image_unet(), MotionLayersConfig(heads=(1, 2, 4)))


# ---------------------------------------------------------------------------------- data


def test_held_out_triples_never_appear_and_their_parts_all_do():
    assert len(set(HELD_OUT_TRIPLES)) == len(HELD_OUT_TRIPLES) == 12
    for colour, shape, motion in HELD_OUT_TRIPLES:
        assert colour in COLOURS and shape in OBJECTS and motion in MOTIONS
        assert colour not in training_colours(shape, motion)
        assert any(colour in training_colours(s, m) for s in OBJECTS for m in MOTIONS if (s, m) != (shape, motion))
        assert any(training_colours(shape, m) for m in MOTIONS) and any(training_colours(s, motion) for s in OBJECTS)
    assert len({m for _, _, m in HELD_OUT_TRIPLES}) == len(MOTIONS)  # every motion has held-out triples


def test_motion_captions_name_the_motion_once_and_mostly_parse_back():
    from dreamer.shapes.prompt import parse_motion_prompt

    captions = motion_captions("a red cube", "bouncing")
    assert "a red cube bouncing" in captions and "a hopping red cube" in captions
    for text in captions:
        assert [canonical_motion(w) for w in text.split() if canonical_motion(w)] == ["bouncing"], text
        if "that is" not in text:  # the "… that is hopping" paraphrases are not parser wording
            assert parse_motion_prompt(text).motion == "bouncing", text
    assert motion_captions("a red cube", "still") == ["a red cube"]


@pytest.fixture(scope="module")
def bank():
    return build_bank(DATA)


def test_the_bank_renders_each_pair_from_its_views_and_clips_run_through_the_loop(bank):
    pairs = {(s.shape, m) for s, m in zip(bank.specs, bank.motions)}
    assert pairs == {(s, m) for s in ("cube", "chair") for m in ("bouncing", "spinning", "still")}
    assert bank.premultiplied.shape == (12, 8, 3, 16, 16) and bank.premultiplied.dtype == torch.uint8
    for spec, motion in zip(bank.specs, bank.motions):
        assert (spec.colour, spec.shape, motion) not in HELD_OUT_TRIPLES
    moving = [i for i, m in enumerate(bank.motions) if m == "bouncing"]
    still = [i for i, m in enumerate(bank.motions) if m == "still"]
    assert all(bank.premultiplied[i].float().std(dim=0).mean() > 1.0 for i in moving)  # its frames differ
    assert all(torch.equal(bank.premultiplied[i][0], bank.premultiplied[i][5]) for i in still)
    data = ClipData(DATA, bank)
    batch = data.batch(6, torch.Generator().manual_seed(0))
    assert batch.clips.shape == (6, 4, 3, 16, 16) and batch.alpha.shape == (6, 4, 1, 16, 16)
    assert 0.0 <= float(batch.clips.min()) and float(batch.clips.max()) <= 1.0
    for k in range(6):  # frame f of a clip is the bank's frame (start + 2 f) mod 8: one loop in 4 frames
        row = next(i for i, (s, m) in enumerate(zip(bank.specs, bank.motions))
                   if s == batch.specs[k] and m == batch.motions[k]
                   and torch.equal(bank.cameras[i], batch.cameras[k]))
        start = int(round(float(batch.phases[k]) * 8))
        for f in range(4):
            alpha = bank.alpha[row, (start + 2 * f) % 8].float() / 255
            assert torch.allclose(batch.alpha[k, f], alpha)
        motion_words = [w for w in batch.captions[k].split() if canonical_motion(w)]
        assert ([canonical_motion(w) for w in motion_words] == [batch.motions[k]]) != (batch.motions[k] == "still")


def test_every_phase_holds_the_clip_itself_at_its_own_start_over_its_own_background(bank):
    data = ClipData(DATA, bank)
    batch = data.batch(5, torch.Generator().manual_seed(3))
    family = data.every_phase(batch)
    assert family.shape == (5, 8, 4, 3, 16, 16)
    for k in range(5):
        start = int(round(float(batch.phases[k]) * 8))
        torch.testing.assert_close(family[k, start], batch.clips[k])
        corner = family[k, :, :, :, 0, 0]  # library objects stay off the frame's corner: the background shows
        torch.testing.assert_close(corner, batch.background[k, :, 0, 0].expand_as(corner))
        if batch.motions[k] == "still":
            assert torch.equal(family[k, 0], family[k, 5])


def test_the_phase_posterior_is_the_drawn_clip_at_low_noise_and_the_phases_mean_at_high_noise():
    from dreamer.priors.tiny_motion.posterior import phase_posterior_x0, v_target

    gen = torch.Generator().manual_seed(0)
    candidates = torch.rand(2, 8, 4, 3, 6, 6, generator=gen) * 2 - 1  # [B, P, F, 3, S, S]
    x0 = candidates[torch.arange(2), torch.tensor([3, 6])]
    eps = torch.randn(x0.shape, generator=gen)

    def noised(a: float):
        alpha = torch.full((2, 1, 1, 1, 1), a)
        sigma = (1 - alpha ** 2).sqrt()
        return alpha * x0 + sigma * eps, alpha, sigma

    x_t, alpha, sigma = noised(0.999)
    torch.testing.assert_close(phase_posterior_x0(x_t, alpha, sigma, candidates), x0)
    # and its v is then the usual one, α ε − σ x0
    torch.testing.assert_close(v_target(x_t, alpha, sigma, x0), alpha * eps - sigma * x0, atol=1e-4, rtol=1e-4)
    x_t, alpha, sigma = noised(1e-4)
    torch.testing.assert_close(phase_posterior_x0(x_t, alpha, sigma, candidates), candidates.mean(1),
                               atol=1e-3, rtol=0)
    # in between: the Gaussian likelihood's weights, computed here one candidate at a time in float64
    x_t, alpha, sigma = noised(0.12)
    mid = phase_posterior_x0(x_t, alpha, sigma, candidates)
    for k in range(2):
        a, s2 = float(alpha[k]), float(sigma[k]) ** 2
        log_w = torch.tensor([-float(((x_t[k] - a * candidates[k, j]).double() ** 2).sum()) / (2 * s2)
                              for j in range(8)], dtype=torch.float64)
        w = torch.softmax(log_w, 0)
        assert 0.05 < float(w.max()) < 0.999  # neither one phase nor all alike: a real mixture
        expected = (w[:, None, None, None, None] * candidates[k].double()).sum(0)
        torch.testing.assert_close(mid[k].double(), expected, atol=1e-5, rtol=0)


def test_bad_data_settings_fail_in_one_line():
    with pytest.raises(UserError, match="divide phases"):
        ClipDataConfig(frames=6, phases=16)
    with pytest.raises(UserError, match="unknown or no shapes"):
        ClipDataConfig(shapes=("cube", "spaceship"))


# ---------------------------------------------------------------------------------- the prior


def _prior(seed: int = 0) -> TinyMotionPrior:
    video = build_motion_unet(_image_unet(seed), LAYERS)
    info = MotionModelInfo(layers=LAYERS, frames=4)
    return TinyMotionPrior(unet=video, info=info, image_info=TinyModelInfo(unet=TINY_UNET), encoder=HashEncoder())


def test_the_prior_denoises_clips_with_tiled_cameras_and_refuses_images():
    prior = _prior()
    assert component_class("prior", "tiny-motion") is TinyMotionPrior
    assert prior.embedded and not prior.exact and prior.is_video and prior.num_frames == 4
    emb = prior.encode_prompt("a red cube bouncing", "static")
    cams = clip_cameras(from_spherical(torch.tensor([30.0]), torch.tensor([10.0]), torch.tensor([2.8]), 42.5, 16, 16),
                        torch.arange(4) / 4)
    x = torch.randn(2, 4, 3, 16, 16)
    eps = prior.predict_noise(x, torch.tensor([500]), torch.cat([emb.cond, emb.uncond]), cams)  # CFG's [c; u]
    assert eps.shape == x.shape and torch.isfinite(eps).all()
    # ε̂ from the network's v̂: x_t = α x0 + σ ε is recovered with x̂0 = α x_t − σ v̂
    free = prior.predict_noise(x, torch.tensor([500]), torch.cat([emb.cond, emb.cond]), None)
    assert (free - eps).abs().max() > 1e-4  # the camera-free branch differs
    assert prior.encode_images(torch.rand(1, 4, 3, 32, 32)).shape == (1, 4, 3, 16, 16)
    with pytest.raises(UserError, match="takes clips"):
        prior.predict_noise(torch.randn(2, 3, 16, 16), torch.tensor([500]), emb.cond.expand(2, -1, -1))
    with pytest.raises(UserError, match="at most 8 frames"):
        prior.predict_noise(torch.randn(1, 9, 3, 16, 16), torch.tensor([500]), emb.cond)


def test_sampled_clips_are_seeded_and_in_range():
    prior = _prior()
    cams = turntable(2, 16)
    a = sample_clips(prior, "a red cube bouncing", cams, sampler=_fast(), seed=3)
    b = sample_clips(prior, "a red cube bouncing", cams, sampler=_fast(), seed=3)
    assert a.shape == (2, 4, 3, 16, 16) and torch.equal(a, b)
    assert 0.0 <= float(a.min()) and float(a.max()) <= 1.0


def _fast():
    from dreamer.priors.tiny.sample import SamplerConfig

    return SamplerConfig(steps=3)


# ---------------------------------------------------------------------------------- training


def _image_prior_folder(tmp_path):
    folder = tmp_path / "image"
    save_weights(folder, _image_unet(), TinyModelInfo(unet=TINY_UNET))
    return folder


def _config(tmp_path, steps: int, **changes) -> MotionTrainConfig:
    changes = {"layers": LAYERS, **changes}
    return MotionTrainConfig(steps=steps, batch_size=2, warmup_steps=2, checkpoint_every=2, log_every=1,
                             image_prior=str(_image_prior_folder(tmp_path)), data=DATA, **changes)


def test_training_learns_only_the_new_layers_and_resumes_exactly(tmp_path, monkeypatch):
    monkeypatch.setenv("DREAMER_CACHE", str(tmp_path / "cache"))
    straight = train_motion(_config(tmp_path, 4), tmp_path / "a", progress=False, encoder=HashEncoder(), command="t")
    train_motion(_config(tmp_path, 2), tmp_path / "b", progress=False, encoder=HashEncoder(), command="t")
    resumed = train_motion(_config(tmp_path, 4), tmp_path / "b", progress=False, encoder=HashEncoder(), command="t")
    assert (straight.step, resumed.resumed_from, resumed.step) == (4, 2, 4)
    assert np.isfinite(straight.final_loss)
    a, info, image_info = load_motion_network(tmp_path / "a")
    b, _, _ = load_motion_network(tmp_path / "b")
    for (name, va), vb in zip(trainable_module(a).state_dict().items(), trainable_module(b).state_dict().values()):
        assert torch.equal(va, vb), name
    assert info.frames == 4 and info.layers == LAYERS and image_info.unet == TINY_UNET
    # the image layers are tiny's, untouched; the new ones moved off zero
    image = _image_unet()
    for name, value in image.state_dict().items():
        if name.startswith("conv_in"):
            torch.testing.assert_close(a.state_dict()[name], value.half().float())
    assert any(m.proj_out.weight.abs().max() > 0 for m in motion_modules(a))
    record = json.loads((tmp_path / "a" / "training.json").read_text())
    assert record["steps"] == 4 and len(record["config"]["data"]["motions"]) == 2
    assert "temporal layers" in (tmp_path / "a" / "TRAINING.md").read_text()
    assert len([line for line in (tmp_path / "a" / "loss.jsonl").read_text().splitlines() if line]) == 4


def test_a_run_can_start_from_older_weights_whose_new_layers_start_at_zero(tmp_path, monkeypatch):
    import dataclasses

    from dreamer.priors.tiny_motion.train import clip_change

    monkeypatch.setenv("DREAMER_CACHE", str(tmp_path / "cache"))
    older = dataclasses.replace(LAYERS, text_to_temporal=False)
    train_motion(_config(tmp_path, 2, layers=older), tmp_path / "old", progress=False, encoder=HashEncoder(),
                 command="t")
    old, _, _ = load_motion_network(tmp_path / "old")
    newer = _config(tmp_path, 0, init_from=str(tmp_path / "old"))
    train_motion(newer, tmp_path / "new", progress=False, encoder=HashEncoder(), command="t")
    new, info, _ = load_motion_network(tmp_path / "new")
    assert info.layers.text_to_temporal and len(new.temporal_text) == len(motion_modules(new))
    for name, value in trainable_module(old).state_dict().items():
        torch.testing.assert_close(trainable_module(new).state_dict()[name], value)
    assert all(bias.projection.weight.abs().max() == 0 for bias in new.temporal_text)
    with pytest.raises(UserError, match="has no tiny-motion weights"):
        train_motion(_config(tmp_path, 1, init_from=str(tmp_path / "none")), tmp_path / "x", progress=False,
                     encoder=HashEncoder(), command="t")
    # the moving-pixel weight: zero where a clip stands still, the frame-to-frame range where it changes
    clip = torch.full((1, 4, 3, 2, 2), -1.0)
    clip[0, 2, 1, 0, 1] = 0.5
    change = clip_change(clip)
    assert change.shape == (1, 1, 1, 2, 2)
    assert change[0, 0, 0].tolist() == [[0.0, 0.75], [0.0, 0.0]]


def test_training_onto_the_phase_posterior_runs_and_refuses_shared_frame_noise(tmp_path, monkeypatch):
    monkeypatch.setenv("DREAMER_CACHE", str(tmp_path / "cache"))
    run = train_motion(_config(tmp_path, 2, target="phase_posterior"), tmp_path / "pp", progress=False,
                       encoder=HashEncoder(), command="t")
    assert run.step == 2 and np.isfinite(run.final_loss)
    assert json.loads((tmp_path / "pp" / "training.json").read_text())["config"]["target"] == "phase_posterior"
    assert "phase-posterior mean" in (tmp_path / "pp" / "TRAINING.md").read_text()
    with pytest.raises(UserError, match="independent noise"):
        MotionTrainConfig(target="phase_posterior", noise_share=0.5)
    with pytest.raises(UserError, match="clip or phase_posterior"):
        MotionTrainConfig(target="posterior")


def test_missing_weights_say_how_to_make_them(tmp_path):
    from dreamer.priors.tiny_motion.prior import TinyMotionPriorConfig

    with pytest.raises(UserError, match="dreamer prior train-motion"):
        TinyMotionPrior(TinyMotionPriorConfig(weights=str(tmp_path / "none")))


def test_cli_train_motion_then_sample_motion_writes_a_frames_by_views_grid(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DREAMER_CACHE", str(tmp_path / "cache"))
    image = _image_prior_folder(tmp_path)
    out = tmp_path / "motion"
    overrides = [f"image_prior={image}", "layers.heads=[1,2]", "layers.max_frames=8", "data.image_size=16",
                 "data.supersample=1", "data.frames=4", "data.phases=8", "data.views_per_pair=1",
                 "data.shapes=[cube]", "data.motions=[bouncing]", "warmup_steps=1", "noise_share=0.5"]
    assert main(["prior", "train-motion", "--out", str(out), "--steps", "2", "--batch-size", "2", "--quiet",
                 *overrides]) == 0
    assert "tiny-motion prior: 2 steps" in capsys.readouterr().out
    # the frame-noise share it trained on travels with the weights to whoever draws noise for the prior
    assert json.loads((out / "config.json").read_text())["noise_share"] == 0.5
    from dreamer.priors.tiny_motion.prior import TinyMotionPriorConfig

    assert TinyMotionPrior(TinyMotionPriorConfig(weights=str(out)), encoder=HashEncoder()).frame_noise_share == 0.5
    assert main(["prior", "train-motion", "--out", str(out), "--steps", "3", "--quiet", "lr=1e-3"]) == 2
    assert "cannot change" in capsys.readouterr().err
    grid = tmp_path / "grid.png"
    assert main(["prior", "sample-motion", "a red cube bouncing", "--weights", str(out), "--views", "2",
                 "--steps", "2", "--truth", "--out", str(grid)]) == 0
    width, height = Image.open(grid).size
    assert (width, height) == (4 * (16 * 4 + 2) + 2, 4 * (16 * 4 + 2) + 2)  # 4 frames across; 2 views × (sample, truth)
    assert main(["prior", "sample-motion", "a red spaceship flying", "--weights", str(out), "--truth",
                 "--steps", "1", "--out", str(grid)]) == 2
    assert "outside the animated shape library" in capsys.readouterr().err

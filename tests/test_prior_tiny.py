"""The embedded tiny prior: data, captions and split, the network behind the Prior contract,
sampling, the training CLI with resume, and the missing-weights error. Tiny settings (16 px,
8/16 channels) keep the whole file well under a minute."""

from __future__ import annotations

import json

import pytest
import torch

from dreamer.cameras import from_spherical, turntable
from dreamer.cli import main
from dreamer.errors import UserError
from dreamer.guidance.functional import predict_cfg, predict_conditional
from dreamer.priors.base import PromptEmbedding
from dreamer.priors.tiny.captions import (COLOUR_PARAPHRASES, HELD_OUT, all_combos, captions_for, is_held_out,
                                          split_combos)
from dreamer.priors.tiny.data import TinyDataConfig, TrainingData
from dreamer.priors.tiny.model import TinyUNetConfig, build_unet, camera_features
from dreamer.priors.tiny.prior import TinyPrior, TinyPriorConfig
from dreamer.priors.tiny.sample import SamplerConfig, sample_views
from dreamer.priors.tiny.text import DEFAULT_MAX_LENGTH, TEXT_DIM
from dreamer.priors.tiny.train import TinyTrainConfig, learning_rate, train
from dreamer.priors.tiny.views import load_or_build_bank
from dreamer.priors.tiny.weights import load_weights, save_weights
from dreamer.shapes import COLOURS, OBJECTS, ObjectSpec, parse_prompt
from tiny_prior_parts import TINY_UNET, HashEncoder, fresh_tiny_prior

TINY_DATA = TinyDataConfig(image_size=16, supersample=1, views_per_combo=3, shapes=("cube", "chair"),
                           colours=("red", "blue", "purple"))
TINY_OVERRIDES = [
    "unet.image_size=16", "unet.block_out_channels=[8,16]", "unet.cross_attention=[false,true]",
    "unet.attention_head_dim=8", "unet.norm_num_groups=4", "data.image_size=16", "data.supersample=1",
    "data.views_per_combo=3", "data.shapes=[cube,chair]", "data.colours=[red,blue]", "batch_size=4",
    "checkpoint_every=2", "log_every=1", "warmup_steps=2",
]


def _embedding(batch: int = 2) -> PromptEmbedding:
    gen = torch.Generator().manual_seed(3)
    cond, uncond = torch.randn(1, 16, TEXT_DIM, generator=gen), torch.randn(1, 16, TEXT_DIM, generator=gen)
    return PromptEmbedding("a red chair", "", cond=cond, uncond=uncond)


# ---------------------------------------------------------------------------------- data


def test_parseable_captions_parse_back_and_paraphrases_do_not():
    for spec in all_combos():
        caps = captions_for(spec)
        assert len({c.text for c in caps}) == len(caps)  # no duplicates
        for cap in caps:
            if cap.parseable:
                assert parse_prompt(cap.text) == spec, cap.text
        assert any(not c.parseable for c in caps)
        for word in COLOUR_PARAPHRASES[spec.colour]:
            assert any(word in c.text for c in caps)
    assert set(COLOUR_PARAPHRASES) == set(COLOURS)


def test_captions_fit_the_token_length():
    from transformers import AutoTokenizer

    from dreamer.priors.tiny.text import minilm_path

    tok = AutoTokenizer.from_pretrained(minilm_path(), local_files_only=True)
    texts = sorted({c.text for s in all_combos() for c in captions_for(s)})
    longest = max(len(ids) for ids in tok(texts)["input_ids"])
    assert longest <= DEFAULT_MAX_LENGTH


def test_held_out_split_is_fixed_and_balanced():
    train_specs, held = split_combos()
    assert len(held) == len(HELD_OUT) and len(set(HELD_OUT)) == len(HELD_OUT)
    assert 0.08 <= len(held) / len(all_combos()) <= 0.12
    assert {s.shape for s in train_specs} == set(OBJECTS)  # every shape and colour is still trained
    assert {s.colour for s in train_specs} == set(COLOURS)
    for colour, shape in HELD_OUT:
        assert ObjectSpec(shape, colour) in held


@pytest.mark.parametrize("source", ["bank", "live"])
def test_held_out_combos_never_appear_in_training_batches(source, tmp_path):
    config = TinyDataConfig(**{**TINY_DATA.__dict__, "source": source})
    assert ObjectSpec("cube", "purple") in config.combos()[1]  # this selection has a held-out combo
    bank = load_or_build_bank(config, cache_dir=tmp_path) if source == "bank" else None
    data = TrainingData(config, bank)
    held_texts = {c.text for s in config.combos()[1] for c in captions_for(s)}
    assert not held_texts & set(data.captions)
    gen = torch.Generator().manual_seed(0)
    for _ in range(5):
        batch = data.batch(8, gen)
        assert batch.images.shape == (8, 3, 16, 16)
        assert 0.0 <= float(batch.images.min()) and float(batch.images.max()) <= 1.0
        assert batch.cameras.shape == (8, 3)
        assert not any(is_held_out(s) for s in batch.specs)
        for spec, idx in zip(batch.specs, batch.caption_index.tolist()):
            assert data.captions[idx] in {c.text for c in captions_for(spec)}


@pytest.mark.parametrize("source", ["bank", "live"])
def test_focus_shapes_are_drawn_more_often_and_leave_the_bank_alone(source, tmp_path, monkeypatch):
    if source == "live":
        # The shares below count the drawn specs; the live source draws them before rendering each view, so
        # blank renders leave every draw as it was and skip ray-tracing 1,200 views that nothing here looks at
        # (test_held_out_combos_never_appear_in_training_batches[live] checks the live renders).
        from dreamer.priors.tiny import data as data_module

        def blank(spec, cameras, config):
            size = config.image_size
            return torch.zeros(len(cameras), 3, size, size), torch.zeros(len(cameras), 1, size, size)

        monkeypatch.setattr(data_module, "render_premultiplied", blank)
    plain = TinyDataConfig(**{**TINY_DATA.__dict__, "source": source})
    focused = TinyDataConfig(**{**plain.__dict__, "focus_shapes": ["chair"], "focus_weight": 3.0})
    assert focused.focus_shapes == ("chair",)
    if source == "bank":
        from dreamer.priors.tiny.views import bank_key

        assert bank_key(plain) == bank_key(focused)  # the same rendered views, drawn in other proportions
    bank = load_or_build_bank(plain, cache_dir=tmp_path) if source == "bank" else None
    shares = []
    for config in (plain, focused):
        batch = TrainingData(config, bank).batch(600, torch.Generator().manual_seed(0))
        shares.append(sum(s.shape == "chair" for s in batch.specs) / 600)
    chairs = sum(s.shape == "chair" for s in plain.combos()[0])
    others = len(plain.combos()[0]) - chairs
    assert shares[0] == pytest.approx(chairs / (chairs + others), abs=0.06)
    assert shares[1] == pytest.approx(3 * chairs / (3 * chairs + others), abs=0.06)
    with pytest.raises(UserError, match="unknown focus shape"):
        TinyDataConfig(focus_shapes=("dodecahedron",))
    with pytest.raises(UserError, match="focus_weight"):
        TinyDataConfig(focus_weight=0.0)


def test_solid_backgrounds_contrast_with_the_object():
    from dreamer.priors.tiny.data import random_backgrounds
    from dreamer.shapes.views import MIN_CONTRAST

    config = TinyDataConfig(background_solid=1.0, background_neutral=0.5)
    for rgb in (COLOURS["black"], COLOURS["white"], COLOURS["gray"], COLOURS["red"]):
        bg = random_backgrounds(200, 8, config, torch.Generator().manual_seed(0), torch.tensor([rgb] * 200))
        assert bg.shape == (200, 3, 8, 1) and torch.equal(bg[:, :, 0], bg[:, :, -1])  # solid
        assert float((bg[:, :, 0, 0] - torch.tensor(rgb)).norm(dim=-1).min()) >= MIN_CONTRAST


def test_view_bank_is_cached_and_deterministic(tmp_path):
    a = load_or_build_bank(TINY_DATA, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("views-*.safetensors"))) == 1
    b = load_or_build_bank(TINY_DATA, cache_dir=tmp_path)  # from the file
    c = load_or_build_bank(TINY_DATA, cache_dir=tmp_path / "other")  # rendered again
    assert torch.equal(a.premultiplied, b.premultiplied) and torch.equal(a.premultiplied, c.premultiplied)
    assert torch.equal(a.cameras, c.cameras)
    assert bool((a.alpha > 0).any()) and bool((a.alpha < 1).any())


# ---------------------------------------------------------------------------------- model / prior


def test_fresh_model_predicts_finite_noise_of_the_right_shape():
    prior = fresh_tiny_prior()
    assert prior.camera_conditioned and prior.latent_shape == (3, 16, 16)
    x = prior.encode_images(torch.rand(2, 3, 32, 32))
    assert x.shape == (2, 3, 16, 16) and float(x.min()) >= -1 and float(x.max()) <= 1
    cams = from_spherical(torch.tensor([0.0, 90.0]), 20.0, 2.8, 42.5, 16)
    emb = _embedding().conditional(None, 2)
    for camera in (cams, None):
        eps = prior.predict_noise(x, torch.tensor([10, 900]), emb, camera)
        assert eps.shape == (2, 3, 16, 16) and bool(torch.isfinite(eps).all())


def test_pooled_text_reaches_the_time_embedding_and_changes_the_prediction():
    torch.manual_seed(0)
    unet = build_unet(TinyUNetConfig(**{**TINY_UNET.__dict__, "pooled_text": True}))
    assert unet.config.addition_embed_type == "text"
    x, t, cams = torch.randn(2, 3, 16, 16), torch.tensor([10, 900]), torch.randn(2, 6)
    text = torch.randn(2, 16, TEXT_DIM)
    with torch.no_grad():
        out = unet(x, t, encoder_hidden_states=text, class_labels=cams).sample
        unet.add_embedding.proj.weight.mul_(2.0)  # only the pooled path changes
        changed = unet(x, t, encoder_hidden_states=text, class_labels=cams).sample
    assert out.shape == (2, 3, 16, 16) and torch.isfinite(out).all()
    assert float((out - changed).abs().max()) > 1e-4
    assert build_unet(TINY_UNET).config.addition_embed_type is None  # off by default: older weights load as before


def test_text_only_attention_reads_the_prompt_without_self_attention():
    config = TinyUNetConfig(**{**TINY_UNET.__dict__, "cross_attention": (True, True), "text_only_attention": (True, False)})
    torch.manual_seed(0)
    unet = build_unet(config)
    first, second = unet.down_blocks[0].attentions[0], unet.down_blocks[1].attentions[0]
    block = first.transformer_blocks[0]
    assert block.only_cross_attention and block.attn1.is_cross_attention  # the prompt, not the pixels
    assert not second.transformer_blocks[0].only_cross_attention  # other levels keep self-attention
    x, t, cams = torch.randn(2, 3, 16, 16), torch.tensor([10, 900]), torch.randn(2, 6)
    text = torch.randn(2, 16, TEXT_DIM)
    with torch.no_grad():
        out = unet(x, t, encoder_hidden_states=text, class_labels=cams).sample
        other = unet(x, t, encoder_hidden_states=torch.randn(2, 16, TEXT_DIM), class_labels=cams).sample
    assert out.shape == (2, 3, 16, 16) and float((out - other).abs().max()) > 1e-4
    assert config.to_dict()["text_only_attention"] == [True, False]
    assert "text_only_attention" not in TINY_UNET.to_dict()  # older config.json files stay the same
    assert TinyUNetConfig.from_dict(config.to_dict()) == config
    with pytest.raises(UserError, match="needs cross_attention"):
        TinyUNetConfig(**{**TINY_UNET.__dict__, "text_only_attention": (True, False)})
    with pytest.raises(UserError, match="one entry per level"):
        TinyUNetConfig(**{**TINY_UNET.__dict__, "text_only_attention": (True,)})


def test_cfg_at_scale_one_equals_the_conditional_prediction():
    prior = fresh_tiny_prior()
    x = torch.randn(3, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    t = torch.tensor([50, 400, 800])
    cams = turntable(3, 16)
    emb = _embedding()
    guided, cond, _ = predict_cfg(prior, x, t, emb, cams, 1.0)
    alone = predict_conditional(prior, x, t, emb, cams)
    torch.testing.assert_close(guided, alone, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(cond, alone, atol=1e-5, rtol=1e-4)


def test_camera_none_is_the_camera_dropout_branch():
    prior = fresh_tiny_prior()
    x = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    t = torch.tensor([300, 300])
    emb = _embedding().conditional(None, 2)
    free = prior.predict_noise(x, t, emb, None)
    # the same through the network with the dropped-camera features (all zeros), ε = σ x_t + α v
    v = prior.unet(x, t, encoder_hidden_states=emb, class_labels=torch.zeros(2, 6)).sample
    abar = prior.alphas_cumprod[t].reshape(2, 1, 1, 1)
    torch.testing.assert_close(free, (1 - abar).sqrt() * x + abar.sqrt() * v, atol=1e-5, rtol=1e-4)
    with_cam = prior.predict_noise(x, t, emb, turntable(2, 16))
    assert float((with_cam - free).abs().max()) > 1e-4
    assert torch.equal(camera_features(None, 2), torch.zeros(2, 6))
    # one camera for a doubled batch is tiled, as in CFG
    one = turntable(1, 16)
    both = prior.predict_noise(x, t, emb, one)
    torch.testing.assert_close(both[:1], prior.predict_noise(x[:1], t[:1], emb[:1], one), atol=1e-5, rtol=1e-4)


def test_sampling_with_a_fixed_seed_is_reproducible():
    prior = fresh_tiny_prior()
    cams = turntable(2, 16)
    three = SamplerConfig(steps=3, guidance=3.0)
    a = sample_views(prior, "a red cube", cams, three, seed=7)
    b = sample_views(prior, "a red cube", cams, three, seed=7)
    c = sample_views(prior, "a red cube", cams, three, seed=8)
    assert a.shape == (2, 3, 16, 16) and float(a.min()) >= 0 and float(a.max()) <= 1
    assert torch.equal(a, b) and not torch.equal(a, c)
    # η = 0 (deterministic DDIM) is reproducible too, and differs from the default η = 1 (fresh noise per step)
    deterministic = SamplerConfig(steps=3, guidance=3.0, eta=0.0)
    d = sample_views(prior, "a red cube", cams, deterministic, seed=7)
    assert torch.equal(d, sample_views(prior, "a red cube", cams, deterministic, seed=7))
    assert not torch.equal(a, d)


def test_sampler_guidance_follows_the_noise_level():
    sampler = SamplerConfig(guidance=2.0, high_noise_guidance=5.0, high_noise_from=500)
    assert [sampler.guidance_at(t) for t in (999, 500, 499, 0)] == [5.0, 5.0, 2.0, 2.0]
    assert [SamplerConfig(guidance=3.0).guidance_at(t) for t in (999, 0)] == [3.0, 3.0]  # one scale by default
    prior = fresh_tiny_prior()
    cams = turntable(2, 16)
    one_scale = sample_views(prior, "a red cube", cams, SamplerConfig(steps=4, guidance=2.0, high_noise_guidance=2.0))
    two_scales = sample_views(prior, "a red cube", cams, SamplerConfig(steps=4, guidance=2.0, high_noise_guidance=5.0))
    assert not torch.equal(one_scale, two_scales)  # the high-noise steps really use their own scale
    only_low = sample_views(prior, "a red cube", cams, SamplerConfig(steps=4, guidance=2.0, high_noise_guidance=5.0,
                                                                      high_noise_from=1000))
    assert torch.equal(one_scale, only_low)  # no timestep reaches 1000: every step at the low-noise scale
    with pytest.raises(UserError, match="eta must lie in"):
        SamplerConfig(eta=1.5)


def test_weights_round_trip_in_fp16(tmp_path):
    prior = fresh_tiny_prior()
    save_weights(tmp_path, prior.unet, prior.info)
    assert json.loads((tmp_path / "config.json").read_text())["schedule"]["prediction_type"] == "v_prediction"
    unet, info = load_weights(tmp_path)
    assert info.unet == TINY_UNET
    loaded = TinyPrior(unet=unet, info=info, encoder=HashEncoder())
    x, t, emb = torch.randn(1, 3, 16, 16), torch.tensor([500]), _embedding(1).conditional(None, 1)
    cam = turntable(1, 16)
    torch.testing.assert_close(loaded.predict_noise(x, t, emb, cam), prior.predict_noise(x, t, emb, cam),
                               atol=2e-2, rtol=2e-2)


def test_missing_weights_folder_is_a_user_error(tmp_path):
    from dreamer import registry

    assert registry.component_class("prior", "tiny") is TinyPrior
    assert isinstance(registry.default_config("prior", "tiny"), TinyPriorConfig)
    with pytest.raises(UserError, match="dreamer prior train"):
        TinyPrior(TinyPriorConfig(weights=str(tmp_path / "nothing-here")))


# ---------------------------------------------------------------------------------- training


def test_resumed_training_matches_an_uninterrupted_run(tmp_path):
    config = TinyTrainConfig(steps=4, batch_size=3, unet=TINY_UNET, data=TINY_DATA, checkpoint_every=100,
                             log_every=1, warmup_steps=2)
    straight = train(config, tmp_path / "a", progress=False, encoder=HashEncoder(), command="test")
    half = TinyTrainConfig(**{**config.__dict__, "steps": 2})
    train(half, tmp_path / "b", progress=False, encoder=HashEncoder(), command="test")
    resumed = train(config, tmp_path / "b", progress=False, encoder=HashEncoder(), command="test")
    assert (straight.step, resumed.step, resumed.resumed_from) == (4, 4, 2)
    a, _ = load_weights(tmp_path / "a")
    b, _ = load_weights(tmp_path / "b")
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(va, vb), k
    losses = [json.loads(line)["loss"] for line in (tmp_path / "b" / "loss.jsonl").read_text().splitlines()]
    assert len(losses) == 4 and all(torch.isfinite(torch.tensor(losses)))


def test_learning_rate_warms_up_stays_then_decays_by_a_cosine():
    config = TinyTrainConfig(steps=1000, lr=1e-3, warmup_steps=100, decay_start=500, final_lr_ratio=0.1)
    assert learning_rate(config, 0) == pytest.approx(1e-5)
    assert learning_rate(config, 99) == learning_rate(config, 499) == pytest.approx(1e-3)
    assert learning_rate(config, 750) == pytest.approx(1e-3 * (0.1 + 0.9 * 0.5))  # half-way down the cosine
    assert learning_rate(config, 1000) == pytest.approx(1e-4)
    constant = TinyTrainConfig(steps=1000, lr=1e-3, warmup_steps=0)
    assert learning_rate(constant, 999) == 1e-3


def test_cli_prior_train_writes_files_resumes_and_samples(tmp_path, capsys, tiny_run):
    out = tmp_path / "tiny"
    assert main(["prior", "train", "--out", str(out), "--steps", "3", "--quiet", *TINY_OVERRIDES]) == 0
    for name in ("model.safetensors", "config.json", "TRAINING.md", "training.json", "loss.jsonl", "checkpoints/last.pt"):
        assert (out / name).is_file(), name
    assert json.loads((out / "training.json").read_text())["steps"] == 3
    # automatic resume to a larger step count; model settings cannot change on resume
    assert main(["prior", "train", "--out", str(out), "--steps", "5", "--quiet"]) == 0
    record = json.loads((out / "training.json").read_text())
    assert record["steps"] == 5 and record["config"]["unet"]["block_out_channels"] == [8, 16]
    assert main(["prior", "train", "--out", str(out), "--steps", "6", "--quiet", "lr=1.0"]) == 2
    assert "cannot change" in capsys.readouterr().err
    # the lr decay is a resumable setting: continue to step 7 decaying from step 5, logged in loss.jsonl
    assert main(["prior", "train", "--out", str(out), "--steps", "7", "--decay-from", "5", "--quiet"]) == 0
    lrs = [json.loads(line)["lr"] for line in (out / "loss.jsonl").read_text().splitlines()]
    assert lrs[-1] == pytest.approx(lrs[0] * TinyTrainConfig().final_lr_ratio) and lrs[0] == TinyTrainConfig().lr
    assert main(["prior", "train", "--out", str(out), "--steps", "8", "--decay-from", "9", "--quiet"]) == 2
    assert "decay_start (9) must be in [0, steps)" in capsys.readouterr().err
    png = tmp_path / "grid.png"
    assert main(["prior", "sample", "a red cube", "--weights", str(out), "--views", "2", "--steps", "2",
                 "--high-noise-guidance", "4", "--out", str(png), "--truth"]) == 0
    from PIL import Image

    width, height = Image.open(png).size
    assert width >= 2 * 16 * 4 and height >= 2 * 16 * 4  # 2 views x 2 rows (samples, ground truth), 4x upscaled
    assert main(["prior", "sample", "a red cube", "--weights", str(tmp_path / "none")]) == 2
    # the trained folder drives a (2-step) generate run through the registry, with cameras
    run_overrides = [o for o in tiny_run if not o.startswith("prior")] + [f"prior.weights={out}"]
    assert main(["generate", "a red cube", "--prior", "tiny", "--steps", "2", "--quiet",
                 "--out", str(tmp_path / "run"), *run_overrides]) == 0
    assert (tmp_path / "run" / "model.glb").is_file()


def test_ema_restore_keeps_the_shadow_where_the_model_is():
    """A checkpoint loads on the CPU; the restored averages must follow the model (GPU, or here float64)."""
    from dreamer.priors.tiny.ema import EMA

    model = torch.nn.Linear(3, 2)
    saved = EMA(model).state_dict()
    moved = EMA(model.double())
    moved.load_state_dict(saved)
    assert all(v.dtype == torch.float64 for v in moved.shadow.values())
    moved.update(model)  # would raise on a device mismatch
    assert torch.allclose(moved.shadow["weight"].float(), saved["shadow"]["weight"])
    assert moved.shadow["weight"].data_ptr() != saved["shadow"]["weight"].data_ptr()

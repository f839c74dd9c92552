"""Issue 21's recipe defects: the SDXL VAE's precision, the text VSD/ESD's particle model gets,
and ASD's Δ near the end of the schedule. Each test fails on the code before the fix."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from dreamer import registry
from dreamer.cameras import from_spherical
from dreamer.guidance.asd import ASD, ASDConfig
from fakes import FakePixelPrior

S = 8  # side of the fake prior's images


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ------------------------------------------------------------------------------- SDXL VAE in float32


@pytest.fixture(scope="module")
def sdxl_builders():
    pytest.importorskip("diffusers")
    pytest.importorskip("transformers")
    from test_prior_sdxl import tiny_clip_with_projection, tiny_xl_unet

    return tiny_clip_with_projection, tiny_xl_unet


def _tiny_sdxl_parts(tokenizer, builders, force_upcast: bool | None = None) -> dict:
    """Tiny random SDXL parts; `force_upcast` None leaves the VAE config's default (True)."""
    from tiny_diffusers import sd_scheduler, tiny_clip, tiny_vae

    clip_with_projection, xl_unet = builders
    torch.manual_seed(0)
    vae = tiny_vae()
    if force_upcast is not None:
        settings = {k: v for k, v in vae.config.items() if not k.startswith("_")}  # no `_use_default_values`
        vae = type(vae)(**{**settings, "force_upcast": force_upcast})
    return dict(tokenizer=tokenizer, tokenizer_2=tokenizer, text_encoder=tiny_clip(tokenizer),
                text_encoder_2=clip_with_projection(tokenizer), vae=vae, unet=xl_unet(), scheduler=sd_scheduler())


def test_sdxl_loaded_in_fp16_keeps_its_vae_in_float32(tokenizer, sdxl_builders, tmp_path):  # `tokenizer`: conftest
    from dreamer.priors.sdxl import SDXLConfig, SDXLPrior

    folder = tmp_path / "tiny-sdxl"
    for name, part in _tiny_sdxl_parts(tokenizer, sdxl_builders).items():
        part.save_pretrained(folder / name)
    prior = SDXLPrior(SDXLConfig(model=str(folder), dtype="fp16"), device="cpu")  # the real loading path
    assert prior.vae.config.force_upcast  # diffusers' default, and SDXL's own VAE config
    assert prior.vae.dtype == torch.float32
    assert prior.unet.dtype == torch.float16 and prior.model_dtype == torch.float16
    assert prior.text_encoder.dtype == torch.float16 and prior.text_encoder_2.dtype == torch.float16
    # encode and decode cast to the VAE's dtype and hand back float32 (the fp16 UNet is not run on the CPU)
    rgb = torch.rand(1, 3, 16, 16, generator=_gen(0), requires_grad=True)
    z = prior.encode_images(rgb)
    assert z.dtype == torch.float32 and z.shape == (1, *prior.latent_shape) and torch.isfinite(z).all()
    z.sum().backward()
    assert rgb.grad is not None and torch.isfinite(rgb.grad).all()
    image = prior.decode(z.detach())
    assert image.dtype == torch.float32 and image.shape == (1, 3, 16, 16) and torch.isfinite(image).all()


def test_an_fp16_safe_sdxl_vae_stays_in_the_chosen_dtype(tokenizer, sdxl_builders):
    from dreamer.priors.sdxl import SDXLPrior

    parts = _tiny_sdxl_parts(tokenizer, sdxl_builders, force_upcast=False)  # e.g. the "fp16-fix" VAE
    prior = SDXLPrior.from_components(**parts, device="cpu", dtype=torch.float16)
    assert prior.vae.dtype == torch.float16 and prior.unet.dtype == torch.float16
    upcast = SDXLPrior.from_components(**_tiny_sdxl_parts(tokenizer, sdxl_builders, force_upcast=True),
                                       device="cpu", dtype=torch.float16)
    assert upcast.vae.dtype == torch.float32 and upcast.unet.dtype == torch.float16


# ------------------------------------------------------------------------------- VSD/ESD particle text


class RecordingParticle(torch.nn.Module):
    """Wraps a particle model and records the text embedding of every score and training call."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.scored: list[torch.Tensor] = []  # embeddings given to predict_eps (ε̂_lora in g)
        self.trained: list[torch.Tensor] = []  # embeddings given to output (the particle's own loss)

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        return self.inner.trainable_parameters()

    def predict_eps(self, x_t, t, embedding, camera):
        self.scored.append(embedding.detach().clone())
        return self.inner.predict_eps(x_t, t, embedding, camera)

    def output(self, x_t, t, embedding, camera):
        self.trained.append(embedding.detach().clone())
        return self.inner.output(x_t, t, embedding, camera)


def _particle_run(name: str, **overrides):
    """One step of `name` on two back-view cameras: (embedding, particle recorder, the prior's text per call)."""
    prior = FakePixelPrior(S)
    prior_texts: list[torch.Tensor] = []
    predict = prior.predict_noise

    def recording_predict(x_t, t, embedding, camera=None):
        prior_texts.append(embedding.detach().clone())
        return predict(x_t, t, embedding, camera)

    prior.predict_noise = recording_predict
    config = dataclasses.replace(registry.default_config("guidance", name), **overrides)
    rule = registry.component_class("guidance", name)(config, prior, 100, _gen(0))
    rule.particle = RecordingParticle(rule.particle)
    emb = prior.encode_prompt("a red chair", "blurry", view_dependent=True)
    cameras = from_spherical(torch.tensor([180.0, 170.0]), 10.0, 2.8, 40.0, S)
    assert cameras.view_label == ["back", "back"]
    images = torch.rand(2, S, S, 3, generator=_gen(1), requires_grad=True)
    rule(images, emb, cameras, step=0).loss.backward()
    return emb, rule.particle, prior_texts


def _rows_equal(texts: list[torch.Tensor], row: torch.Tensor) -> bool:
    return bool(texts) and all(torch.equal(e, row.expand_as(e)) for e in texts)


@pytest.mark.parametrize("name", ["vsd", "esd"])
def test_particle_model_gets_the_view_independent_prompt(name):
    emb, particle, prior_texts = _particle_run(name)
    assert not torch.equal(emb.cond, emb.views["back"])
    assert _rows_equal(particle.scored, emb.cond)  # ε̂_lora in the gradient (both ESD branches)
    assert _rows_equal(particle.trained, emb.cond)  # the particle model's own training
    assert len(particle.scored) == (2 if name == "esd" else 1)
    # the frozen prior's CFG call (the first; the residual particle then calls the prior too) keeps the view text
    cfg_call = prior_texts[0]
    assert cfg_call.shape[0] == 4  # [cond; uncond] for the two cameras
    assert _rows_equal([cfg_call[:2]], emb.views["back"]) and _rows_equal([cfg_call[2:]], emb.uncond)


@pytest.mark.parametrize("name", ["vsd", "esd"])
def test_particle_view_dependent_switch_restores_the_view_suffix(name):
    emb, particle, _ = _particle_run(name, particle_view_dependent=True)
    assert _rows_equal(particle.scored, emb.views["back"])
    assert _rows_equal(particle.trained, emb.views["back"])
    emb, particle, _ = _particle_run(name, particle_view_dependent=True, view_dependent_prompt=False)
    assert _rows_equal(particle.scored, emb.cond) and _rows_equal(particle.trained, emb.cond)


def test_particle_text_defaults_to_view_independent():
    for name in ("vsd", "esd"):
        assert registry.default_config("guidance", name).particle_view_dependent is False


# ------------------------------------------------------------------------------- ASD's Δ


def _asd_shifts(t_value: int, draws: int = 20000) -> tuple[ASD, torch.Tensor]:
    rule = ASD(ASDConfig(eta=0.1), FakePixelPrior(S), 100, _gen(0))
    assert rule.schedule.bounds(0)[0] == 500  # t_min at step 0
    t = torch.full((draws,), t_value, dtype=torch.long)
    u = torch.rand(draws, generator=_gen(7), dtype=torch.float64)
    return rule, rule.shifted_timesteps(t, 0, u)


@pytest.mark.parametrize("t_value", [980, 990, 998])
def test_asd_shift_near_the_end_is_capped_before_the_draw(t_value):
    _, shifted = _asd_shifts(t_value)
    cap = min(0.1 * (t_value - 500), 999 - t_value)  # η·(t − t_min) = 48 … 49.8 ≫ T − 1 − t here
    assert int(shifted.min()) >= t_value and int(shifted.max()) <= 999
    share_at_last = float((shifted == 999).double().mean())
    assert share_at_last <= 1.0 / (cap + 1) + 0.01, share_at_last  # the clamp-after-draw put ≥ 60 % there
    # Δ = ⌊u·cap⌋ is uniform on {0, …, cap − 1}: every value equally likely
    counts = torch.bincount(shifted - t_value, minlength=int(cap) + 1).double() / shifted.numel()
    expected = torch.zeros_like(counts)
    expected[: int(cap)] = 1.0 / cap
    torch.testing.assert_close(counts, expected, atol=0.015, rtol=0)


def test_asd_shift_far_from_the_end_is_unchanged():
    _, shifted = _asd_shifts(600)
    # η·(t − t_min) = 10 < T − 1 − t: Δ = ⌊u·10⌋, uniform on {0, …, 9}
    counts = torch.bincount(shifted - 600, minlength=10).double() / shifted.numel()
    torch.testing.assert_close(counts, torch.full((10,), 0.1, dtype=torch.float64), atol=0.015, rtol=0)


def test_asd_forward_never_puts_its_second_timestep_on_the_last_one():
    prior = FakePixelPrior(S)
    rule = ASD(ASDConfig(), prior, 100, _gen(3))  # t ~ U[500, 980] at step 0
    emb = prior.encode_prompt("a mug")
    cameras = from_spherical(torch.zeros(64), 10.0, 2.8, 40.0, S)
    t, t_shift = [], []
    for seed in range(16):
        out = rule(torch.rand(64, S, S, 3, generator=_gen(seed)), emb, cameras, step=0)
        t.append(out.t)
        t_shift.append(out.extras["t_shift"])
    t, t_shift = torch.cat(t), torch.cat(t_shift)
    assert int((t >= 960).sum()) > 20  # enough draws where the old clamp after the draw hit T − 1
    assert bool((t_shift >= t).all()) and int(t_shift.max()) <= 998  # ⌊u·(T − 1 − t)⌋ < T − 1 − t

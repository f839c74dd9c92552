"""The diffusers-backed priors (Stable Diffusion, DeepFloyd IF) on tiny random-weight parts built in code.

Nothing is downloaded: the tokenizer is a handful of characters written to a temp folder, the
networks are a few thousand parameters each. The offline tests forbid sockets outright.
"""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
import torch
import torch.nn.functional as F

from dreamer.cameras import from_spherical
from dreamer.errors import UserError
from dreamer.priors._diffusers_common import resolve_local_files_only
from dreamer.priors.deepfloyd_if import DeepFloydIFConfig, DeepFloydIFPrior
from dreamer.priors.stable_diffusion import StableDiffusionConfig, StableDiffusionPrior
from tiny_diffusers import TEXT_DIM, TEXT_LEN, sd_prior, tiny_unet

diffusers = pytest.importorskip("diffusers")
transformers = pytest.importorskip("transformers")

# The shared fixtures (`tokenizer`) live in conftest.py; the builders in tiny_diffusers.py.


@pytest.fixture(scope="module")
def prior(tokenizer):
    return sd_prior(tokenizer)  # native size: UNet sample 8 × VAE factor 2 = 16 px, latents 4×8×8


# ----------------------------------------------------------------------------- Stable Diffusion

def test_attributes(prior):
    assert prior.image_size == 16 and prior.latent_shape == (4, 8, 8)
    assert prior.num_train_timesteps == 1000 and prior.camera_conditioned is False
    assert prior.alphas_cumprod.dtype == torch.float32 and prior.alphas_cumprod.shape == (1000,)
    assert torch.all(prior.alphas_cumprod[1:] < prior.alphas_cumprod[:-1])
    assert prior.model_dtype == torch.float32  # "auto" on CPU
    assert not any(p.requires_grad for p in prior.parameters())
    assert not prior.unet.training and not prior.vae.training and not prior.text_encoder.training


def test_encode_prompt(prior):
    emb = prior.encode_prompt("a red chair", negative_prompt="blurry", view_dependent=True)
    for t in (emb.cond, emb.uncond, emb.empty, *emb.views.values()):
        assert t.shape == (1, TEXT_LEN, TEXT_DIM) and t.dtype == torch.float32
    assert set(emb.views) == {"front", "side", "back", "overhead"}
    for v in emb.views.values():
        assert not torch.allclose(v, emb.cond)
    assert not torch.allclose(emb.views["front"], emb.views["back"])
    assert not torch.allclose(emb.uncond, emb.empty)  # negative prompt is not the empty prompt
    # Each variant is exactly the encoding of its own text.
    assert torch.allclose(emb.views["side"], prior._encode_texts(["a red chair, side view"]), atol=1e-5)
    assert torch.allclose(emb.empty, prior._encode_texts([""]), atol=1e-5)

    plain = prior.encode_prompt("a red chair")
    assert plain.views == {} and torch.equal(plain.uncond, plain.empty)
    assert torch.allclose(plain.cond, emb.cond)

    cams = from_spherical([0.0, 180.0, 90.0], [0.0, 0.0, 0.0], 3.0, 40.0, 16)
    cond = emb.conditional(cams, 3)
    assert cond.shape == (3, TEXT_LEN, TEXT_DIM)
    assert torch.equal(cond[1:2], emb.views["back"])


def test_encode_images_matches_manual_and_differentiates_only_the_image(prior):
    rgb = torch.rand(2, 3, 12, 12, requires_grad=True)
    z = prior.encode_images(rgb)
    assert z.shape == (2, *prior.latent_shape) and z.dtype == torch.float32

    with torch.no_grad():  # the slow, obvious twin: resize, [−1,1], posterior mean, × scale
        x = F.interpolate(rgb, size=(16, 16), mode="bilinear", align_corners=False) * 2 - 1
        expected = prior.vae.encode(x).latent_dist.mean * prior.vae.config.scaling_factor
    assert torch.allclose(z, expected, atol=1e-5)

    z.square().mean().backward()
    assert rgb.grad is not None and torch.isfinite(rgb.grad).all() and rgb.grad.abs().sum() > 0
    assert all(p.grad is None for p in prior.parameters())

    # Deterministic (posterior mean, not a sample).
    assert torch.equal(prior.encode_images(rgb.detach()), prior.encode_images(rgb.detach()))


def test_decode(prior):
    with torch.no_grad():
        img = prior.decode(torch.randn(2, *prior.latent_shape))
    assert img.shape == (2, 3, 16, 16) and img.dtype == torch.float32
    assert img.min() >= 0 and img.max() <= 1


def test_predict_noise_shapes(prior):
    emb = prior.encode_prompt("a mug")
    x_t = torch.randn(3, *prior.latent_shape)
    with torch.no_grad():
        eps = prior.predict_noise(x_t, torch.tensor([10, 500, 990]), emb.conditional(None, 3))
        assert eps.shape == x_t.shape and eps.dtype == torch.float32 and torch.isfinite(eps).all()
        # A batch-1 embedding and a scalar t broadcast over the batch.
        a = prior.predict_noise(x_t, torch.tensor(500), emb.cond)
        b = prior.predict_noise(x_t, torch.full((3,), 500), emb.cond.expand(3, -1, -1))
    assert torch.allclose(a, b, atol=1e-5)


class _Oracle(torch.nn.Module):
    """Stands in for the UNet: returns the true target (ε, v or x0) of a known (x0, ε) pair."""

    def __init__(self, target: torch.Tensor):
        super().__init__()
        self.target = target
        self.register_buffer("anchor", torch.zeros(()))  # so .to()/dtype queries work

    def forward(self, x, t, encoder_hidden_states=None, return_dict=True):
        return (self.target.to(x.dtype),)


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction", "sample"])
def test_prediction_type_conversion_returns_the_true_noise(tokenizer, prediction_type):
    p = sd_prior(tokenizer, prediction_type=prediction_type)
    g = torch.Generator().manual_seed(1)
    x0 = torch.randn(3, *p.latent_shape, generator=g)
    eps = torch.randn(3, *p.latent_shape, generator=g)
    t = torch.tensor([3, 400, 980])
    # Hand computation in float64 from the scheduler's own ᾱ (independent of the prior's code).
    acp = p.scheduler.alphas_cumprod.double()[t].reshape(-1, 1, 1, 1)
    a, s = acp.sqrt(), (1 - acp).sqrt()
    x_t = (a * x0 + s * eps).float()
    v = (a * eps - s * x0).float()
    assert torch.allclose(v, p.scheduler.get_velocity(x0, eps, t), atol=1e-5)  # diffusers agrees on v
    target = {"epsilon": eps, "v_prediction": v, "sample": x0}[prediction_type]
    p.unet = _Oracle(target)
    with torch.no_grad():
        out = p.predict_noise(x_t, t, torch.zeros(3, TEXT_LEN, TEXT_DIM))
    assert out.dtype == torch.float32
    assert torch.allclose(out, eps, atol=1e-4), (out - eps).abs().max()


def test_image_size_override_and_validation(tokenizer):
    p = sd_prior(tokenizer, image_size=32)
    assert p.latent_shape == (4, 16, 16)
    assert p.encode_images(torch.rand(1, 3, 8, 8)).shape == (1, 4, 16, 16)  # 8 px render upsampled
    with pytest.raises(UserError, match="multiple of 4"):
        sd_prior(tokenizer, image_size=18)


def test_config_options_apply(tokenizer):
    cfg = StableDiffusionConfig(enable_attention_slicing=True, channels_last=True, vae_gradient_checkpointing=True)
    p = sd_prior(tokenizer, config=cfg)
    rgb = torch.rand(1, 3, 16, 16, requires_grad=True)
    p.encode_images(rgb).sum().backward()  # checkpointed VAE still passes the gradient
    assert rgb.grad.abs().sum() > 0
    with torch.no_grad():
        eps = p.predict_noise(torch.randn(1, 4, 8, 8), torch.tensor([5]), torch.zeros(1, TEXT_LEN, TEXT_DIM))
    assert eps.shape == (1, 4, 8, 8)


def test_half_precision_network_returns_float32(tokenizer):
    """The networks run in the model dtype (bf16 here: CPU-friendly; fp16 on CUDA), the VAE in float32 when
    its config says `force_upcast` (diffusers' default, kept by the tiny VAE); outputs are float32."""
    p = sd_prior(tokenizer, prediction_type="v_prediction")
    assert p.vae.config.force_upcast
    p_half = StableDiffusionPrior.from_components(p.tokenizer, p.text_encoder, p.vae, p.unet, p.scheduler,
                                                  device="cpu", dtype="bf16")
    assert p_half.unet.dtype == torch.bfloat16 and p_half.text_encoder.dtype == torch.bfloat16
    assert p_half.vae.dtype == torch.float32
    emb = p_half.encode_prompt("a cube")
    assert emb.cond.dtype == torch.float32
    rgb = torch.rand(1, 3, 16, 16, requires_grad=True)
    z = p_half.encode_images(rgb)
    assert z.dtype == torch.float32
    z.sum().backward()
    assert rgb.grad.dtype == torch.float32 and rgb.grad.abs().sum() > 0
    with torch.no_grad():
        eps = p_half.predict_noise(z.detach(), torch.tensor([300]), emb.cond)
    assert eps.dtype == torch.float32 and torch.isfinite(eps).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_auto_dtype_is_fp16(tokenizer):
    p = sd_prior(tokenizer)
    g = StableDiffusionPrior.from_components(p.tokenizer, p.text_encoder, p.vae, p.unet, p.scheduler,
                                             device="cuda", dtype="auto")
    assert g.unet.dtype == torch.float16 and g.alphas_cumprod.device.type == "cuda"
    emb = g.encode_prompt("a cube", view_dependent=True)
    rgb = torch.rand(2, 3, 64, 64, device="cuda", requires_grad=True)
    z = g.encode_images(rgb)
    assert z.dtype == torch.float32 and z.device.type == "cuda"
    z.sum().backward()
    assert torch.isfinite(rgb.grad).all()
    with torch.no_grad():
        eps = g.predict_noise(z.detach(), torch.tensor([10, 900], device="cuda"), emb.conditional(None, 2))
    assert eps.dtype == torch.float32 and torch.isfinite(eps).all()


# ----------------------------------------------------------------------------- DeepFloyd IF

@pytest.fixture(scope="module")
def if_prior(tokenizer):
    torch.manual_seed(0)
    t5 = transformers.T5EncoderModel(transformers.T5Config(
        vocab_size=len(tokenizer), d_model=TEXT_DIM, d_kv=8, d_ff=64, num_layers=2, num_heads=4,
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id, decoder_start_token_id=0))
    unet = tiny_unet(in_channels=3, out_channels=6, sample_size=16)
    scheduler = diffusers.DDPMScheduler(beta_schedule="squaredcos_cap_v2", variance_type="learned_range")
    return DeepFloydIFPrior.from_components(tokenizer, t5, unet, scheduler, image_size=16, device="cpu",
                                            config=DeepFloydIFConfig(max_length=20))


def test_deepfloyd_if_shapes_and_gradient(if_prior):
    p = if_prior
    assert p.latent_shape == (3, 16, 16) and p.image_size == 16 and p.prediction_type == "epsilon"
    assert not any(q.requires_grad for q in p.parameters())
    emb = p.encode_prompt("A Red Chair", view_dependent=True)
    assert emb.cond.shape == (1, 20, TEXT_DIM) and emb.cond.dtype == torch.float32
    assert set(emb.views) == {"front", "side", "back", "overhead"}
    assert not torch.allclose(emb.views["front"], emb.cond)
    assert torch.allclose(emb.cond, p._encode_texts(["a red chair"]), atol=1e-5)  # lower-cased like IF

    rgb = torch.rand(2, 3, 24, 24, requires_grad=True)
    x0 = p.encode_images(rgb)
    assert x0.shape == (2, 3, 16, 16) and x0.dtype == torch.float32
    assert x0.min() >= -1 and x0.max() <= 1
    x0.square().mean().backward()
    assert rgb.grad.abs().sum() > 0 and all(q.grad is None for q in p.parameters())
    assert torch.allclose(p.decode(x0.detach()), F.interpolate(rgb.detach(), size=(16, 16), mode="bilinear",
                                                             align_corners=False), atol=1e-6)

    x_t = torch.randn(2, 3, 16, 16)
    t = torch.tensor([5, 700])
    with torch.no_grad():
        eps = p.predict_noise(x_t, t, emb.conditional(None, 2))
        raw = p.unet(x_t, t, encoder_hidden_states=emb.conditional(None, 2)).sample
    assert raw.shape[1] == 6
    assert eps.shape == (2, 3, 16, 16) and eps.dtype == torch.float32
    assert torch.allclose(eps, raw[:, :3], atol=1e-5)


# ----------------------------------------------------------------------------- missing weights / offline

def _assert_one_line_fix(message: str):
    assert "\n" not in message
    assert "prior.model=" in message and "hf download" in message


def test_missing_local_folder_is_a_user_error(tmp_path, no_network):
    missing = tmp_path / "no-such-model"
    with pytest.raises(UserError) as info:
        StableDiffusionPrior(StableDiffusionConfig(model=str(missing)), "cpu")
    msg = str(info.value)
    _assert_one_line_fix(msg)
    assert str(missing) in msg and "does not exist" in msg and "Stable Diffusion" in msg
    assert no_network == []


def test_folder_that_is_not_a_diffusers_model(tmp_path):
    (tmp_path / "unet").mkdir()
    with pytest.raises(UserError, match=r"not a diffusers model folder: it has no scheduler/, text_encoder/"):
        StableDiffusionPrior(StableDiffusionConfig(model=str(tmp_path)), "cpu")


def test_folder_without_weights_names_the_component(tmp_path, no_network):
    for sub in ("scheduler", "text_encoder", "tokenizer", "unet", "vae"):
        (tmp_path / sub).mkdir()
    with pytest.raises(UserError) as info:
        StableDiffusionPrior(StableDiffusionConfig(model=str(tmp_path)), "cpu")
    msg = str(info.value)
    _assert_one_line_fix(msg)
    assert "scheduler/" in msg and f"local folder {tmp_path}" in msg
    assert isinstance(info.value.__cause__, OSError)
    assert no_network == []


@pytest.mark.parametrize("cls,config,hub_id", [
    (StableDiffusionPrior, StableDiffusionConfig(model="sd15"), "stable-diffusion-v1-5/stable-diffusion-v1-5"),
    (StableDiffusionPrior, StableDiffusionConfig(model="sd21"), "stabilityai/stable-diffusion-2-1"),
    (DeepFloydIFPrior, DeepFloydIFConfig(), "DeepFloyd/IF-I-XL-v1.0"),
])
def test_offline_hub_id_fails_fast_without_network(tmp_path, monkeypatch, no_network, cls, config, hub_id):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    config.cache_dir = str(tmp_path / "empty-cache")  # never find a real cached copy of the model
    start = time.perf_counter()
    with pytest.raises(UserError) as info:
        cls(config, "cpu")
    assert time.perf_counter() - start < 30
    msg = str(info.value)
    _assert_one_line_fix(msg)
    assert f"hub id {hub_id}" in msg and "offline" in msg and f"hf download {hub_id}" in msg
    assert no_network == []


def test_local_files_only_default_follows_the_environment(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    assert resolve_local_files_only(None) is False
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert resolve_local_files_only(None) is True
    assert resolve_local_files_only(False) is False


def test_config_merges_from_yaml_style_dict():
    from dreamer.config import merge

    cfg = merge(StableDiffusionConfig(), {"model": "sd21-base", "image_size": 512, "dtype": "fp16",
                                          "local_files_only": True})
    assert cfg.image_size == 512 and cfg.dtype == "fp16" and cfg.local_files_only is True
    with pytest.raises(UserError):
        merge(StableDiffusionConfig(), {"dtype": "fp8"})


def test_import_is_light():
    code = ("import sys, dreamer.priors.stable_diffusion, dreamer.priors.deepfloyd_if; "
            "heavy = [m for m in ('diffusers', 'transformers', 'huggingface_hub') if m in sys.modules]; "
            "assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)

"""The diffusers video priors (AnimateDiff, zeroscope) on tiny random-weight parts saved in diffusers' layout.

Each prior loads its folders with its own from_pretrained code; nothing is downloaded (sockets refused).
"""

from __future__ import annotations


import pytest
import torch
import torch.nn.functional as F

from dreamer.errors import UserError
from dreamer.priors.animatediff import AnimateDiffConfig, AnimateDiffPrior
from dreamer.priors.video import VideoPrior
from dreamer.priors.zeroscope import ZeroscopeConfig, ZeroscopePrior
from tiny_diffusers import TEXT_DIM, TEXT_LEN, save_zeroscope_folder

diffusers = pytest.importorskip("diffusers")
pytest.importorskip("transformers")

B, FR, S = 1, 4, 16  # clip batch, frames, image side (latents 4×8×8)


@pytest.fixture(scope="module")
def animatediff(tiny_sd_folder, adapter_folder):
    config = AnimateDiffConfig(model=str(tiny_sd_folder), motion_adapter=str(adapter_folder), image_size=S,
                               num_frames=FR, local_files_only=True)
    return AnimateDiffPrior(config, "cpu")


@pytest.fixture(scope="module")
def zeroscope(zeroscope_folder):
    return ZeroscopePrior(ZeroscopeConfig(model=str(zeroscope_folder), image_size=S, num_frames=FR), "cpu")


@pytest.fixture(params=["animatediff", "zeroscope"])
def prior(request, animatediff, zeroscope):
    return {"animatediff": animatediff, "zeroscope": zeroscope}[request.param]


def test_loaded_from_folders(animatediff, zeroscope):
    assert isinstance(animatediff.unet, diffusers.UNetMotionModel)
    assert isinstance(zeroscope.unet, diffusers.UNet3DConditionModel)
    for p in (animatediff, zeroscope):
        assert isinstance(p, VideoPrior) and p.is_video and not p.camera_conditioned
        assert p.num_frames == FR and p.image_size == S and p.latent_shape == (4, 8, 8)
        assert p.model_dtype == torch.float32 and p.unet.dtype == torch.float32 and p.vae.dtype == torch.float32
        assert p.num_train_timesteps == 1000 and p.prediction_type == "epsilon"
        assert not any(q.requires_grad for q in p.parameters()) and not p.unet.training


def test_encode_images_frame_by_frame_and_differentiable(prior):
    rgb = torch.rand(B, FR, 3, 12, 12, requires_grad=True)
    z = prior.encode_images(rgb)
    assert z.shape == (B, FR, 4, 8, 8) and z.dtype == torch.float32
    with torch.no_grad():  # the obvious twin: each frame resized, to [−1, 1], posterior mean × scale
        x = F.interpolate(rgb[0], size=(S, S), mode="bilinear", align_corners=False) * 2 - 1
        expected = prior.vae.encode(x).latent_dist.mean * prior.vae.config.scaling_factor
    assert torch.allclose(z[0], expected, atol=1e-5)
    z.square().mean().backward()
    assert rgb.grad is not None and torch.isfinite(rgb.grad).all() and rgb.grad.abs().sum() > 0
    assert all(q.grad is None for q in prior.parameters())
    with torch.no_grad():
        img = prior.decode(z.detach())
    assert img.shape == (B, FR, 3, S, S) and img.min() >= 0 and img.max() <= 1
    with pytest.raises(UserError, match=r"clips \[B, F, C, H, W\]"):
        prior.encode_images(torch.rand(2, 3, S, S))


def test_predict_noise_is_the_unet_on_diffusers_layout(animatediff, zeroscope):
    g = torch.Generator().manual_seed(0)
    x_t = torch.randn(2, FR, 4, 8, 8, generator=g)
    t = torch.tensor([10, 700])
    for p in (animatediff, zeroscope):
        emb = p.encode_prompt("a red cube bouncing", "static", view_dependent=True)
        assert emb.cond.shape == (1, TEXT_LEN, TEXT_DIM) and set(emb.views) == {"front", "side", "back", "overhead"}
        text = torch.cat([emb.cond, emb.uncond])
        with torch.no_grad():
            eps = p.predict_noise(x_t, t, text)
            # diffusers' own calling convention: [B, C, F, h, w]; UNetMotionModel wants the text per frame
            per_frame = text.repeat_interleave(FR, dim=0) if p is animatediff else text
            manual = p.unet(x_t.transpose(1, 2), t, encoder_hidden_states=per_frame).sample.transpose(1, 2)
            single = p.predict_noise(x_t[:1], t[:1], emb.cond)
        assert eps.shape == x_t.shape and eps.dtype == torch.float32 and torch.isfinite(eps).all()
        assert torch.allclose(eps, manual, atol=1e-5)
        assert torch.allclose(single, eps[:1], atol=1e-5)  # batch rows are independent
        assert not torch.allclose(eps[:, 0], eps[:, 1])  # frames differ


class _Oracle(torch.nn.Module):
    """Stands in for the video UNet: the true target (ε, v or x0) of a known clip, in diffusers' layout."""

    def __init__(self, target: torch.Tensor):
        super().__init__()
        self.target = target

    def forward(self, sample, t, encoder_hidden_states=None, return_dict=True):
        assert sample.shape == self.target.transpose(1, 2).shape  # [B, C, F, h, w]
        return (self.target.transpose(1, 2).to(sample.dtype),)


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
@pytest.mark.parametrize("which", ["animatediff", "zeroscope"])
def test_v_prediction_is_converted_to_epsilon(animatediff, zeroscope, which, prediction_type):
    base = {"animatediff": animatediff, "zeroscope": zeroscope}[which]
    scheduler = diffusers.DDPMScheduler.from_config(base.scheduler.config, prediction_type=prediction_type)
    p = type(base).from_components(base.tokenizer, base.text_encoder, base.vae, base.unet, scheduler,
                                   image_size=S, device="cpu", config=base.config)
    assert p.prediction_type == prediction_type and p.num_frames == FR
    g = torch.Generator().manual_seed(1)
    x0, eps = torch.randn(2, FR, 4, 8, 8, generator=g), torch.randn(2, FR, 4, 8, 8, generator=g)
    t = torch.tensor([5, 900])
    acp = scheduler.alphas_cumprod.double()[t].reshape(-1, 1, 1, 1, 1)
    a, s = acp.sqrt(), (1 - acp).sqrt()
    x_t = (a * x0 + s * eps).float()
    target = eps if prediction_type == "epsilon" else (a * eps - s * x0).float()
    p.unet = _Oracle(target)
    with torch.no_grad():
        out = p.predict_noise(x_t, t, torch.zeros(2, TEXT_LEN, TEXT_DIM))
    assert out.dtype == torch.float32 and torch.allclose(out, eps, atol=1e-4)


def test_prediction_type_comes_from_the_saved_scheduler(tokenizer, tmp_path):
    folder = save_zeroscope_folder(tokenizer, tmp_path / "zs-v", prediction_type="v_prediction")
    p = ZeroscopePrior(ZeroscopeConfig(model=str(folder), image_size=S, num_frames=FR), "cpu")
    assert p.prediction_type == "v_prediction"


def test_network_is_refused(prior):
    with pytest.raises(UserError, match="video prior: VSD and ESD"):
        prior.network()


def _one_line(message: str, option: str = "prior.model") -> None:
    assert "\n" not in message and f"{option}=" in message and "hf download" in message


def test_missing_folders_are_one_line_errors(tmp_path, tiny_sd_folder, adapter_folder, no_network):
    missing = tmp_path / "no-such-model"
    with pytest.raises(UserError) as info:
        AnimateDiffPrior(AnimateDiffConfig(model=str(missing), motion_adapter=str(adapter_folder)), "cpu")
    _one_line(str(info.value))
    assert str(missing) in str(info.value) and "Stable Diffusion model folder" in str(info.value)

    with pytest.raises(UserError) as info:
        AnimateDiffPrior(AnimateDiffConfig(model=str(tiny_sd_folder), motion_adapter=str(missing)), "cpu")
    assert "\n" not in str(info.value) and "hf download" in str(info.value)
    assert f"AnimateDiff motion adapter model folder {missing} does not exist" in str(info.value)
    assert "prior.motion_adapter=/path/to/folder" in str(info.value) and "prior.model=" not in str(info.value)

    empty = tmp_path / "empty-adapter"
    empty.mkdir()
    with pytest.raises(UserError) as info:
        AnimateDiffPrior(AnimateDiffConfig(model=str(tiny_sd_folder), motion_adapter=str(empty), image_size=S), "cpu")
    assert "\n" not in str(info.value) and f"from local folder {empty}" in str(info.value)
    assert "AnimateDiff motion adapter" in str(info.value) and "could not load the motion adapter from" in str(info.value)
    assert "(/)" not in str(info.value) and "prior.motion_adapter=" in str(info.value)

    with pytest.raises(UserError) as info:
        ZeroscopePrior(ZeroscopeConfig(model=str(missing)), "cpu")
    _one_line(str(info.value))
    assert f"zeroscope model folder {missing} does not exist" in str(info.value)

    (tmp_path / "half" / "unet").mkdir(parents=True)
    with pytest.raises(UserError, match=r"zeroscope model folder .* not a diffusers model folder: it has no scheduler/"):
        ZeroscopePrior(ZeroscopeConfig(model=str(tmp_path / "half")), "cpu")
    assert no_network == []


def test_offline_hub_ids_fail_fast(tmp_path, monkeypatch, no_network):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for cls, config, hub_id, option in (
            (AnimateDiffPrior, AnimateDiffConfig(), "guoyww/animatediff-motion-adapter-v1-5-2", "prior.motion_adapter"),
            (ZeroscopePrior, ZeroscopeConfig(), "cerspense/zeroscope_v2_576w", "prior.model")):
        config.cache_dir = str(tmp_path / "empty-cache")
        with pytest.raises(UserError) as info:
            cls(config, "cpu")
        _one_line(str(info.value), option)
        assert hub_id in str(info.value) and "offline" in str(info.value)
    assert no_network == []


def test_config_errors():
    with pytest.raises(UserError, match="AnimateDiff prior: num_frames must be a positive integer"):
        AnimateDiffConfig(num_frames=0)
    with pytest.raises(UserError, match="zeroscope prior: num_frames must be a positive integer"):
        ZeroscopeConfig(num_frames=2.5)
    with pytest.raises(UserError, match="motion_adapter is empty"):
        AnimateDiffConfig(motion_adapter=" ")
    with pytest.raises(UserError, match="enable_attention_slicing"):
        AnimateDiffConfig(enable_attention_slicing=True)

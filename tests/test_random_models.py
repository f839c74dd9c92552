"""bench/random_models.py: random-weight model folders, full size or tiny, that the priors' own loaders load.

Full size is checked on PyTorch's meta device (no memory, no time): every network has its published
parameter count, and AnimateDiff's motion adapter fits SD 1.5's UNet. Tiny folders are built, saved and
loaded through AnimateDiffPrior / ZeroscopePrior (their real from_pretrained paths) on the CPU.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

diffusers = pytest.importorskip("diffusers")
pytest.importorskip("transformers")

ROOT = Path(__file__).resolve().parent.parent

# Published parameter counts (the models' diffusers / transformers checkpoints).
FULL_SIZE = {
    "sd21-base": {"unet": 865_910_724, "text_encoder": 340_387_840, "vae": 83_653_863},
    "sd15": {"unet": 859_520_964, "text_encoder": 123_060_480, "vae": 83_653_863},  # CLIP ViT-L/14 text
    "motion-adapter": {"": 453_209_280},  # mm_sd_v15_v2: 1.8 GB in fp32
    "zeroscope": {"unet": 1_411_233_860, "text_encoder": 340_387_840, "vae": 83_653_863},  # the "1.7b" of ModelScope
    "sdxl": {"unet": 2_567_463_684, "text_encoder": 123_060_480, "text_encoder_2": 694_659_840, "vae": 83_653_863},
}


def random_models():
    if "random_models" not in sys.modules:
        spec = importlib.util.spec_from_file_location("random_models", ROOT / "bench" / "random_models.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["random_models"] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
    return sys.modules["random_models"]


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    return random_models().write_tokenizer(tmp_path_factory.mktemp("tokenizer"))


def meta_parts(name: str, tiny: bool, tok) -> dict:
    rm = random_models()
    with torch.device("meta"):
        return {p.name: p.make() for p in rm.recipe(name, tiny, None if name == "motion-adapter" else tok)}


def count(module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("name", sorted(FULL_SIZE))
def test_full_size_parts_have_the_published_parameter_counts(name, tok):
    parts = meta_parts(name, False, tok)
    assert {k: count(v) for k, v in parts.items() if isinstance(v, torch.nn.Module)} == FULL_SIZE[name]


def test_full_size_motion_adapter_fits_sd15_and_the_video_unets_take_clips(tok):
    sd15, adapter = meta_parts("sd15", False, tok)["unet"], meta_parts("motion-adapter", False, tok)[""]
    with torch.device("meta"):
        motion = diffusers.UNetMotionModel.from_unet2d(sd15, adapter)  # what the animatediff prior does
    assert count(motion) == FULL_SIZE["sd15"]["unet"] + FULL_SIZE["motion-adapter"][""]
    assert adapter.config.motion_max_seq_length >= 16 and adapter.config.use_motion_mid_block
    unet3d = meta_parts("zeroscope", False, tok)["unet"]
    assert isinstance(unet3d, diffusers.UNet3DConditionModel) and unet3d.config.cross_attention_dim == 1024
    assert meta_parts("deepfloyd-if", False, tok)["unet"].config.block_out_channels == (704, 1408, 2112, 2816)


def test_every_model_has_a_tiny_twin_of_the_same_layout(tok):
    rm = random_models()
    for name in rm.MODELS:
        full, tiny = meta_parts(name, False, tok), meta_parts(name, True, tok)
        assert list(full) == list(tiny) and all(type(full[k]) is type(tiny[k]) for k in full), name
        nets = [k for k, v in tiny.items() if isinstance(v, torch.nn.Module)]
        assert sum(count(tiny[k]) for k in nets) < 1e6 < sum(count(full[k]) for k in nets), name
    with pytest.raises(ValueError, match="unknown model"):
        rm.recipe("sd3", True, tok)


@pytest.fixture(scope="module")
def tiny_folders(tmp_path_factory):
    rm = random_models()
    root = tmp_path_factory.mktemp("random-models")
    return {name: rm.build_model_folder(name, root / name, tiny=True, device="cpu")
            for name in ("sd15", "motion-adapter", "zeroscope")}


def test_tiny_folders_have_the_hub_layout(tiny_folders):
    for name in ("sd15", "zeroscope"):
        folder = tiny_folders[name].folder
        assert {p.name for p in folder.iterdir()} == {"scheduler", "text_encoder", "tokenizer", "unet", "vae"}
    adapter = tiny_folders["motion-adapter"].folder  # config.json and weights at its top, as on the hub
    assert json.loads((adapter / "config.json").read_text())["_class_name"] == "MotionAdapter"
    assert tiny_folders["motion-adapter"].parameters["weights"] > 0 and tiny_folders["zeroscope"].bytes > 0


def test_tiny_video_folders_load_through_the_real_priors(tiny_folders, no_network):
    from dreamer.priors.animatediff import AnimateDiffConfig, AnimateDiffPrior
    from dreamer.priors.zeroscope import ZeroscopeConfig, ZeroscopePrior

    rm = random_models()
    size, frames = rm.TINY_IMAGE_SIZE, 3
    animatediff = AnimateDiffPrior(AnimateDiffConfig(
        model=str(tiny_folders["sd15"].folder), motion_adapter=str(tiny_folders["motion-adapter"].folder),
        image_size=size, num_frames=frames, local_files_only=True), "cpu")
    zeroscope = ZeroscopePrior(ZeroscopeConfig(model=str(tiny_folders["zeroscope"].folder), image_size=size,
                                               num_frames=frames, local_files_only=True), "cpu")
    assert isinstance(animatediff.unet, diffusers.UNetMotionModel)
    assert isinstance(zeroscope.unet, diffusers.UNet3DConditionModel)
    for prior in (animatediff, zeroscope):
        z = prior.encode_images(torch.rand(1, frames, 3, 24, 24))
        assert z.shape == (1, frames, 4, size // 2, size // 2)
        emb = prior.encode_prompt("a corgi running", "static")
        with torch.no_grad():
            eps = prior.predict_noise(torch.randn_like(z), torch.tensor([500]), emb.cond)
        assert eps.shape == z.shape and torch.isfinite(eps).all()
    assert no_network == []

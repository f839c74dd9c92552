import os

import pytest

import tiny_diffusers

# Keep the reference-prior cache inside the test's temp folders, never in ~/.cache.
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    cache = tmp_path_factory.getbasetemp() / "dreamer-cache"
    monkeypatch.setenv("DREAMER_CACHE", str(cache))


# Small settings that exercise every stage of a run in a few seconds (on the reference prior:
# no text encoder to load; the default preset's tiny prior has its own end-to-end test).
TINY_RUN = [
    "prior=reference",
    "resolution=16",
    "trainer.preview_every=2",
    "trainer.preview_resolution=16",
    "trainer.checkpoint_every=2",
    "trainer.log_every=1",
    "export.mesh_resolution=32",
    "export.video_frames=4",
    "export.video_resolution=32",
    "export.texture_size=64",
    "prior.image_size=16",
    "prior.num_views=8",
]


@pytest.fixture
def tiny_run():
    return list(TINY_RUN)


# ----------------------------------------------------------------------------- tiny diffusers parts
# Shared by the diffusers-backed prior tests (test_prior_stable_diffusion, test_prior_sdxl, test_sd_run,
# test_presets). The builders live in tests/tiny_diffusers.py; nothing is downloaded.


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    """A real CLIPTokenizer over single characters (tiny_diffusers.TEXT_LEN tokens per prompt)."""
    pytest.importorskip("transformers")
    return tiny_diffusers.make_tokenizer(tmp_path_factory.mktemp("tokenizer"))


@pytest.fixture(scope="module")
def tiny_sd_folder(tokenizer, tmp_path_factory):
    """A folder laid out like a diffusers Stable Diffusion checkpoint, with tiny random weights."""
    pytest.importorskip("diffusers")
    return tiny_diffusers.save_sd_folder(tokenizer, tmp_path_factory.mktemp("tiny-sd"))


@pytest.fixture(scope="module")
def adapter_folder(tmp_path_factory):
    """A diffusers MotionAdapter folder with tiny random weights (AnimateDiff's motion modules)."""
    pytest.importorskip("diffusers")
    return tiny_diffusers.save_motion_adapter_folder(tmp_path_factory.mktemp("tiny-motion-adapter"))


@pytest.fixture(scope="module")
def zeroscope_folder(tokenizer, tmp_path_factory):
    """A zeroscope-style pipeline folder (UNet3DConditionModel, CLIP, VAE, scheduler) with tiny random weights."""
    pytest.importorskip("diffusers")
    return tiny_diffusers.save_zeroscope_folder(tokenizer, tmp_path_factory.mktemp("tiny-zeroscope"))


@pytest.fixture
def no_network(monkeypatch):
    """Record (and refuse) every socket connection."""
    import socket

    attempts: list = []

    def refuse(self, address, *args, **kwargs):
        attempts.append(address)
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    return attempts

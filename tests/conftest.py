import os

# Under pytest-xdist (`make test`: one worker per CPU) each worker, and every process it starts, gets its
# share of the cores: torch's default of one thread per core in every worker oversubscribes them, and
# OpenMP threads that spin while they wait make that far slower still.
if os.environ.get("PYTEST_XDIST_WORKER"):
    _workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // _workers))
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest  # noqa: E402

import tiny_diffusers  # noqa: E402

pytest_plugins = ("cpu_report",)  # `--cpu-report=FILE`: where the suite's CPU goes (tests/cpu_report.py)

# Keep the reference-prior cache inside the test's temp folders, never in ~/.cache.
os.environ.setdefault("HF_HUB_OFFLINE", "1")


if os.environ.get("PYTEST_XDIST_WORKER"):
    import torch

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


def pytest_collection_modifyitems(config, items):
    """Slow tests first, the longest first (`@pytest.mark.slow(seconds=N)`: about how long the file takes on
    one worker). `make test` hands whole files to the workers as they free up (xdist's --dist loadfile,
    with --no-loadscope-reorder so that xdist keeps this order instead of putting the files with the most
    tests first), so a slow file collected last would run alone at the end while the other worker idles;
    started first, longest first, the short files fill in around them."""
    def cost(item) -> float:
        marker = item.get_closest_marker("slow")
        return float(marker.kwargs.get("seconds", 1)) if marker else 0.0

    items.sort(key=lambda item: -cost(item))  # stable: collection order kept among equals


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
    "export.eval_surface_samples=2000",  # the 3D eval at 2,000 points per mesh, not 30,000 (most of its time)
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

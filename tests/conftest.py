import os

import pytest

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

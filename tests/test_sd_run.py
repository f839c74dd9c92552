"""The Stable Diffusion code path end to end with tiny random-weight parts saved in diffusers' layout:
the real `from_pretrained` loading, SDS on a NeRF render, gradient reaching only the render."""

from __future__ import annotations

import pytest
import torch

from tiny_diffusers import sd_prior

diffusers = pytest.importorskip("diffusers")


# `tokenizer` and `tiny_sd_folder` are shared fixtures (conftest.py).


def test_sds_through_sd_reaches_only_the_render(tokenizer):
    from dreamer.cameras import OrbitConfig, sample_orbit
    from dreamer.guidance.sds import SDS, SDSConfig
    from dreamer.representations.nerf import NeRF, NeRFConfig

    prior = sd_prior(tokenizer)
    torch.manual_seed(0)
    nerf = NeRF(NeRFConfig(grid_resolution=16, num_samples=16))
    cams = sample_orbit(2, OrbitConfig(), 16, generator=torch.Generator().manual_seed(0))
    out = nerf.render(cams)
    out.rgb.retain_grad()
    sds = SDS(SDSConfig(guidance_scale=7.5), prior, 10, torch.Generator().manual_seed(0))
    emb = prior.encode_prompt("a red cube", view_dependent=True)
    result = sds(out.rgb, emb, cams, 0)
    assert result.loss.shape == () and torch.isfinite(result.loss)
    assert result.t.shape == (2,) and result.t.dtype == torch.long
    result.loss.backward()
    assert out.rgb.grad is not None and out.rgb.grad.abs().sum() > 0
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in nerf.parameters())
    assert all(p.grad is None for p in prior.parameters())


def test_generate_with_sd_prior_loaded_from_a_local_folder(tiny_sd_folder, tmp_path, tiny_run):
    import dreamer

    overrides = [x for x in tiny_run if not x.startswith("prior")]
    result = dreamer.generate("a red cube", prior="sd15", out=tmp_path / "run", steps=2,
                              dotted=[*overrides, f"prior.model={tiny_sd_folder}", "guidance.guidance_scale=7.5"],
                              trainer__progress=False, export__video=False)
    assert result.metrics["steps"] == 2 and result.mesh.exists()
    import math

    assert math.isfinite(result.metrics["final_loss"])

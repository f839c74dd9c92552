"""SDS's object colour (`sds.object_colour_scale`, functional.object_colour_cfg): CFG with the object's mean
colour per view taken at its own scale, the object being the render's opacity — values asserted."""

from __future__ import annotations

import pytest
import torch

from dreamer.cameras import from_spherical
from dreamer.errors import UserError
from dreamer.guidance import functional as F
from dreamer.guidance.base import GuidanceConfig
from dreamer.guidance.sds import SDS, SDSConfig
from dreamer.priors.pixel_space import encode_pixels
from fakes import FakePixelPrior

S = 8

grey = lambda x: x.mean(dim=-3, keepdim=True)  # noqa: E731
chroma = lambda x: x - grey(x)  # noqa: E731


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _mean_colour(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    return (m * chroma(x)).sum((-2, -1)) / m.sum((-2, -1))


def test_object_colour_moves_one_colour_per_view_inside_the_object_only():
    eu, ec = torch.randn(2, 3, 6, 6, generator=_gen(0)), torch.randn(2, 3, 6, 6, generator=_gen(1))
    full = F.classifier_free_guidance(eu, ec, 5.0)
    assert F.object_colour_cfg(full, ec, eu, torch.ones(2, 1, 6, 6), None) is full
    m = torch.zeros(2, 1, 6, 6)
    m[:, :, 1:4, 2:5] = 1.0
    for s_c in (0.0, 1.0, 2.5):
        out = F.object_colour_cfg(full, ec, eu, m, s_c)
        torch.testing.assert_close(grey(out), grey(full))  # brightness and shading: the full CFG everywhere
        torch.testing.assert_close(out[m.expand_as(out) == 0], full[m.expand_as(full) == 0])  # background untouched
        # the opaque object's mean colour is CFG's at s_c ...
        torch.testing.assert_close(_mean_colour(out, m), _mean_colour(eu + s_c * (ec - eu), m))
        # ... moved by one shift per view: the variation across the object stays the full CFG's
        torch.testing.assert_close((out - full)[:, :, 1, 2], (out - full)[:, :, 3, 4])
    # a half-covered pixel moves half as far, by the opacity-weighted mean of the chroma change
    m[1, :, 4, 2] = 0.5
    out = F.object_colour_cfg(full, ec, eu, m, 1.0)
    delta = chroma(ec) - chroma(full)
    shift = (out - full)[1, :, 2, 3]
    torch.testing.assert_close((out - full)[1, :, 4, 2], 0.5 * shift)
    torch.testing.assert_close(shift, (m[1] * delta[1]).sum((1, 2)) / m[1].sum())
    # a faint view (a ghost) moves only as far as it is opaque
    faint = F.object_colour_cfg(full, ec, eu, 0.1 * m, 1.0)
    torch.testing.assert_close(faint - full, 0.1 * (F.object_colour_cfg(full, ec, eu, m, 1.0) - full))
    torch.testing.assert_close(F.object_colour_cfg(full, ec, eu, m, 5.0), full)  # s_c = s: plain CFG
    # an empty view is left as it is
    torch.testing.assert_close(F.object_colour_cfg(full, ec, eu, torch.zeros(2, 1, 6, 6), 1.0), full)


def test_object_colour_keeps_a_grey_object_grey_against_a_warm_unconditional_estimate():
    warm = torch.tensor([0.2, -0.1, -0.1]).reshape(1, 3, 1, 1).expand(1, 3, 4, 4).clone()
    cond = torch.zeros(1, 3, 4, 4)
    cond[:, :, :, :2] = torch.tensor([0.5, 0.1, -0.3]).reshape(1, 3, 1, 1)  # an orange background on the left
    m = torch.zeros(1, 1, 4, 4)
    m[..., 2:] = 1.0  # a grey object on the right
    tinted = F.classifier_free_guidance(warm, cond, 5.0)
    assert tinted[0, 0, 0, 3] < tinted[0, 1, 0, 3]  # CFG: red below green on the object, the drift
    kept = F.object_colour_cfg(tinted, cond, warm, m, 1.0)
    torch.testing.assert_close(chroma(kept)[..., 2:], torch.zeros(1, 3, 4, 2))  # grey again
    torch.testing.assert_close(kept[..., :2], tinted[..., :2])  # the background keeps CFG's contrast


def test_object_colour_works_on_clips():
    eu, ec = torch.randn(2, 3, 3, 4, 4, generator=_gen(2)), torch.randn(2, 3, 3, 4, 4, generator=_gen(3))
    m = torch.rand(2, 3, 1, 4, 4, generator=_gen(4))
    full = F.classifier_free_guidance(eu, ec, 5.0)
    out = F.object_colour_cfg(full, ec, eu, m, 1.0)
    frame = F.object_colour_cfg(full[1, 2], ec[1, 2], eu[1, 2], m[1, 2], 1.0)  # each frame a view of its own
    torch.testing.assert_close(out[1, 2], frame)


def test_resize_opacity_resizes_as_the_prior_resizes_renders():
    alpha = torch.rand(2, 16, 16, 1, generator=_gen(5))
    small = F.resize_opacity(alpha, (8, 8))
    assert small.shape == (2, 1, 8, 8)
    expected = (encode_pixels(alpha.expand(2, 16, 16, 3).permute(0, 3, 1, 2), 8)[:, :1] + 1) / 2
    torch.testing.assert_close(small, expected)
    clips = F.resize_opacity(torch.rand(2, 3, 16, 16, 1, generator=_gen(6)), (8, 8))
    assert clips.shape == (2, 3, 1, 8, 8)
    same = F.resize_opacity(alpha, (16, 16))
    torch.testing.assert_close(same, alpha.permute(0, 3, 1, 2))


def _sds(prior, **kw) -> SDS:
    return SDS(SDSConfig(guidance_scale=10.0, view_dependent_prompt=False, **kw), prior, 100, _gen(7))


def test_sds_object_colour_declares_and_needs_the_opacity():
    assert SDSConfig(object_colour_scale=1.0).uses_alpha and not SDSConfig().uses_alpha
    assert not GuidanceConfig().uses_alpha
    depth, alpha = torch.zeros(1, S, S, 1), torch.ones(1, S, S, 1)
    assert SDSConfig(object_colour_scale=1.0).render_inputs(depth, alpha) == {"alpha": alpha}
    assert SDSConfig().render_inputs(depth, alpha) == {}
    prior = FakePixelPrior(S)
    emb = prior.encode_prompt("a mug", "")
    cams = from_spherical(torch.tensor([0.0, 90.0]), 10.0, 2.8, 40.0, S)
    images = torch.rand(2, S, S, 3, generator=_gen(8))
    with pytest.raises(ValueError, match="needs the renders' opacity"):
        _sds(prior, object_colour_scale=1.0)(images, emb, cams, step=3)
    with pytest.raises(UserError, match="object_colour_scale must be >= 0"):
        SDSConfig(object_colour_scale=-0.5)
    latent = FakePixelPrior(S)
    latent.latent_shape = (4, S, S)
    with pytest.raises(UserError, match="object_colour_scale needs a prior that denoises RGB pixels"):
        _sds(latent, object_colour_scale=1.0)


def test_sds_object_colour_changes_the_gradient_only_where_the_render_is_opaque():
    prior = FakePixelPrior(S)
    emb = prior.encode_prompt("a mug", "")
    cams = from_spherical(torch.tensor([0.0, 90.0]), 10.0, 2.8, 40.0, S)
    alpha = torch.zeros(2, S, S, 1)
    alpha[:, 2:6, 2:6] = 1.0
    grads = {}
    for s_c in (None, 1.0):
        images = torch.rand(2, S, S, 3, generator=_gen(9)).requires_grad_(True)
        _sds(prior, object_colour_scale=s_c)(images, emb, cams, step=3, alpha=alpha).loss.backward()
        grads[s_c] = images.grad
    inside = alpha.expand(2, S, S, 3) > 0
    assert not torch.allclose(grads[None][inside], grads[1.0][inside])
    torch.testing.assert_close(grads[None][~inside], grads[1.0][~inside])
    torch.testing.assert_close(grads[None].mean(-1), grads[1.0].mean(-1), rtol=1e-5, atol=1e-6)  # grey part equal

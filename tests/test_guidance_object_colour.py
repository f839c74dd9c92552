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


# ---------------------------------------------------------------------------- the unconditional estimate's mean colour


def test_debias_moves_the_unconditional_x0_by_the_mean_colours_chroma_inside_the_object():
    from dreamer.priors import schedule

    ac = schedule.make_alphas_cumprod(1000, "linear", 1e-4, 0.02)
    t = torch.tensor([100, 600])
    a, s = F.alphas_sigmas(ac, t, 4)
    x_t = torch.randn(2, 3, 4, 4, generator=_gen(10))
    eu, ec = torch.randn(2, 3, 4, 4, generator=_gen(11)), torch.randn(2, 3, 4, 4, generator=_gen(12))
    m = torch.zeros(2, 1, 4, 4)
    m[..., 1:3, 1:3] = 1.0
    warm = torch.tensor([0.6, 0.45, 0.4])
    chroma_rgb = warm - warm.mean()
    for convention in ("standard", "plus_one"):
        full = F.classifier_free_guidance(eu, ec, 5.0, convention)
        assert F.debias_unconditional(full, a, s, m, warm, 5.0, convention, 0.0) is full
        out = F.debias_unconditional(full, a, s, m, warm, 5.0, convention, 0.5)
        # the same as CFG from an unconditional x̂0 moved by −0.5·chroma (×2: the prior's [−1, 1] pixels) where m = 1
        x0_u = schedule.x0_from_eps(x_t, eu, a, s) - m * 0.5 * 2.0 * chroma_rgb.view(1, 3, 1, 1)
        moved = F.classifier_free_guidance(schedule.eps_from_x0(x_t, x0_u, a, s), ec, 5.0, convention)
        torch.testing.assert_close(out, moved, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(out[m.expand_as(out) == 0], full[m.expand_as(full) == 0])  # the background
    # CFG then adds the colour back inside the object: x̂0_cfg moves by +(s − 1)·amount·2·chroma (standard)
    out = F.debias_unconditional(F.classifier_free_guidance(eu, ec, 5.0), a, s, m, warm, 5.0, "standard", 0.5)
    shift = schedule.x0_from_eps(x_t, out, a, s) - schedule.x0_from_eps(x_t, F.classifier_free_guidance(eu, ec, 5.0), a, s)
    torch.testing.assert_close(shift[:, :, 1, 1], (4.0 * 0.5 * 2.0 * chroma_rgb).expand(2, 3), rtol=1e-3, atol=1e-3)


def test_the_embedded_priors_know_their_mean_object_colour():
    from dreamer.priors.tiny.prior import TinyPrior, TinyPriorConfig
    from dreamer.shapes.colours import COLOURS

    prior = TinyPrior(TinyPriorConfig(weights="assets/priors/tiny_3d"))
    palette = torch.tensor(list(COLOURS.values())).float().mean(0)
    torch.testing.assert_close(prior.mean_object_colour(), palette)
    assert float(palette[0]) > float(palette[2])  # warm: the reason for the option
    assert FakePixelPrior(S).mean_object_colour() is None


def test_sds_uncond_debias_acts_only_with_a_prior_that_knows_its_colour_and_needs_the_opacity():
    assert SDSConfig(uncond_debias=0.5).uses_alpha and not SDSConfig().uses_alpha
    with pytest.raises(UserError, match="uncond_debias must be >= 0"):
        SDSConfig(uncond_debias=-1.0)
    # a prior without a known mean colour (the default preset with `reference` or Stable Diffusion): nothing moves
    unknown = FakePixelPrior(S)
    emb = unknown.encode_prompt("a mug", "")
    cams = from_spherical(torch.tensor([0.0, 90.0]), 10.0, 2.8, 40.0, S)
    alpha = torch.ones(2, S, S, 1)
    grads = []
    for amount in (0.0, 0.5):
        images = torch.rand(2, S, S, 3, generator=_gen(15)).requires_grad_(True)
        _sds(unknown, uncond_debias=amount)(images, emb, cams, step=3, alpha=alpha).loss.backward()
        grads.append(images.grad)
    torch.testing.assert_close(grads[0], grads[1])
    prior = FakePixelPrior(S)
    prior.mean_object_colour = lambda: torch.tensor([0.6, 0.45, 0.4])
    emb = prior.encode_prompt("a mug", "")
    cams = from_spherical(torch.tensor([0.0, 90.0]), 10.0, 2.8, 40.0, S)
    with pytest.raises(ValueError, match="uncond_debias needs the renders' opacity"):
        _sds(prior, uncond_debias=0.5)(torch.rand(2, S, S, 3, generator=_gen(13)), emb, cams, step=3)
    alpha = torch.zeros(2, S, S, 1)
    alpha[:, 2:6, 2:6] = 1.0
    grads = {}
    for amount in (0.0, 0.5):
        images = torch.rand(2, S, S, 3, generator=_gen(14)).requires_grad_(True)
        _sds(prior, uncond_debias=amount)(images, emb, cams, step=3, alpha=alpha).loss.backward()
        grads[amount] = images.grad
    inside = alpha.expand(2, S, S, 3) > 0
    assert not torch.allclose(grads[0.0][inside], grads[0.5][inside])
    torch.testing.assert_close(grads[0.0][~inside], grads[0.5][~inside])
    torch.testing.assert_close(grads[0.0].mean(-1), grads[0.5].mean(-1), rtol=1e-5, atol=1e-6)  # only chroma moves

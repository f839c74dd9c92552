"""Volume rendering (dreamer.render.volume) against closed forms."""

from __future__ import annotations

import math

import pytest
import torch

from dreamer.render import volume


def slab(s: float, a: float, L: float, t_far: float = 4.0, n: int = 4000, jitter: bool = False,
         seed: int = 0):
    """One ray through a slab of density s on [a, a+L], sampled on [0, t_far]."""
    g = torch.Generator().manual_seed(seed)
    t, deltas = volume.stratified_samples(torch.zeros(1), torch.full((1,), t_far), n, jitter, g)
    sigma = torch.where((t >= a) & (t <= a + L), torch.full_like(t, s), torch.zeros_like(t))
    return t, deltas, sigma


@pytest.mark.parametrize("s,L", [(0.5, 1.5), (2.0, 1.0), (8.0, 0.3)])
def test_slab_opacity_matches_beer_lambert(s, L):
    t, deltas, sigma = slab(s, 1.0, L)  # slab edges fall on bin edges: exact up to rounding
    comp = volume.composite(sigma, torch.rand(1, t.shape[1], 3), t, deltas)
    assert comp.alpha.item() == pytest.approx(1 - math.exp(-s * L), abs=1e-4)
    # jittered samples: the edges are resolved to within a bin
    t, deltas, sigma = slab(s, 1.0003, L, jitter=True)
    comp = volume.composite(sigma, torch.rand(1, t.shape[1], 3), t, deltas)
    assert comp.alpha.item() == pytest.approx(1 - math.exp(-s * L), abs=2e-3)


@pytest.mark.parametrize("s,L", [(0.5, 1.5), (2.0, 1.0), (8.0, 0.3)])
def test_slab_expected_depth(s, L):
    a = 1.0
    t, deltas, sigma = slab(s, a, L)
    comp = volume.composite(sigma, torch.zeros(1, t.shape[1], 3), t, deltas)
    # E[t | the ray stops in the slab] for an exponential stopping distance truncated at L
    e = math.exp(-s * L)
    expected = a + (1 / s - e * (L + 1 / s)) / (1 - e)
    assert comp.depth.item() == pytest.approx(expected, abs=2e-3)


def test_weights_sum_at_most_one_and_match_total_optical_depth():
    g = torch.Generator().manual_seed(1)
    sigma = torch.rand(64, 32, generator=g) * 20  # [R, N]
    t, deltas = volume.stratified_samples(torch.rand(64, generator=g), 2 + torch.rand(64, generator=g),
                                          32, jitter=True, generator=g)
    weights, trans = volume.compute_weights(sigma, deltas)
    total = weights.sum(-1)
    assert (weights >= 0).all() and (total <= 1 + 1e-6).all()
    assert torch.allclose(total, 1 - torch.exp(-(sigma * deltas).sum(-1)), atol=1e-5)
    assert torch.allclose(trans[:, 0], torch.ones(64)) and (trans[:, 1:] <= trans[:, :-1] + 1e-7).all()


def test_background_compositing():
    g = torch.Generator().manual_seed(2)
    sigma = torch.rand(10, 16, generator=g) * 3
    t, deltas = volume.stratified_samples(torch.zeros(10), torch.ones(10), 16, jitter=False)
    c = torch.tensor([0.2, 0.7, 0.4])
    comp = volume.composite(sigma, c.expand(10, 16, 3), t, deltas)
    bg = torch.rand(10, 3, generator=g)
    rgb = volume.over_background(comp.rgb, comp.alpha, bg)
    assert torch.allclose(rgb, c * comp.alpha + bg * (1 - comp.alpha), atol=1e-6)


def test_empty_ray_has_zero_alpha_and_depth():
    t, deltas = volume.stratified_samples(torch.zeros(3), torch.ones(3), 8, jitter=False)
    comp = volume.composite(torch.zeros(3, 8), torch.rand(3, 8, 3), t, deltas)
    assert (comp.alpha == 0).all() and (comp.depth == 0).all() and (comp.rgb == 0).all()


def test_ray_aabb():
    o = torch.tensor([[0.0, 0.0, -3.0], [0.0, 0.0, -3.0], [0.2, 0.1, 0.0], [0.0, 5.0, -3.0]])
    d = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    t_near, t_far, hit = volume.ray_aabb(o, d, bound=1.0)
    assert hit.tolist() == [True, False, True, False]  # hits; behind; inside; passes above
    assert t_near[0].item() == pytest.approx(2.0) and t_far[0].item() == pytest.approx(4.0)
    assert t_near[2].item() == 0.0 and t_far[2].item() == pytest.approx(0.8)
    assert (t_far[~hit] == t_near[~hit]).all()  # a miss has an empty interval: alpha 0
    t, deltas = volume.stratified_samples(t_near, t_far, 8, jitter=False)
    comp = volume.composite(torch.full((4, 8), 5.0), torch.rand(4, 8, 3), t, deltas)
    assert (comp.alpha[~hit] == 0).all() and (comp.alpha[hit] > 0.9).all()


def test_stratified_samples_midpoints_and_seeded_jitter():
    near, far = torch.tensor([1.0, 0.5]), torch.tensor([3.0, 0.9])
    t, deltas = volume.stratified_samples(near, far, 4, jitter=False)
    assert torch.allclose(t[0], torch.tensor([1.25, 1.75, 2.25, 2.75]))
    assert torch.allclose(deltas.sum(-1), far - near)
    a, _ = volume.stratified_samples(near, far, 4, True, torch.Generator().manual_seed(3))
    b, _ = volume.stratified_samples(near, far, 4, True, torch.Generator().manual_seed(3))
    c, _ = volume.stratified_samples(near, far, 4, True, torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    bins = ((a - near[:, None]) / ((far - near)[:, None] / 4)).floor()
    assert torch.equal(bins, torch.arange(4.0).expand(2, 4))  # one sample per bin


def _ball(res: int, radius: float, profile) -> tuple[torch.Tensor, float]:
    voxel = 2.0 / res
    ax = (torch.arange(res) + 0.5) * voxel - 1
    x, y, z = torch.meshgrid(ax, ax, ax, indexing="ij")
    return profile(torch.sqrt(x * x + y * y + z * z)), voxel


def test_iso_level_of_a_hard_ball_is_halfway():
    dens, voxel = _ball(48, 0.5, lambda r: (r < 0.5).float() * 40.0)
    assert volume.silhouette_iso_level(dens, voxel) == pytest.approx(20.0, rel=0.05)


def test_iso_level_matches_the_rendered_outline_of_a_soft_ball():
    # density falls smoothly; the rendered outline (alpha = 0.5) is where the chord integrates
    # to ln 2, and the chosen level set must have that radius
    prof = lambda r: 30.0 * torch.sigmoid((0.5 - r) / 0.05)  # noqa: E731
    dens, voxel = _ball(64, 0.5, prof)
    level = volume.silhouette_iso_level(dens, voxel)
    z = torch.linspace(-1, 1, 4001)
    rho = torch.linspace(0.3, 0.8, 2001)
    chord = prof(torch.sqrt(rho[:, None] ** 2 + z[None] ** 2)).sum(-1) * (z[1] - z[0])
    outline = rho[(chord > math.log(2)).nonzero().max()]  # silhouette radius
    level_radius = rho[(prof(rho) > level).nonzero().max()]
    assert abs(float(level_radius - outline)) < 1.5 * voxel


def test_iso_level_none_when_nothing_is_opaque():
    dens, voxel = _ball(16, 0.5, lambda r: torch.full_like(r, 1e-3))
    assert volume.silhouette_iso_level(dens, voxel) is None


def test_opacity_regularisers():
    a = torch.tensor([0.0, 1.0])
    assert volume.opacity_entropy(a).item() < 1e-3
    assert volume.opacity_entropy(torch.full((4,), 0.5)).item() == pytest.approx(math.log(2), rel=1e-4)
    assert volume.opacity_sparsity(torch.zeros(3)).item() == pytest.approx(0.1)

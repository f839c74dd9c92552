"""dreamer.priors.schedule: ᾱ equals diffusers' DDPMScheduler; the ε / v / x0 conversions round-trip."""

from __future__ import annotations

import pytest
import torch
from diffusers import DDPMScheduler

from dreamer.priors import schedule


@pytest.mark.parametrize("beta_schedule, betas", [("linear", (1e-4, 0.02)), ("scaled_linear", (0.00085, 0.012))])
def test_alphas_cumprod_equals_diffusers(beta_schedule, betas):
    expected = DDPMScheduler(num_train_timesteps=1000, beta_schedule=beta_schedule,
                             beta_start=betas[0], beta_end=betas[1]).alphas_cumprod
    got = schedule.make_alphas_cumprod(1000, beta_schedule)
    assert got.dtype == torch.float32 and got.shape == (1000,)
    torch.testing.assert_close(got, expected.float(), rtol=0, atol=0)


def test_alphas_cumprod_is_a_fresh_copy_and_checks_the_name():
    a = schedule.make_alphas_cumprod(10)
    a.zero_()
    assert schedule.make_alphas_cumprod(10).min() > 0
    with pytest.raises(ValueError, match="beta_schedule"):
        schedule.make_alphas_cumprod(10, "cosine")


def test_alphas_sigmas_shapes_and_values():
    acp = schedule.make_alphas_cumprod(1000, "scaled_linear")
    t = torch.tensor([0, 499, 999])
    a, s = schedule.alphas_sigmas(acp, t)
    assert a.shape == s.shape == (3, 1, 1, 1)
    torch.testing.assert_close(a.flatten(), acp[t].sqrt())
    torch.testing.assert_close(a ** 2 + s ** 2, torch.ones_like(a))
    a64, _ = schedule.alphas_sigmas(acp.double(), 5, ndim=2)
    assert a64.dtype == torch.float64 and a64.shape == (1, 1)


def test_timesteps_round_clamp_and_broadcast():
    assert schedule.timesteps(3, batch=4).tolist() == [3, 3, 3, 3]
    assert schedule.timesteps(torch.tensor([2.6, -1.0, 1500.0]), num_train_timesteps=1000).tolist() == [3, 0, 999]
    assert schedule.timesteps(torch.tensor([7])).dtype == torch.long


def _sample(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x0 = torch.randn(4, 3, 8, 8, generator=g, dtype=torch.float64)
    eps = torch.randn(4, 3, 8, 8, generator=g, dtype=torch.float64)
    t = torch.tensor([0, 10, 500, 999])
    acp = schedule.make_alphas_cumprod(1000, "linear").double()
    return x0, eps, t, acp


def test_add_noise_matches_diffusers():
    x0, eps, t, _ = _sample()
    sched = DDPMScheduler(num_train_timesteps=1000)
    acp32 = schedule.make_alphas_cumprod(1000, "linear")
    x0, eps = x0.float(), eps.float()
    torch.testing.assert_close(schedule.add_noise(x0, eps, t, acp32), sched.add_noise(x0, eps, t), rtol=1e-6, atol=1e-6)


def test_conversions_round_trip():
    x0, eps, t, acp = _sample()
    a, s = schedule.alphas_sigmas(acp, t)
    x_t = schedule.add_noise(x0, eps, t, acp)
    torch.testing.assert_close(schedule.x0_from_eps(x_t, eps, a, s), x0, rtol=0, atol=1e-6)  # x0 → ε → x0
    eps_back = schedule.eps_from_x0(x_t, schedule.x0_from_eps(x_t, eps, a, s), a, s)
    torch.testing.assert_close(eps_back, eps, rtol=0, atol=1e-6)
    torch.testing.assert_close(schedule.eps_from_x0(x_t, x0, a, s), eps, rtol=0, atol=1e-6)


def test_velocity_matches_diffusers_and_converts_to_eps():
    x0, eps, t, acp = _sample(1)
    sched = DDPMScheduler(num_train_timesteps=1000)
    a, s = schedule.alphas_sigmas(acp, t)
    v = schedule.velocity(x0, eps, a, s)
    expected = sched.get_velocity(x0.float(), eps.float(), t)
    torch.testing.assert_close(v.float(), expected, rtol=1e-6, atol=1e-6)
    x_t = schedule.add_noise(x0, eps, t, acp)
    torch.testing.assert_close(schedule.eps_from_v(x_t, v, a, s), eps, rtol=0, atol=1e-6)


@pytest.mark.parametrize("prediction_type", schedule.PREDICTION_TYPES)
def test_eps_from_output_inverts_training_target(prediction_type):
    x0, eps, t, acp = _sample(2)
    a, s = schedule.alphas_sigmas(acp, t)
    x_t = schedule.add_noise(x0, eps, t, acp)
    target = schedule.training_target(x0, eps, a, s, prediction_type)
    torch.testing.assert_close(schedule.eps_from_output(target, x_t, a, s, prediction_type), eps, rtol=0, atol=1e-6)
    with pytest.raises(ValueError):
        schedule.eps_from_output(target, x_t, a, s, "flow")

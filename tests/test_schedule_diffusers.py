"""ᾱ_t is written out (dreamer.priors.schedule) so that building a prior does not import diffusers; it must
stay diffusers' DDPMScheduler's, bit for bit, for every schedule and range the priors use."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from diffusers import DDPMScheduler

from dreamer.priors.schedule import BETA_RANGES, make_alphas_cumprod


@pytest.mark.parametrize("beta_schedule", sorted(BETA_RANGES))
@pytest.mark.parametrize("steps", [1000, 50])
@pytest.mark.parametrize("beta_range", [None, (2e-4, 0.03)])  # the schedule's usual range, and one of its own
def test_alphas_cumprod_equals_the_diffusers_scheduler(beta_schedule, steps, beta_range):
    start, end = beta_range or BETA_RANGES[beta_schedule]
    expected = DDPMScheduler(num_train_timesteps=steps, beta_schedule=beta_schedule, beta_start=start,
                             beta_end=end).alphas_cumprod
    ours = make_alphas_cumprod(steps, beta_schedule, *(beta_range or ()))
    assert ours.dtype == torch.float32 and ours.shape == (steps,)
    assert torch.equal(ours, expected)


def test_each_call_returns_its_own_tensor_and_bad_names_are_refused():
    a = make_alphas_cumprod(1000, "linear")
    a.zero_()
    assert make_alphas_cumprod(1000, "linear")[0] > 0.99
    with pytest.raises(ValueError, match="unknown beta_schedule 'cosine'"):
        make_alphas_cumprod(1000, "cosine")


def test_building_the_reference_prior_does_not_import_diffusers():
    code = ("import sys; from dreamer import registry; "
            "registry.component_class('prior', 'reference')(registry.default_config('prior', 'reference'), 'cpu'); "
            "print('diffusers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "False"

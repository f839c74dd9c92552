"""Whole turns per loop chosen by the video prior (dreamer.trainer.spin, issue 29 part 3): a red chair made of
Gaussians on the library chair's surface is scored spinning by +1, 0 and −1 turns per loop under the exact
`reference-video` prior; "spinning" picks the library's own direction and "sliding" picks no turn. The track
composes the chosen turns with what it learns, and old checkpoints (without turns) load with none."""

from __future__ import annotations

import math

import pytest
import torch

from dreamer.priors.reference_video import ReferenceVideoPrior, ReferenceVideoPriorConfig
from dreamer.representations.gaussians4d import Gaussians4D, Gaussians4DConfig, SimilarityTrack
from dreamer.run_config import load_run_config
from dreamer.shapes import ObjectSpec, spec_mesh
from dreamer.trainer.spin import choose_spin

pytestmark = pytest.mark.slow(seconds=10)  # a mid-sized file: scheduled early (tests/conftest.py)

SH_C0 = 0.28209479177387814


def _chair(count: int = 2500) -> Gaussians4D:
    rep = Gaussians4D(Gaussians4DConfig(num_gaussians=count, background="white"))
    spec = ObjectSpec("chair", "red")
    points, _ = spec_mesh(spec).sample(count, return_index=True)
    with torch.no_grad():
        rep.params["means"].copy_(torch.as_tensor(points, dtype=torch.float32))
        rep.params["scales"].fill_(math.log(0.02))
        rep.params["opacities"].fill_(4.0)
        rep.params["sh0"].copy_(((torch.tensor(spec.rgb) - 0.5) / SH_C0).expand(count, 1, 3))
        rep.params["shN"].zero_()
    rep.set_stage("motion")
    return rep.eval()


@pytest.fixture(scope="module")
def prior():
    return ReferenceVideoPrior(ReferenceVideoPriorConfig(image_size=32, num_views=12, num_phases=8, num_frames=4,
                                                         uncond_views=1, camera_temperature=8.0))


@pytest.mark.parametrize("prompt, expected", [("a red chair spinning", 1.0), ("a red chair sliding", 0.0),
                                              ("a red chair bouncing", 0.0)])
def test_the_prior_picks_the_turns_the_prompt_names(prior, prompt, expected):
    torch.manual_seed(0)
    rep = _chair()
    config = load_run_config("4d", {"prompt": prompt, "resolution": 32, "motion": {
        "spin_turns": [0, 1, -1], "spin_clips": 3, "spin_draws": 6}})
    choice = choose_spin(rep, prior, prior.encode_prompt(prompt), config, clip_frames=4, device="cpu")
    assert set(choice.errors) == {0.0, 1.0, -1.0}
    assert choice.turns == expected and float(rep.track.turns) == expected, choice
    if expected:  # the turn the prompt names scores best, and by the margin
        assert choice.errors[expected] == min(choice.errors.values())
        assert choice.errors[0.0] - choice.errors[expected] > 0.35 * abs(choice.errors[0.0])


def test_one_hypothesis_is_no_test_and_draws_nothing(prior):
    rep = _chair(200)
    config = load_run_config("4d", {"prompt": "a red chair spinning", "motion": {"spin_turns": [0]}})
    assert choose_spin(rep, prior, prior.encode_prompt("a red chair spinning"), config, 4, "cpu") is None
    assert float(rep.track.turns) == 0.0


def test_turns_compose_with_the_learnt_rotation_and_old_states_load_without_turns():
    track = SimilarityTrack(8)
    state = {k: v for k, v in track.state_dict().items() if k not in ("turns", "spin_axis")}
    track.load_state_dict(state)  # a checkpoint from before turns existed
    assert float(track.turns) == 0.0
    track.turns.fill_(1.0)
    with torch.no_grad():
        track.rotation[:, 0] = 0.3  # a learnt tilt about +X at every keyframe
    R, _, _, _ = track(torch.tensor([0.0, 0.25]))
    tilt = torch.tensor([[1.0, 0.0, 0.0], [0.0, math.cos(0.3), -math.sin(0.3)], [0.0, math.sin(0.3), math.cos(0.3)]])
    quarter = torch.tensor([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]])  # +90° about +Y
    torch.testing.assert_close(R[0], tilt, atol=1e-5, rtol=0)
    torch.testing.assert_close(R[1], quarter @ tilt, atol=1e-5, rtol=0)  # the tilt first, then the turn
